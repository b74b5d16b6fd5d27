"""``edge-agent emulator``: arguments, help text, and a real run of ``python -m agent.emulator``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from agent.emulator import cli
from tests.support.emulator_client import start_emulator_process

DEV = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=k"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent emulator")
    cli.add_arguments(parser)
    return parser


def test_help_documents_the_scenario_format_with_an_example() -> None:
    text = _parser().format_help()
    for needle in ("[[turn]]", "spoken = 2", "call = [{ name", "[[fault]]", "lamp.toml"):
        assert needle in text
    assert cli.EXAMPLE.is_file()


def test_config_from_args() -> None:
    args = _parser().parse_args(
        ["--port", "0", "--scenario", str(cli.EXAMPLE), "--model", "a", "--model", "b",
         "--lifetime", "30", "--time-scale", "0.5", "--text-frames", "--api-key", "s",
         "--handle-ttl", "60", "--client-content", "initial_history_only"]
    )  # fmt: skip
    config = cli.config_from_args(args)
    assert config.handle_ttl_s == 60 and config.client_content == "initial_history_only"
    assert cli.config_from_args(_parser().parse_args([])).client_content == "any"
    assert config.port == 0 and config.models == ("a", "b") and config.api_key == "s"
    assert config.connection_lifetime_s == 30 and config.time_scale == 0.5
    assert not config.binary_frames and config.scenario is not None and not config.record


async def test_a_bad_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[turn]]\nspoken = 'two'\n")
    assert await cli.run(_parser().parse_args(["--scenario", str(bad)])) == 2
    assert "bad.toml" in capsys.readouterr().err


async def test_python_m_agent_emulator_serves_and_stops_on_sigterm() -> None:
    process, url = await start_emulator_process("--scenario", str(cli.EXAMPLE))
    try:
        async with asyncio.timeout(20):
            async with connect(url + DEV) as ws:
                await ws.send(json.dumps({"setup": {"model": "models/m"}}))
                assert "setupComplete" in json.loads(await ws.recv())
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
