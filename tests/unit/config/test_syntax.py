"""TOML syntax errors: plain words, and always a line."""

from __future__ import annotations

import tomllib
from collections.abc import Callable

import pytest

from agent.config.syntax import syntax_problem

Problems = Callable[[str], list[str]]

UNTERMINATED = ("unterminated string (a \"string\" or 'string' ends on the line it starts on; "
                'write """text""" for text over several lines)')


@pytest.mark.parametrize(("toml", "line", "words"), [
    ('[live]\nvoice = "Puck\nmodel = "m"\n', 2, UNTERMINATED),
    ("[live]\nvoice = 'Puck\nmodel = \"m\"\n", 2, UNTERMINATED),
    ('[live]\nmodel = "m"\nvoice = "Puck', 3, "unterminated string"),
    ('[live]\nsystem_instruction = """Be brief.\n\nmodel = "m"\n', 2, "unterminated string"),
    ("[live]\nsystem_instruction = '''Be brief.\n\nmodel = \"m\"\n", 2, "unterminated string"),
    ("[live]\nvoice = Puck\n", 2, 'not a valid value (text needs quotes: "..."; true, false, '
                                  "numbers and dates go bare)"),
    ("[live]\nmodel gemini\n", 2, "expected '=' after a key"),
    ('[live]\nvoice = "Puck" model = "m"\n', 2,
     "expected the end of the line after the value (one key = value per line; a comment "
     "starts with #)"),
    ("[live\nvoice = 'Puck'\n", 1, "expected ']' to end the [table]"),
    ("[[tools]\n", 1, "expected ']]' to end the [[array]]"),
    ("[audio]\nchunk_ms = 40\nchunk_ms = 20\n", 3, "this key already has a value"),
    ("[gpio.status]\nmute_button = 5\n[gpio.status]\n", 3,
     "the table [gpio.status] is declared twice"),
    ("[gpio]\nstatus = { mute_button = 5 }\nstatus.bounce_s = 0.1\n", 3,
     "gpio.status is an inline table or array, complete where it is written; nothing can be "
     "added to it here"),
    ("[gpio.status]\nleds = { connected = 5,\n  error = 6 }\n", 2,
     "not a valid key (a bare key uses letters, digits, _ and -; quote any other; an inline "
     "table { ... } stays on one line)"),
    ("[gpio.status]\nleds = { error = 5, error = 6 }\n", 2,
     'the key "error" is written twice in one inline table'),
    ('[audio]\ninput = "wav:C:\\clips\\a.wav"\n', 2,
     "a backslash in a \"string\" must start an escape (\\\\, \\\", \\n, \\t, \\uXXXX, ...); "
     "or write the text as a 'literal string'"),
    ("[audio]\nchunk_ms = [40, 20\n", 2, "unclosed array: expected ',' or ']'"),
    ("= 1\n", 1, "expected a key = value, a [table] or an [[array]] here"),
])
def test_a_syntax_error_says_what_to_fix_on_its_line(problems_of: Problems, toml: str,
                                                      line: int, words: str) -> None:
    assert problems_of(toml) == [f"agent.toml:{line}: not valid TOML: {words}"]


def test_words_tomllib_has_not_said_before_are_passed_on() -> None:
    error = tomllib.TOMLDecodeError("Something new (at line 4, column 2)")
    problem = syntax_problem(error, "a = 1\n" * 5, "agent.toml")
    assert str(problem) == "agent.toml:4: not valid TOML: something new"
