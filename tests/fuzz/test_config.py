"""The config loader under hostile text: mutations of the shipped example (every key, commented
or not, given a hostile value) and arbitrary text. The only outcomes allowed are a config or
a `ConfigError` whose every problem has a message and, where it has a line, a line of the
file."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.config import AgentConfig, ConfigError, example_config_text, parse_config

EXAMPLE = example_config_text().splitlines()
# Every "key = value" line of the example, commented out or not.
_KEY_LINE = re.compile(r"^\s*(?:#\s*)?([a-z_][a-z0-9_.]*)\s*=\s*(.*)$")
KEY_LINES = [i for i, line in enumerate(EXAMPLE) if _KEY_LINE.match(line)]
BASE_DIR = Path(tempfile.mkdtemp(prefix="edge-agent-fuzz-config-"))

HOSTILE_STRINGS = [
    "~nosuchuser/x", "~", "~/x", "/dev/zero", "/dev/urandom", "/proc/self/mem", "wav:/dev/zero",
    "wav:~nosuchuser/a.wav", "wav:", "tone:1e999", "tone:nan", "tone:-5", "a\u0000b",
    "ws://127.0.0.1:notaport", "ws://[::1", "wss://u:p@h/?key=x", "ws://h:99999", "", " ",
    "\u202e", "x" * 100_000, "inmp441", "../../../../etc/shadow", "/", ".", "mix",
    "AIza" + "S" * 35, "auth_tokens/abcdefgh", "ya29." + "a" * 30,
]


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, except that JSON writes characters beyond the BMP as a
    # surrogate pair, which TOML refuses: a hostile value too.
    return json.dumps(text)


def _nested(depth: int, table: bool) -> str:
    return ("{a=" * depth + "1" + "}" * depth) if table else ("[" * depth + "]" * depth)


VALUES = st.one_of(
    st.integers().map(str),
    st.integers(min_value=300, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=6000).map(lambda n: "-" + "9" * n + ".5"),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: "nan" if f != f else ("inf" if f == float("inf") else
                                        "-inf" if f == float("-inf") else repr(f))),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.sampled_from(HOSTILE_STRINGS).map(_toml_string),
    st.text(max_size=60).map(_toml_string),
    st.tuples(st.integers(min_value=1, max_value=3000), st.booleans()).map(
        lambda t: _nested(*t)),
    st.lists(st.integers(), max_size=5).map(lambda v: "[" + ", ".join(map(str, v)) + "]"),
    st.sampled_from(["1979-05-27T07:32:00Z", "{}", "[]", '"""x', "'", "[[", "{ a = 1, a = 2 }"]),
)


def _check(text: str) -> None:
    try:
        config = parse_config(text, source="fuzz.toml", base_dir=BASE_DIR)
    except ConfigError as exc:
        assert exc.problems
        lines = text.count("\n") + 1
        for problem in exc.problems:
            assert problem.message
            assert problem.line is None or 1 <= problem.line <= lines, str(problem)
            str(problem)
    else:
        assert isinstance(config, AgentConfig)


@given(st.lists(st.tuples(st.sampled_from(KEY_LINES), VALUES), min_size=1, max_size=4))
def test_hostile_values_for_every_key_of_the_example(edits: list[tuple[int, str]]) -> None:
    lines = list(EXAMPLE)
    for index, value in edits:
        match = _KEY_LINE.match(lines[index])
        assert match is not None
        lines[index] = f"{match.group(1)} = {value}"
    _check("\n".join(lines) + "\n")


@given(st.lists(st.sampled_from(range(len(EXAMPLE))), max_size=6), st.text(max_size=80),
       st.integers(min_value=0, max_value=len(EXAMPLE)))
def test_lines_dropped_and_text_inserted(drop: list[int], insert: str, where: int) -> None:
    lines = [line for i, line in enumerate(EXAMPLE) if i not in set(drop)]
    lines.insert(min(where, len(lines)), insert)
    _check("\n".join(lines))


@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@given(st.lists(st.sampled_from(["[", "]", "{", "}", "a", "=", "1", ",", '"', "\n", "[[x]]",
                                 "x.y = ", "tools = ", "[gpio]\n", "[[tools]]\n"]),
                max_size=300))
def test_tokens_of_toml_in_any_order(tokens: list[str]) -> None:
    _check("".join(tokens))
