"""TOML syntax errors in plain words, on the line where they are.

``tomllib`` reports a syntax error in its parser's words (``Illegal character '\\n'`` for a
string left open) with a position suffix, and says only "at end of document" when the text
ran out first. `syntax_problem` turns the words into what to fix and always finds a line:
for a string left open, the line of its opening quotes when the text shows it, otherwise the
last line.
"""

from __future__ import annotations

import ast
import re
import tomllib

from agent.config.problems import ConfigProblem

__all__ = ["parser_limit_problem", "syntax_problem"]

_POSITION = re.compile(r"\s*\(at (?:line (?P<line>\d+), column \d+|end of document)\)$")
_KEY = r"(?P<key>\(.*\))"  # tomllib writes a key as a Python tuple: ('gpio', 'status')
_UNTERMINATED = ("unterminated string (a \"string\" or 'string' ends on the line it starts "
                 'on; write """text""" for text over several lines)')

# tomllib's words -> plain words; ``{key}`` is the key in the TOML way (gpio.status).
_PLAIN: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), m) for p, m in (
    (r"Unterminated string", "unterminated string"),
    (r"Illegal character '\\n'|Found invalid character '\\n'", _UNTERMINATED),
    (r"Expected \"'\"", _UNTERMINATED),
    (r"Expected \"'''\"", "unterminated string"),
    (r"(?:Illegal|Found invalid) character (?P<char>.+)",
     "the control character {char} is not allowed here (write it as an escape in a string)"),
    (r"Invalid statement", "expected a key = value, a [table] or an [[array]] here"),
    (r"Expected newline or end of document after a statement",
     "expected the end of the line after the value (one key = value per line; a comment "
     "starts with #)"),
    (r"Invalid value", 'not a valid value (text needs quotes: "..."; true, false, numbers '
                       "and dates go bare)"),
    (r"Expected '=' after a key in a key/value pair", "expected '=' after a key"),
    (r"Invalid initial character for a key part",
     "not a valid key (a bare key uses letters, digits, _ and -; quote any other; an "
     "inline table { ... } stays on one line)"),
    (rf"Cannot declare {_KEY} twice", "the table [{key}] is declared twice"),
    (r"Cannot overwrite a value", "this key already has a value"),
    (r"Expected '\]' at the end of a table declaration", "expected ']' to end the [table]"),
    (r"Expected '\]\]' at the end of an array declaration",
     "expected ']]' to end the [[array]]"),
    (rf"Cannot mutate immutable namespace {_KEY}",
     "{key} is an inline table or array, complete where it is written; nothing can be "
     "added to it here"),
    (rf"Cannot redefine namespace {_KEY}",
     "{key} is a [table] already; a dotted key cannot add to it here"),
    (r"Unclosed array", "unclosed array: expected ',' or ']'"),
    (r"Unclosed inline table",
     "unclosed inline table: expected ',' or '}' (an inline table stays on one line)"),
    (r"Duplicate inline table key '(?P<key>.*)'",
     'the key "{key}" is written twice in one inline table'),
    (r"Unescaped '\\' in a string",
     "a backslash in a \"string\" must start an escape (\\\\, \\\", \\n, \\t, \\uXXXX, ...); "
     "or write the text as a 'literal string'"),
    (r"Invalid hex value", "a \\u or \\U escape needs 4 or 8 hex digits"),
    (r"Escaped character is not a Unicode scalar value",
     "a \\u or \\U escape must name a Unicode character"),
    (r"Invalid date or datetime", "not a valid date or time"),
))

# The delimiter whose last occurrence opens a string that ran to the end of the text.
_OPENERS = {"Expected \"'\"": "'", "Expected \"'''\"": "'''"}


def syntax_problem(exc: tomllib.TOMLDecodeError, text: str, file: str) -> ConfigProblem:
    """The problem to report for ``tomllib``'s error on ``text``."""
    raw = str(exc)
    position = _POSITION.search(raw)
    words = raw[: position.start()] if position else raw
    if position is None:
        line = None
    elif position.group("line"):
        line = int(position.group("line"))
    else:
        line = _end_line(words, text)
    return ConfigProblem(f"not valid TOML: {_plain(words)}", file=file, line=line)


_LONG_DIGITS = re.compile(r"[0-9][0-9_]{4000,}")
_NESTING_SHOWN = 64  # the depth at which a runaway nesting is reported


def parser_limit_problem(exc: ValueError | RecursionError, text: str,
                         file: str) -> ConfigProblem:
    """The problem for a limit ``tomllib`` hits without a TOML error: an integer with more
    digits than Python converts (4300), or arrays and inline tables nested past the stack."""
    if isinstance(exc, RecursionError):
        return ConfigProblem("not valid TOML here: arrays or inline tables nested too deeply",
                             file=file, line=_deep_line(text))
    digits = _LONG_DIGITS.search(text)
    if digits is not None:
        return ConfigProblem("a number with thousands of digits (no setting takes one)",
                             file=file, line=text.count("\n", 0, digits.start()) + 1)
    return ConfigProblem(f"not valid TOML: {exc}", file=file)


def _deep_line(text: str) -> int | None:
    """The line where brackets first open `_NESTING_SHOWN` deep (strings are not skipped:
    only the line of a message depends on it)."""
    depth = 0
    for pos, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth >= _NESTING_SHOWN:
                return text.count("\n", 0, pos) + 1
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


def _plain(words: str) -> str:
    for pattern, plain in _PLAIN:
        match = pattern.fullmatch(words)
        if match:
            for name, value in match.groupdict().items():
                shown = _dotted(value) if name == "key" and value.startswith("(") else value
                plain = plain.replace("{" + name + "}", shown)
            return plain
    return words[:1].lower() + words[1:]  # words this table does not know yet


def _dotted(key: str) -> str:
    """``('gpio', 'status')`` -> ``gpio.status``."""
    try:
        parts = ast.literal_eval(key)
    except (ValueError, SyntaxError):
        return key
    return ".".join(str(part) for part in parts) if isinstance(parts, tuple) else key


def _end_line(words: str, text: str) -> int:
    """The line of an error tomllib places at the end of the text."""
    opener = _OPENERS.get(words)
    last_line = text[text.rfind("\n") + 1:]
    if opener is None and words == "Unterminated string" and (
            text.endswith("\n") or '"' not in last_line):
        # A one-line "string" stops at its newline, and opens on the last line when the text
        # ends in it: otherwise this is a """string""".
        opener = '"""'
    start = text.rfind(opener) if opener else -1
    if start >= 0:
        return text.count("\n", 0, start) + 1
    return max(1, len(text.splitlines()))
