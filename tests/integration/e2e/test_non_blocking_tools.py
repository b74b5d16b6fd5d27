"""Non-blocking tools end to end: the declaration says NON_BLOCKING, the emulator's model goes
on talking while the call runs, and the response carries the tool's scheduling, which the
emulator follows (speak about the result after the reply, at once, or not at all). A blocking
tool, beside it, still holds the reply until its result is in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from agent.config.gpio import parse_tools
from agent.emulator.config import EmulatorConfig
from agent.emulator.recording import ConnectionRecording
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.conversation import dispatcher_handler, start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.types import FunctionDeclaration, Tool
from agent.media.audio import NullSink, SilenceSource
from agent.tools import ToolRegistry

T = 10.0
SLOW_S = 0.6
HANDLER = (
    f"import time\n\ndef report(args, ctx):\n    time.sleep({SLOW_S})\n    return 'all good'\n"
)


def tool(scheduling: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "report", "description": "A slow status report.", "kind": "custom",
        "handler": "edge_slow_report:report", "timeout_s": 5,
    }  # fmt: skip
    if scheduling is not None:
        spec.update(behavior="NON_BLOCKING", scheduling=scheduling)
    return spec


@pytest.fixture
def slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "edge_slow_report.py").write_text(HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))


class Run:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def record(self, name: str, detail: dict[str, Any]) -> None:
        self.events.append((asyncio.get_running_loop().time(), name, detail))

    def first(self, name: str) -> float:
        return next(t for t, n, _ in self.events if n == name)

    def count(self, name: str) -> int:
        return sum(1 for _, n, _ in self.events if n == name)

    def connection(self) -> ConnectionRecording:
        return self.emulator.recordings.session()

    def responses(self) -> list[dict[str, Any]]:
        return [
            response
            for r in self.connection().received if r.kind == "toolResponse"
            for response in r.message["toolResponse"]["functionResponses"]
        ]  # fmt: skip

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(T):
            while not predicate():
                await asyncio.sleep(0.01)


@pytest.fixture
async def run(slow_module: None) -> AsyncIterator[Callable[..., Any]]:
    stack: list[Any] = []

    async def start(scheduling: str | None, reply_s: float = 0.3) -> Run:
        scenario = Scenario.from_mapping({"name": "nb", "turn": [
            {"text": "go", "call": [{"name": "report"}], "reply": "Working on it.",
             "audio_s": reply_s},
        ]})  # fmt: skip
        emulator = Emulator(EmulatorConfig(scenario=scenario))
        await emulator.start()
        factory = MockFactory()
        registry = ToolRegistry(parse_tools([tool(scheduling)]), factory)
        registry.open()
        declarations = [FunctionDeclaration(**d) for d in registry.declarations()]
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key="k", endpoint=emulator.url),
            model="gemini-live-2.5-flash-preview",
            tools=[Tool(function_declarations=declarations)],
        )
        session = await model.connect()
        result = Run(emulator)
        controller = await start_audio_conversation(
            session, source=SilenceSource(seconds=None), sink=NullSink(),
            function_calling_handler=dispatcher_handler(registry), on_event=result.record,
        )  # fmt: skip
        stack.append((emulator, registry, factory, session, controller))
        result.record("sent", {})
        await session.send("go")
        return result

    yield start
    for emulator, registry, factory, session, controller in stack:
        await controller.stop()
        await session.close()
        registry.close()
        factory.close()
        await emulator.close()


def declared_behavior(run: Run) -> str:
    setup = run.connection().received[0].message["setup"]
    [declaration] = setup["tools"][0]["functionDeclarations"]
    return str(declaration["behavior"])


async def test_a_non_blocking_call_runs_while_the_model_talks_and_its_result_follows(
    run: Callable[..., Any],
) -> None:
    r = await run("WHEN_IDLE")
    # the emulator counts a reply when it is sent; the client sees its end a little later
    await r.until(lambda: r.emulator.stats.replies >= 2 and r.count("model.turn_complete") >= 2)
    assert declared_behavior(r) == "NON_BLOCKING"
    # the reply was complete before the slow tool had even answered
    assert r.first("model.turn_complete") < r.first("tool.response")
    assert r.first("tool.response") - r.first("sent") >= SLOW_S
    [response] = r.responses()
    assert response["scheduling"] == "WHEN_IDLE"
    assert response["response"] == {"result": "all good"}
    assert r.emulator.stats.non_blocking_calls == 1
    assert r.emulator.stats.scheduled_responses == {"WHEN_IDLE": 1}
    assert r.count("model.turn_complete") == 2  # the reply, then the one about the result


async def test_a_silent_result_is_taken_without_a_word(run: Callable[..., Any]) -> None:
    r = await run("SILENT")
    await r.until(lambda: bool(r.responses()))
    await r.until(lambda: r.emulator.stats.scheduled_responses == {"SILENT": 1})
    await asyncio.sleep(0.5)
    assert r.responses()[0]["scheduling"] == "SILENT"
    assert r.emulator.stats.replies == 1
    assert r.count("model.turn_complete") == 1


async def test_an_interrupting_result_cuts_the_reply_short(run: Callable[..., Any]) -> None:
    r = await run("INTERRUPT", reply_s=5.0)
    await r.until(lambda: r.count("model.turn_complete") >= 2)
    assert r.responses()[0]["scheduling"] == "INTERRUPT"
    assert r.count("model.interrupted") == 1
    assert r.first("model.interrupted") - r.first("sent") < 3.0  # well before 5 s of reply
    assert r.count("tool.cancelled") == 0


async def test_a_blocking_call_still_holds_the_reply(run: Callable[..., Any]) -> None:
    r = await run(None)
    await r.until(lambda: r.count("model.turn_complete") >= 1)
    assert declared_behavior(r) == "BLOCKING"
    assert r.first("tool.response") < r.first("model.turn_complete")
    assert "scheduling" not in r.responses()[0]
    assert r.emulator.stats.non_blocking_calls == 0
