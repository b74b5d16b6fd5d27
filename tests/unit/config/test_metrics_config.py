"""[metrics]: off by default; listen as HOST:PORT, or a textfile instead, never both."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, MetricsConfig, parse_config

LIVE = '[live]\nbackend = "emulator"\n'


def metrics(text: str, base: Path = Path("/etc/edge-agent")) -> MetricsConfig:
    return parse_config(LIVE + "[metrics]\n" + text + "\n", base_dir=base).metrics


def test_off_unless_set() -> None:
    assert not parse_config(LIVE, base_dir=Path(".")).metrics.enabled


@pytest.mark.parametrize(("written", "address"), [
    ('"127.0.0.1:9464"', ("127.0.0.1", 9464)),
    ('"[::1]:9464"', ("::1", 9464)),
    ('"pi.local:80"', ("pi.local", 80)),
])
def test_listen_addresses(written: str, address: tuple[str, int]) -> None:
    assert metrics(f"listen = {written}").listen == address


def test_a_relative_textfile_is_beside_the_config() -> None:
    got = metrics('textfile = "m.prom"\ntextfile_interval_s = 30')
    assert got.textfile == Path("/etc/edge-agent/m.prom")


@pytest.mark.parametrize(("written", "key", "fragment"), [
    ('listen = "9464"', "metrics.listen", 'must be "HOST:PORT"'),
    ('listen = "localhost:0"', "metrics.listen", "port 1..65535"),
    ('listen = "localhost:99999"', "metrics.listen", "port 1..65535"),
    ('listen = "a b:1"', "metrics.listen", 'must be "HOST:PORT"'),
    ('listen = 9464', "metrics.listen", "must be a string"),
    ('listen = "h:1"\ntextfile = "x"', "metrics.textfile", "not both"),
    ("textfile_interval_s = 0", "metrics.textfile_interval_s", "between 1 and 3600"),
    ('port = 9464', "metrics.port", "unknown key"),
])
def test_bad_settings(written: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        metrics(written)
    [problem] = info.value.problems
    assert problem.key == key
    assert fragment in problem.message
