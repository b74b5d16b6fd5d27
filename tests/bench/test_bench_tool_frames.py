"""Tool call latency over the wire: from the toolCall frame leaving a server on 127.0.0.1 to the
functionResponse frame arriving back, through the real client (LiveSession, the conversation's
concurrent call tasks, the tool registry's validation and worker thread, a gpiozero mock pin).
The measurement includes both loopback hops, so it bounds "toolCall received -> pin set ->
functionResponse sent" from above. Baseline, in the same run: a bare websockets client that
answers each toolCall frame with a fixed response at once (the transport alone).
Goal: p99 under 5 ms.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import uvloop
import websockets
from gpiozero.pins.mock import MockFactory, MockPWMPin
from websockets.asyncio.server import ServerConnection, serve

from agent.config.gpio import parse_tools
from agent.live.conversation import dispatcher_handler, start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.media.audio import NullSink, SilenceSource
from agent.tools import ToolRegistry

CALLS = 500


async def measure(
    client: Callable[[str], Awaitable[Callable[[], Awaitable[None]]]],
    name: str = "lamp",
    args_for: Callable[[int], dict[str, object]] = lambda n: {"action": "on" if n % 2 else "off"},
    calls: int = CALLS,
) -> list[float]:
    """Round trips in ms of ``calls`` calls of ``name``; ``client(url)`` connects and returns
    its closer."""
    times: list[float] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # setup
        await ws.send(b'{"setupComplete":{}}')
        for n in range(calls):
            frame = {"toolCall": {"functionCalls": [{"id": f"c{n}", "name": name,
                                                     "args": args_for(n)}]}}
            started = time.perf_counter()
            await ws.send(json.dumps(frame).encode())
            while True:
                reply = json.loads(await ws.recv())
                if "toolResponse" in reply:
                    break
            times.append((time.perf_counter() - started) * 1e3)
            assert reply["toolResponse"]["functionResponses"][0]["id"] == f"c{n}"
        done.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        close = await client(f"ws://127.0.0.1:{port}")
        async with asyncio.timeout(60):
            await done.wait()
        await close()
    return times[20:]  # warm-up


async def ours(url: str) -> Callable[[], Awaitable[None]]:
    factory = MockFactory(pin_class=MockPWMPin)
    registry = ToolRegistry(
        parse_tools(
            [
                {
                    "name": "lamp",
                    "description": "Lamp.",
                    "kind": "digital_output",
                    "pin": 17,
                    "rate_limit": False,
                }
            ]
        ),
        factory,
    )
    registry.open()
    model = LiveGenerativeModel(
        backend=GeminiDeveloperBackend(api_key="k", endpoint=url), model="m"
    )
    session = await model.connect()
    controller = await start_audio_conversation(
        session,
        source=SilenceSource(seconds=0),
        sink=NullSink(),
        function_calling_handler=dispatcher_handler(registry),
    )

    async def close() -> None:
        await controller.stop()
        await session.close()
        registry.close()
        factory.close()

    return close


async def bare(url: str) -> Callable[[], Awaitable[None]]:
    ws = await websockets.connect(url, compression=None)
    await ws.send('{"setup":{}}')
    await ws.recv()

    async def answer() -> None:
        async for raw in ws:
            call = json.loads(raw)["toolCall"]["functionCalls"][0]
            response = {"id": call["id"], "name": call["name"], "response": {"result": "ok"}}
            await ws.send(json.dumps({"toolResponse": {"functionResponses": [response]}}))

    task = asyncio.create_task(answer())

    async def close() -> None:
        task.cancel()
        await ws.close()

    return close


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * len(values)))]


def test_tool_call_over_the_wire() -> None:
    rows = []
    for name, client in (("ours: frame -> pin -> frame", ours), ("bare echo client", bare)):
        times = uvloop.run(measure(client))
        rows.append((name, statistics.median(times), pct(times, 0.99), max(times)))
    base = rows[1]
    print(f"\n\ntoolCall frame -> functionResponse frame on 127.0.0.1, {CALLS} calls (ms)")
    print(f"{'client':<30}{'p50':>8}{'p99':>8}{'max':>8}{'p99 / bare':>12}")
    for name, p50, p99, worst in rows:
        print(f"{name:<30}{p50:>8.3f}{p99:>8.3f}{worst:>8.3f}{p99 / base[2]:>11.1f}x")
    met = "met" if rows[0][2] < 5 else "NOT met"
    print(f"goal: p99 < 5 ms -> {met}")


if __name__ == "__main__":
    test_tool_call_over_the_wire()
