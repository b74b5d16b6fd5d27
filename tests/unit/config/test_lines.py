"""The key-to-line scanner, on TOML that tomllib accepts."""

from __future__ import annotations

import tomllib

from agent.config.lines import KeyLines

DOC = '''\
# a comment with [brackets] and key = "value"
title = "x"   # trailing comment
[live]
model = "m"
system_instruction = """
not = "a key" [nor a table]
"""
credentials.env = "X"
"quoted.key" = 'literal # not a comment'

[live.vad]
end_sensitivity = "low"

[[tools]]
name = "a"
limits = [
  -45,  # first
  45,
]
rate_limit = { calls = 10, per_s = 60 }

[[tools]]
name = "b"
[tools.pins]
red = 9

[[tools.steps]]
at = 1
[[tools]]
name = "c"
[[tools.steps]]
at = 2
[gpio.status]
leds = { connected = 5, error = 6 }
'''


def test_the_document_is_valid_toml() -> None:
    tomllib.loads(DOC)  # the scanner is only ever given text tomllib accepted


def test_lines_of_keys_tables_and_dotted_keys() -> None:
    lines = KeyLines(DOC)
    assert lines.exact(("title",)) == 2
    assert lines.exact(("live",)) == 3
    assert lines.exact(("live", "model")) == 4
    assert lines.exact(("live", "system_instruction")) == 5
    assert lines.exact(("live", "credentials", "env")) == 8
    assert lines.exact(("live", "quoted.key")) == 9
    assert lines.exact(("live", "vad", "end_sensitivity")) == 12


def test_multiline_strings_and_comments_hide_nothing_that_looks_like_keys() -> None:
    lines = KeyLines(DOC)
    assert lines.exact(("live", "not")) is None
    assert lines.exact(("nor a table",)) is None
    assert lines.exact(("brackets",)) is None


def test_arrays_of_tables_are_counted_and_nested_ones_restart() -> None:
    lines = KeyLines(DOC)
    assert lines.exact(("tools", 0, "name")) == 15
    assert lines.exact(("tools", 1, "name")) == 23
    assert lines.exact(("tools", 1, "pins", "red")) == 25
    assert lines.exact(("tools", 1, "steps", 0, "at")) == 28
    assert lines.exact(("tools", 2, "name")) == 30
    assert lines.exact(("tools", 2, "steps", 0, "at")) == 32


def test_array_elements_and_inline_tables() -> None:
    lines = KeyLines(DOC)
    assert lines.exact(("tools", 0, "limits")) == 16
    assert lines.exact(("tools", 0, "limits", 0)) == 17
    assert lines.exact(("tools", 0, "limits", 1)) == 18
    assert lines.exact(("tools", 0, "rate_limit", "per_s")) == 20
    assert lines.exact(("gpio", "status", "leds", "error")) == 34


def test_missing_keys_fall_back_to_the_enclosing_table() -> None:
    lines = KeyLines(DOC)
    assert lines.line(("tools", 1, "pins", "blue")) == 24
    assert lines.line(("live", "vad", "enabled")) == 11
    assert lines.line(("audio", "chunk_ms")) is None


def test_text_it_cannot_follow_keeps_what_was_found() -> None:
    lines = KeyLines('a = 1\nb = "unterminated\n')
    assert lines.exact(("a",)) == 1
