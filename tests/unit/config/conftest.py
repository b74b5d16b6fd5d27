"""Fixtures for config tests: real TOML files in a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config

WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write TOML text (dedented) to ``agent.toml`` in a fresh folder; return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "agent.toml"
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems_of(write_config: WriteConfig) -> Callable[[str], list[str]]:
    """Load TOML text that must fail; return its problems as printed lines, minus the
    folder of the file (so tests read ``agent.toml:3: ...``)."""

    def problems(text: str) -> list[str]:
        path = write_config(text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        return [str(p).replace(str(path.parent) + "/", "") for p in info.value.problems]

    return problems
