"""Confirmation for an MCP server's tools: the first call reaches no server, the confirming call
within the window (or a press of the confirm button) does, a late one does not; tools not named
in ``confirm`` act at once; the audit log shows both steps."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import structlog
from gpiozero.pins.mock import MockFactory

from agent.tools.mcp_client import McpServer
from agent.tools.registry import ToolRegistry
from agent.tools.spec import McpServerSpec, StatusGpioSpec

SERVER = Path(__file__).parents[2] / "support" / "mcp_home_server.py"
T = 20.0
OPEN = {"door": "north"}


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "garage.log"  # where the server writes each move of the door


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
async def registry(journal: Path, clock: list[float]) -> AsyncIterator[ToolRegistry]:
    factory = MockFactory()
    spec = McpServerSpec(name="home", command=(sys.executable, str(SERVER), str(journal)),
                         prefix="home_", confirm=("open_garage",), confirm_window_s=20.0)
    made = ToolRegistry([], factory, clock=lambda: clock[0],
                        status=StatusGpioSpec(confirm_button=16))
    made.add_mcp_server(McpServer(spec, initial_backoff_s=0.2))
    made.open(asyncio.get_running_loop())
    await made.start_mcp(T)
    yield made
    await made.stop_mcp()
    made.close()
    factory.close()


def moves(journal: Path) -> list[str]:
    return journal.read_text().splitlines() if journal.exists() else []


def audit(logs: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(e["tool"], e["outcome"], e.get("confirmed_by"))
            for e in logs if e["event"] == "tool.actuated"]


async def test_only_the_confirming_call_reaches_the_server(
    registry: ToolRegistry, journal: Path, clock: list[float]
) -> None:
    with structlog.testing.capture_logs() as logs:
        first = await registry.call("home_open_garage", OPEN)
        assert "needs the user's confirmation" in first["result"]
        assert "press the confirm button" in first["result"]
        assert moves(journal) == []
        clock[0] += 0.2  # straight after: nobody was asked
        too_soon = await registry.call("home_open_garage", OPEN)
        assert "wait for their answer" in too_soon["result"]
        clock[0] += 5
        done = await registry.call("home_open_garage", OPEN)
    assert done == {"result": {"result": "north opening"}}
    assert moves(journal) == ["open north"]
    assert audit(logs) == [("home_open_garage", "awaiting_confirmation", None)] * 2 + [
        ("home_open_garage", "confirmed", None)]
    assert registry.tool_outcomes()[("home_open_garage", "confirmed")] == 1


async def test_nothing_reaches_the_server_after_the_window(
    registry: ToolRegistry, journal: Path, clock: list[float]
) -> None:
    await registry.call("home_open_garage", OPEN)
    clock[0] += 21
    late = await registry.call("home_open_garage", OPEN)
    assert "needs the user's confirmation" in late["result"]  # a new request, not a yes
    clock[0] += 21
    assert await registry.confirm_by_button() is None
    assert moves(journal) == []


async def test_the_confirm_button_carries_out_a_waiting_mcp_request(
    registry: ToolRegistry, journal: Path, clock: list[float]
) -> None:
    heard: list[str] = []
    registry.on_confirmed(lambda tool, payload: heard.append(tool))
    await registry.call("home_open_garage", {"door": "south"})
    clock[0] += 3
    with structlog.testing.capture_logs() as logs:
        taken = await registry.confirm_by_button()
    assert taken == ("home_open_garage", {"result": {"result": "south opening"}})
    assert heard == ["home_open_garage"]
    assert moves(journal) == ["open south"]
    assert audit(logs) == [("home_open_garage", "confirmed", "button")]


async def test_tools_not_named_in_confirm_act_at_once(registry: ToolRegistry) -> None:
    answer = await registry.call("home_light_on", {"entity_id": "light.desk"})
    assert answer == {"result": {"result": "light.desk on at None"}}


def test_confirm_true_covers_every_tool() -> None:
    spec: Callable[..., McpServerSpec] = McpServerSpec
    every = spec(name="a", command=("x",), confirm=True)
    named = spec(name="b", command=("x",), confirm=("open_garage",))
    assert every.needs_confirmation("light_on") and every.needs_confirmation("open_garage")
    assert named.needs_confirmation("open_garage") and not named.needs_confirmation("light_on")
