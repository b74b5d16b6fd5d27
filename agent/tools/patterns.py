"""The ``pattern`` of a declared string parameter: checked at config time, matched in bounded
time.

Patterns come from the config and are matched on the event loop against the model's text. A
backtracking engine can take exponential time on some shapes (``^([a-z]+ ?)+$`` stalls
Python's ``re`` for seconds on 27 characters), so:

* at config time a pattern must compile, must not nest a quantifier inside a quantified group
  (the classic shape of catastrophic backtracking), and its string must declare a
  ``maxLength`` of at most `MAX_PATTERN_INPUT`;
* at call time a pattern is matched only on a string that passed its length checks, with the
  ``regex`` module's timeout: every pattern of one call shares `MATCH_BUDGET_S`, and a call
  whose text cannot be checked within it is refused as invalid arguments.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

__all__ = ["MATCH_BUDGET_S", "MAX_PATTERN_INPUT", "MatchBudget", "pattern_problem"]

MAX_PATTERN_INPUT = 1024
"""The longest string a pattern is matched against (its ``maxLength`` must not exceed it)."""
MATCH_BUDGET_S = 0.02
"""Time all the pattern matches of one call may take together, on the event loop."""
_CACHED_PATTERNS = 128  # compiled patterns kept (a config declares a handful)

_OPENERS = "(["
_QUANTIFIERS = "*+?{"


def pattern_problem(pattern: object, max_length: object) -> str | None:
    """Why ``pattern`` (with the string's declared ``maxLength``) cannot be used, or None."""
    if not isinstance(pattern, str):
        return "must be a regular expression (text)"
    import regex  # here, not at the top: 1.4 MB that a config without patterns never needs

    try:
        _compiled(pattern)
    except regex.error as exc:
        return f"is not a valid regex: {exc}"
    if _nested_quantifier(pattern):
        return ("repeats a group that begins with a repetition (like (a+)+ or (\\d+\\.)*): "
                "matching it can take exponential time; start the repeated group with "
                "something fixed, as in \\d+(\\.\\d+)*")
    if (not isinstance(max_length, int) or isinstance(max_length, bool)
            or max_length > MAX_PATTERN_INPUT):
        return (f"needs maxLength of at most {MAX_PATTERN_INPUT} on the same string, so that "
                "matching it stays bounded")
    return None


class MatchBudget:
    """The time left for one call's pattern matches."""

    def __init__(self, seconds: float = MATCH_BUDGET_S) -> None:
        self._deadline = time.monotonic() + seconds

    def search(self, pattern: str, text: str) -> bool | None:
        """Whether ``pattern`` matches somewhere in ``text``; None when it could not be told
        within the budget (or ``text`` is longer than `MAX_PATTERN_INPUT`)."""
        left = self._deadline - time.monotonic()
        if left <= 0 or len(text) > MAX_PATTERN_INPUT:
            return None
        try:
            return _compiled(pattern).search(text, timeout=left) is not None
        except TimeoutError:
            self._deadline = 0.0
            return None


@functools.lru_cache(maxsize=_CACHED_PATTERNS)
def _compiled(pattern: str) -> regex.Pattern[str]:
    import regex

    return regex.compile(pattern)


def _nested_quantifier(pattern: str) -> bool:
    """Whether a repeated group begins with a repetition of variable length: ``(a+)+``,
    ``([a-z]+ ?)+``, ``(\\w+\\s?)*``, ``(.*a){3}``. Such a group can split a run of text
    between its repeats in exponentially many ways. A group that begins with something fixed,
    like the slug pattern ``^[a-z]+(-[a-z]+)*$``, is left alone (the timeout still guards
    every match). A textual scan: escapes and character classes are single atoms."""
    # Per open group: how many atoms its current branch has, and whether its first atom
    # repeats a variable number of times.
    groups: list[list[int | bool]] = [[0, False]]
    last_atom = -1  # index in its group of the atom a quantifier would apply to
    last_group_flag = False  # that atom was a group that begins with a repetition
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        top = groups[-1]
        if ch == "(":
            groups.append([0, False])
            last_atom = -1
            i = _group_body(pattern, i)
            continue
        if ch == ")" and len(groups) > 1:
            flag = bool(groups.pop()[1])
            top = groups[-1]
            last_atom, last_group_flag = int(top[0]), flag
            if flag and last_atom == 0:  # ((a+)b)+ begins with a repetition too
                top[1] = True
            top[0] = int(top[0]) + 1
        elif ch == "|":
            top[0], last_atom = 0, -1
        elif ch in _QUANTIFIERS and last_atom >= 0:
            more_than_once, variable = _repetition(pattern, i)
            if last_group_flag and more_than_once:
                return True
            if last_atom == 0 and variable:
                top[1] = True
            last_atom, last_group_flag = -1, False
        else:
            end = _class_end(pattern, i) if ch == "[" else i + (2 if ch == "\\" else 1)
            last_atom, last_group_flag = int(top[0]), False
            top[0] = int(top[0]) + 1
            i = end
            continue
        i += 1
    return False


def _group_body(pattern: str, start: int) -> int:
    """The index where the body of the group opened at ``start`` begins (after ``(?:``,
    ``(?P<name>``, a lookaround's ``(?=`` ...)."""
    i = start + 1
    if not pattern.startswith("?", i):
        return i
    i += 1
    if pattern.startswith("P", i):
        i += 1
    if pattern.startswith("<", i) and not pattern.startswith(("<=", "<!"), i):
        end = pattern.find(">", i)
        return len(pattern) if end < 0 else end + 1
    if pattern.startswith(("<=", "<!"), i):
        return i + 2
    while i < len(pattern) and pattern[i] not in ":=!>)":
        i += 1  # inline flags such as (?i: or (?i)
    return i + 1 if i < len(pattern) and pattern[i] != ")" else i


def _repetition(pattern: str, i: int) -> tuple[bool, bool]:
    """For the quantifier at ``i``: whether it can repeat more than once, and whether the
    number of repeats varies (``?`` is neither; ``{3}`` repeats a fixed number; ``+?``
    and ``*?`` still repeat)."""
    ch = pattern[i]
    if ch == "?":
        return False, False
    if ch != "{":
        return True, True
    end = pattern.find("}", i)
    parts = [p.strip() for p in (pattern[i + 1 : end] if end > 0 else "x").split(",")]
    if len(parts) > 2 or parts == [""] or not all(p.isdigit() or p == "" for p in parts):
        return False, False  # a literal brace
    lower = int(parts[0] or 0)
    upper = None if parts[-1] == "" else int(parts[-1])
    return upper is None or upper > 1, upper is None or upper > lower


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class that opens at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1
