"""Where each key of a TOML document is written: key path -> line number.

``tomllib`` parses values but forgets positions, so config errors would lose their line. This
scanner walks the same text once more and records, for every key it meets, the line of its
first appearance: table headers (``[gpio.status]``), arrays of tables (``[[tools]]``, counted
so the third one is ``("tools", 2)``), dotted keys (``leds.error = 19``), inline tables and
array elements (``limits = [-45, 45]`` gives ``("limits", 0)`` and ``("limits", 1)``).

It assumes the text is valid TOML (``tomllib`` has accepted it) and never raises on text it
does not understand: it just records less. Lookups fall back to the nearest enclosing key,
so a missing key is reported at its table's header.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Iterator

from agent.config.problems import KeyPath

__all__ = ["KeyLines"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")
_BASIC_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class KeyLines:
    """Line numbers (1-based) of the keys of one TOML document."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self._lines: dict[KeyPath, int] = {}
        self._aot: dict[tuple[str, ...], int] = {}
        self._pos = 0
        # Invalid or unforeseen syntax, or nesting past the stack: keep what was found so far.
        with contextlib.suppress(IndexError, ValueError, RecursionError):
            self._document()

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest enclosing key that was written down."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None

    def exact(self, path: KeyPath) -> int | None:
        """The line of ``path`` itself, or None if it is not written in the document."""
        return self._lines.get(path)

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._lines)

    # -- scanning -------------------------------------------------------------------------

    def _line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        self._lines.setdefault(path, self._line_at(pos))

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _skip_blank(self, newlines: bool) -> None:
        """Skip spaces and comments (and newlines, when asked)."""
        text = self._text
        while self._pos < len(text):
            ch = text[self._pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self._pos += 1
            elif ch == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self._pos >= len(self._text):
                return
            if self._peek() == "[":
                table = self._header()
            else:
                self._key_value(table)

    def _header(self) -> KeyPath:
        start = self._pos
        is_array = self._text.startswith("[[", self._pos)
        self._pos += 2 if is_array else 1
        names = self._key()
        self._pos = self._text.index("]", self._pos) + (2 if is_array else 1)
        if is_array:
            self._aot[names] = self._aot.get(names, -1) + 1
            for other in [k for k in self._aot if len(k) > len(names) and k[: len(names)] == names]:
                del self._aot[other]
        path = self._resolve(names)
        for end in range(1, len(path) + 1):
            self._record(path[:end], start)
        return path

    def _resolve(self, names: tuple[str, ...]) -> KeyPath:
        """Table names to a key path, with the current index of every array of tables."""
        path: list[str | int] = []
        for end in range(1, len(names) + 1):
            path.append(names[end - 1])
            index = self._aot.get(names[:end])
            if index is not None:
                path.append(index)
        return tuple(path)

    def _key(self) -> tuple[str, ...]:
        """A dotted key: bare, "basic" or 'literal' parts separated by dots."""
        parts: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            ch = self._peek()
            if ch == '"':
                parts.append(self._basic_string())
            elif ch == "'":
                end = self._text.index("'", self._pos + 1)
                parts.append(self._text[self._pos + 1 : end])
                self._pos = end + 1
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                if match is None:
                    raise ValueError("not a key")
                parts.append(match.group())
                self._pos = match.end()
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._pos += 1

    def _key_value(self, table: KeyPath) -> None:
        start = self._pos
        names = self._key()
        path = table
        for name in names:
            path = (*path, name)
            self._record(path, start)
        self._skip_blank(newlines=False)
        if self._peek() != "=":
            raise ValueError("expected '='")
        self._pos += 1
        self._skip_blank(newlines=False)
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        text = self._text
        ch = self._peek()
        if text.startswith('"""', self._pos) or text.startswith("'''", self._pos):
            quote = text[self._pos : self._pos + 3]
            end = self._pos + 3
            while True:  # a closing run may be up to five quotes long
                end = text.index(quote, end)
                if quote[0] == '"' and _escaped(text, end):
                    end += 1
                    continue
                break
            while text.startswith(quote[0], end + 3):
                end += 1
            self._pos = end + 3
        elif ch == '"':
            self._basic_string()
        elif ch == "'":
            self._pos = text.index("'", self._pos + 1) + 1
        elif ch == "[":
            self._array(path)
        elif ch == "{":
            self._inline_table(path)
        else:
            match = _SCALAR_END.search(text, self._pos)
            self._pos = len(text) if match is None else match.start()

    def _array(self, path: KeyPath) -> None:
        self._pos += 1
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "]":
                self._pos += 1
                return
            element = (*path, index)
            self._record(element, self._pos)
            self._value(element)
            index += 1
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self._pos += 1

    def _inline_table(self, path: KeyPath) -> None:
        self._pos += 1
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "}":
                self._pos += 1
                return
            self._key_value(path)
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self._pos += 1

    def _basic_string(self) -> str:
        """A one-line "basic" string, escapes decoded (keys may be quoted)."""
        text = self._text
        out: list[str] = []
        pos = self._pos + 1
        while text[pos] != '"':
            if text[pos] == "\\":
                code = text[pos + 1]
                if code in _BASIC_ESCAPES:
                    out.append(_BASIC_ESCAPES[code])
                    pos += 2
                else:
                    width = 4 if code == "u" else 8
                    out.append(chr(int(text[pos + 2 : pos + 2 + width], 16)))
                    pos += 2 + width
            else:
                out.append(text[pos])
                pos += 1
        self._pos = pos + 1
        return "".join(out)


def _escaped(text: str, pos: int) -> bool:
    """Whether the character at ``pos`` follows an odd number of backslashes."""
    count = 0
    while pos - count - 1 >= 0 and text[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1
