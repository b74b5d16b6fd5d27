"""A real MCP server (the SDK's own server side, over stdio) supervised by `McpServer`: tools
listed and declared, calls answered, a failing tool answered with its error, a crashed server
restarted with its tools answering an error meanwhile, and a slow call cancelled."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.tools.mcp_client import McpServer
from agent.tools.spec import McpServerSpec

SERVER = Path(__file__).parents[2] / "support" / "mcp_home_server.py"
T = 20.0


@pytest.fixture
async def home() -> AsyncIterator[McpServer]:
    spec = McpServerSpec(name="home", command=(sys.executable, str(SERVER)), prefix="home_",
                         timeout_s=5.0)
    server = McpServer(spec, initial_backoff_s=0.2)
    await server.start()
    assert await server.wait_ready(T)
    yield server
    await server.stop()


async def test_tools_are_listed_and_declared_with_a_prefix(home: McpServer) -> None:
    names = {d["name"]: d for d in home.declarations()}
    assert set(names) == {"home_light_on", "home_open_garage", "home_slow_report",
                           "home_broken", "home_crash"}
    light = names["home_light_on"]["parameters"]
    assert light["required"] == ["entity_id"]
    assert light["properties"]["brightness"]["nullable"] is True
    assert "either" not in str(names)  # a union: left out with a warning


async def test_calls_are_answered_and_failures_come_back_as_errors(home: McpServer) -> None:
    assert await home.call("home_light_on", {"entity_id": "light.desk", "brightness": 3}) == {
        "result": {"result": "light.desk on at 3"}}
    failed = await home.call("home_broken", {})
    assert "the boiler is offline" in failed["error"]
    assert "no tool" in (await home.call("home_nothing", {}))["error"]


async def test_a_crashed_server_is_restarted_and_answers_errors_meanwhile(
    home: McpServer,
) -> None:
    crashed = await home.call("home_crash", {})
    assert "error" in crashed
    async with asyncio.timeout(T):
        while home.up:
            await asyncio.sleep(0.02)
    meanwhile = await home.call("home_light_on", {"entity_id": "light.desk"})
    assert "not reachable right now" in meanwhile["error"]
    assert await home.wait_ready(T)
    assert home.restarts >= 1
    again = await home.call("home_light_on", {"entity_id": "light.desk"})
    assert again == {"result": {"result": "light.desk on at None"}}


async def test_a_slow_call_is_cancelled_and_the_session_goes_on(home: McpServer) -> None:
    call = asyncio.create_task(home.call("home_slow_report", {"seconds": 10}))
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert home.up
    assert "result" in await home.call("home_light_on", {"entity_id": "light.desk"})


HA = Path(__file__).parents[2] / "support" / "mcp_ha_server.py"
TOKEN = "ha-long-lived-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def home_assistant() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, str(HA), str(port), TOKEN)
    try:
        async with asyncio.timeout(T):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield f"http://127.0.0.1:{port}/api/mcp"
    finally:
        process.terminate()
        await process.wait()


async def test_a_home_assistant_style_server_over_http_with_a_token(home_assistant: str) -> None:
    spec = McpServerSpec(name="ha", url=home_assistant, prefix="", timeout_s=5.0,
                         allow=("HassTurnOn", "GetLiveContext"))
    server = McpServer(spec, secret=TOKEN)
    await server.start()
    try:
        assert await server.wait_ready(T)
        assert {d["name"] for d in server.declarations()} == {"HassTurnOn", "GetLiveContext"}
        assert await server.call("HassTurnOn", {"name": "porch light"}) == {
            "result": {"result": "porch light is on"}}
        context = await server.call("GetLiveContext", {})
        assert context == {"result": {"kitchen light": "off", "porch light": "on"}}
    finally:
        await server.stop()


async def test_a_wrong_token_never_gets_the_tools(home_assistant: str) -> None:
    server = McpServer(McpServerSpec(name="ha", url=home_assistant), secret="wrong",
                       initial_backoff_s=0.1)
    await server.start()
    try:
        assert not await server.wait_ready(1.0)
        assert server.tools == {} and server.restarts >= 1
    finally:
        await server.stop()


async def test_a_changed_tool_list_is_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.tools.mcp_client.PING_S", 0.1)
    monkeypatch.setattr("agent.tools.mcp_client.RELIST_S", 0.2)
    spec = McpServerSpec(name="home", command=(sys.executable, str(SERVER)), prefix="home_",
                         allow=("light_on",))
    server = McpServer(spec)
    await server.start()
    try:
        assert await server.wait_ready(T)
        assert set(server.tools) == {"home_light_on"}
        # the allow-list stands in for the server's list changing: the next listing shows it
        object.__setattr__(server, "spec", McpServerSpec(
            name="home", command=spec.command, prefix="home_", allow=("light_on", "broken")))
        async with asyncio.timeout(T):
            while "home_broken" not in server.tools:
                await asyncio.sleep(0.05)
    finally:
        await server.stop()
