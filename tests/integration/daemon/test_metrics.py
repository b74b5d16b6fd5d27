"""Prometheus metrics of the whole daemon against the emulator: scraped over HTTP and parsed
with prometheus-client's own parser, or read from the node_exporter textfile it writes."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.systemd import Notifier

from .conftest import LAMP, emulator_config, free_port

T = 10.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig()) as running:
        yield running


def config(endpoint: str, metrics: str) -> str:
    return emulator_config(endpoint, f"""
{LAMP}

[metrics]
{metrics}
""")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def until_true(check) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not await check():
            await asyncio.sleep(0.05)


async def test_the_running_daemon_is_scraped(emulator: Emulator, tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon(parse_config(config(emulator.url, f'listen = "127.0.0.1:{port}"'),
                                 base_dir=tmp_path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    url = f"http://127.0.0.1:{port}/metrics"

    async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        return samples(body.decode())

    async def live_and_streaming() -> bool:
        try:
            got = await scrape()
        except OSError:
            return False
        return (got.get(("edge_agent_session_state", (("state", "live"),))) == 1.0
                and got.get(("edge_agent_chunks_sent_total", ()), 0) > 5)

    try:
        await until_true(live_and_streaming)
        assert daemon.parts is not None
        await daemon.parts.registry.call("lamp", {"action": "on"})
        await daemon.parts.registry.call("lamp", {"action": "dance"})
        await daemon.parts.registry.call("teleport", {})
        got = await scrape()
        assert got[("edge_agent_connections_total", ())] >= 1
        assert got[("edge_agent_session_state", (("state", "backing-off"),))] == 0.0
        assert got[("edge_agent_tool_calls_total", (("outcome", "ok"), ("tool", "lamp")))] == 1
        assert got[("edge_agent_tool_calls_total", (("outcome", "invalid"), ("tool", "lamp")))] == 1
        assert got[("edge_agent_tool_calls_total",
                    (("outcome", "unknown"), ("tool", "unknown")))] == 1
    finally:
        daemon.stop()
        assert await task == 0
    with pytest.raises(OSError):  # the server went with the daemon
        await scrape()


async def test_metrics_go_to_a_textfile_instead(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "edge_agent.prom"
    text = config(emulator.url, f'textfile = "{path}"\ntextfile_interval_s = 1')
    daemon = Daemon(parse_config(text, base_dir=tmp_path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())

    async def written_live() -> bool:
        return path.exists() and samples(path.read_text()).get(
            ("edge_agent_session_state", (("state", "live"),))) == 1.0

    try:
        await until_true(written_live)
        leftovers = await asyncio.to_thread(lambda: list(tmp_path.glob("*.tmp*")))
        assert not leftovers  # written whole, then renamed
    finally:
        daemon.stop()
        await task


async def test_an_address_in_use_fails_the_start(emulator: Emulator, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(parse_config(config(emulator.url, f'listen = "127.0.0.1:{port}"'),
                                     base_dir=tmp_path), notifier=Notifier(""))
        assert await daemon.run() == 1
