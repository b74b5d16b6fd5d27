"""[memory]: on by default, bounded turns and characters, a file beside the config or in the
StateDirectory, and a handle validity the backend decides unless it is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.build.memory import handle_valid_s, memory_path, open_memory, session_mark
from agent.config import ConfigError, MemoryConfig, parse_config
from agent.live.memory import Saved, Turn, encode

LIVE = '[live]\nbackend = "emulator"\n'


def memory(text: str, base: Path = Path("/etc/edge-agent"), live: str = LIVE) -> MemoryConfig:
    return parse_config(live + "[memory]\n" + text + "\n", base_dir=base).memory


def test_defaults() -> None:
    assert parse_config(LIVE, base_dir=Path(".")).memory == MemoryConfig(
        remember=True, file=None, max_turns=12, max_chars=4_000, handle_valid_s=None,
        seed="initial_history")


@pytest.mark.parametrize("seed", ["initial_history", "context"])
def test_the_seed_is_sent_as_chosen(seed: str) -> None:
    assert memory(f'seed = "{seed}"').seed == seed


def test_a_relative_file_is_beside_the_config() -> None:
    got = memory('file = "state/conversation.json"\nmax_turns = 4\nhandle_valid_s = 600')
    assert got.file == Path("/etc/edge-agent/state/conversation.json")
    assert got.max_turns == 4 and got.handle_valid_s == 600.0


@pytest.mark.parametrize(("written", "key", "fragment"), [
    ("remember = 1", "memory.remember", "true or false"),
    ("max_turns = 0", "memory.max_turns", "between 1 and 64"),
    ("max_chars = 1000000", "memory.max_chars", "between 100 and 16384"),
    ("handle_valid_s = 1", "memory.handle_valid_s", "between 60 and 604800"),
    ('file = ""', "memory.file", "must not be empty"),
    ("turns = 3", "memory.turns", "unknown key"),
    ('seed = "history"', "memory.seed", 'must be one of "initial_history", "context"'),
    ("seed = true", "memory.seed", "must be a string"),
])
def test_bad_settings(written: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        memory(written)
    [problem] = info.value.problems
    assert problem.key == key
    assert fragment in problem.message


def test_the_file_is_in_the_state_directory_unless_set(tmp_path: Path) -> None:
    config = parse_config(LIVE, base_dir=tmp_path)
    assert memory_path(config, {}) is None
    assert memory_path(config, {"STATE_DIRECTORY": "/var/lib/edge-agent:/var/lib/other"}) == \
        Path("/var/lib/edge-agent/conversation.json")
    given = parse_config(LIVE + '[memory]\nfile = "m.json"\n', base_dir=tmp_path)
    assert memory_path(given, {"STATE_DIRECTORY": "/x"}) == tmp_path / "m.json"


def test_the_backend_decides_how_long_a_handle_is_tried() -> None:
    vertex = '[live]\nbackend = "vertex"\nproject_id = "p"\n'
    assert handle_valid_s(parse_config(LIVE, base_dir=Path("."))) == 7_200.0
    assert handle_valid_s(parse_config(vertex, base_dir=Path("."))) == 86_400.0
    set_here = parse_config(vertex + "[memory]\nhandle_valid_s = 600\n", base_dir=Path("."))
    assert handle_valid_s(set_here) == 600.0


def test_the_mark_changes_with_the_model_and_the_service_only() -> None:
    base = parse_config(LIVE, base_dir=Path("."))
    voice = parse_config(LIVE + 'voice = "Kore"\n', base_dir=Path("."))
    model = parse_config(LIVE + 'model = "gemini-2.0-flash-live-001"\n', base_dir=Path("."))
    endpoint = parse_config(LIVE + 'endpoint = "ws://127.0.0.1:9"\n', base_dir=Path("."))
    assert session_mark(base) == session_mark(voice), "a handle carries a new voice"
    assert len({session_mark(base), session_mark(model), session_mark(endpoint)}) == 3


def test_remember_false_keeps_nothing_and_deletes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    path.write_bytes(encode(Saved("m", "h", 1.0, (Turn("user", "secret"),))))
    on = parse_config(LIVE + f'[memory]\nfile = "{path}"\n', base_dir=tmp_path)
    assert open_memory(on) is not None and path.exists()
    off = parse_config(LIVE + f'[memory]\nfile = "{path}"\nremember = false\n', base_dir=tmp_path)
    assert open_memory(off) is None
    assert not path.exists()
    assert open_memory(parse_config(LIVE, base_dir=tmp_path), {}) is None
