"""A real Prometheus server (Debian's package) scrapes the running daemon every second, and its
HTTP API answers queries over the agent's series, the dashboard query of the README included."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.systemd import Notifier

from .conftest import emulator_config, free_port

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs Debian's prometheus package (tests/run.sh)")
T = 60.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(time_scale=0.1)) as running:
        yield running


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[str]:
    """A Prometheus server on 127.0.0.1 scraping the agent's port; yields its URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: edge-agent
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def query(base: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


async def until_answered(base: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    async with asyncio.timeout(T):
        while True:
            try:
                result = await asyncio.to_thread(query, base, promql)
            except OSError:
                result = []
            if result:
                return result
            await asyncio.sleep(0.5)


async def test_prometheus_scrapes_the_daemon_and_answers_queries(
    emulator: Emulator, tmp_path: Path, metrics_port: int, prometheus: str,
) -> None:
    settings = parse_config(emulator_config(emulator.url, f"""
[metrics]
listen = "127.0.0.1:{metrics_port}"

[usage]
file = "usage.json"
""", audio_input="silence"), base_dir=tmp_path)
    daemon = Daemon(settings, notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        await until_answered(prometheus, 'up{job="edge-agent"} == 1')
        [live] = await until_answered(prometheus, 'edge_agent_session_state{state="live"} == 1')
        assert live["metric"]["instance"] == f"127.0.0.1:{metrics_port}"
        assert daemon.parts is not None
        await daemon.parts.session.send("what is the weather like")
        tokens = await until_answered(
            prometheus, 'sum by (modality) (edge_agent_tokens_today{direction="input"}) > 0')
        assert {r["metric"]["modality"] for r in tokens} >= {"AUDIO", "TEXT"}
        # The README's dashboard query: microphone audio sent, 25 chunks of 40 ms a second.
        [rate] = await until_answered(prometheus, "rate(edge_agent_chunks_sent_total[5s]) > 10")
        assert float(rate["value"][1]) < 40
    finally:
        daemon.stop()
        assert await task == 0
