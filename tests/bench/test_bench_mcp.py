"""MCP tool call latency over the wire: from the toolCall frame leaving a server on 127.0.0.1
to the functionResponse frame arriving back, through the real client and the tool registry to
an MCP server over stdio (the SDK's own server side, tests/support/mcp_home_server.py). Beside
it in the same run: the same round trip to a GPIO tool on a mock pin, and a bare MCP client
calling the same tool directly (the SDK and the server alone).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from gpiozero.pins.mock import MockFactory, MockPWMPin
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from agent.live.conversation import dispatcher_handler, start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.media.audio import NullSink, SilenceSource
from agent.tools import ToolRegistry
from agent.tools.mcp_client import McpServer
from agent.tools.spec import McpServerSpec
from tests.bench.test_bench_tool_frames import measure, ours, pct

SERVER = Path(__file__).parents[1] / "support" / "mcp_home_server.py"
CALLS = 300


def args_for(n: int) -> dict[str, object]:
    return {"entity_id": "light.desk", "brightness": n % 256}


async def through_mcp(url: str) -> Callable[[], Awaitable[None]]:
    factory = MockFactory(pin_class=MockPWMPin)
    registry = ToolRegistry([], factory)
    spec = McpServerSpec(name="home", command=(sys.executable, str(SERVER)), prefix="home_",
                         rate_limit=None)
    registry.add_mcp_server(McpServer(spec))
    registry.open()
    await registry.start_mcp(wait_s=30)
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k", endpoint=url),
                                model="m")
    session = await model.connect()
    controller = await start_audio_conversation(
        session, source=SilenceSource(seconds=0), sink=NullSink(),
        function_calling_handler=dispatcher_handler(registry),
    )  # fmt: skip

    async def close() -> None:
        await controller.stop()
        await session.close()
        await registry.stop_mcp()
        registry.close()
        factory.close()

    return close


async def bare_mcp() -> list[float]:
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER)])
    times = []
    async with stdio_client(params) as streams, ClientSession(*streams[:2]) as session:
        await session.initialize()
        for n in range(CALLS):
            started = time.perf_counter()
            await session.call_tool("light_on", args_for(n))
            times.append((time.perf_counter() - started) * 1e3)
    return times[20:]


def test_mcp_tool_call_over_the_wire() -> None:
    rows = [
        ("MCP tool: frame -> server -> frame",
         uvloop.run(measure(through_mcp, "home_light_on", args_for, CALLS))),
        ("GPIO tool: frame -> pin -> frame", uvloop.run(measure(ours, calls=CALLS))),
        ("bare MCP client call", uvloop.run(bare_mcp())),
    ]
    base = rows[2][1]
    print(f"\n\nMCP over stdio: toolCall -> functionResponse on 127.0.0.1, {CALLS} calls (ms)")
    print(f"{'path':<36}{'p50':>8}{'p99':>8}{'p99 / bare MCP':>16}")
    for name, times in rows:
        print(f"{name:<36}{statistics.median(times):>8.3f}{pct(times, 0.99):>8.3f}"
              f"{pct(times, 0.99) / pct(base, 0.99):>15.2f}x")
