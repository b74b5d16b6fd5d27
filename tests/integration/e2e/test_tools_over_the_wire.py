"""Every handler kind end to end: a toolCall frame from the emulator, the mock pin changes, and
the functionResponse reaches the emulator with the call's id. Then the model's bad calls:
invalid arguments, an unknown tool, and a call cancelled while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from agent.config.gpio import parse_tools
from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.conversation import dispatcher_handler, start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.types import FunctionDeclaration, Tool
from agent.media.audio import NullSink, SilenceSource
from agent.tools import ToolRegistry

T = 10.0
TOOLS: list[dict[str, Any]] = [
    {"name": "lamp", "description": "Lamp.", "kind": "digital_output", "pin": 17},
    {"name": "door", "description": "Door.", "kind": "pulse", "pin": 18, "max_duration_s": 1},
    {"name": "strip", "description": "Strip.", "kind": "pwm", "pin": 12},
    {"name": "pan", "description": "Pan.", "kind": "servo", "pin": 16, "limits": [-60, 60]},
    {
        "name": "mood",
        "description": "Mood.",
        "kind": "rgb_led",
        "pins": {"red": 9, "green": 10, "blue": 11},
    },
    {
        "name": "button",
        "description": "Button.",
        "kind": "digital_input",
        "pin": 22,
        "pull": "up",
        "active_label": "pressed",
        "inactive_label": "released",
    },
    {"name": "chime", "description": "Chime.", "kind": "buzzer", "pin": 23, "tone": True},
    {
        "name": "weather",
        "description": "Weather.",
        "kind": "custom",
        "handler": "edge_weather_station:read",
        "parameters": {"type": "object", "properties": {"unit": {"type": "string"}}},
    },
]
WEATHER = "def read(args, ctx):\n    return {'temperature': 21.5, 'unit': args.get('unit', 'C')}\n"


@pytest.fixture
def factory() -> MockFactory:
    made = MockFactory(pin_class=MockPWMPin)
    yield made  # type: ignore[misc]
    made.reset()
    made.close()


@pytest.fixture
def weather_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "edge_weather_station.py").write_text(WEATHER)
    monkeypatch.syspath_prepend(str(tmp_path))


class Rig:
    """A conversation over the emulator with a tool registry on mock pins."""

    def __init__(self, emulator: Emulator, registry: ToolRegistry) -> None:
        self.emulator = emulator
        self.registry = registry

    def responses(self) -> list[dict[str, Any]]:
        out = []
        for received in self.emulator.recordings.session().received:
            if received.kind == "toolResponse":
                body = received.message.get("toolResponse") or received.message["tool_response"]
                out.extend(body["functionResponses"])
        return out

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(T):
            while not predicate():
                await asyncio.sleep(0.01)


@pytest.fixture
async def rig(factory: MockFactory, weather_module: None) -> AsyncIterator[Callable[..., Any]]:
    stack: list[Any] = []

    async def build(
        calls: list[dict[str, Any]],
        faults: tuple[Fault, ...] = (),
        prepare: Callable[[], None] | None = None,
    ) -> Rig:
        scenario = Scenario.from_mapping(
            {"name": "tools", "turn": [{"text": "go", "call": calls, "reply": "Done."}]}
        )
        emulator = Emulator(EmulatorConfig(scenario=scenario))
        await emulator.start()
        registry = ToolRegistry(parse_tools(TOOLS), factory)
        registry.open()
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key="k", endpoint=emulator.url),
            model="gemini-live-2.5-flash-preview",
            tools=[
                Tool(
                    function_declarations=[
                        FunctionDeclaration(**d) for d in registry.declarations()
                    ]
                )
            ],
        )
        session = await model.connect()
        controller = await start_audio_conversation(
            session,
            source=SilenceSource(seconds=None),
            sink=NullSink(),
            function_calling_handler=dispatcher_handler(registry),
        )
        stack.append((emulator, registry, session, controller))
        for fault in faults:
            emulator.inject(fault)
        if prepare is not None:
            prepare()  # after the pins are claimed: claiming sets their pulls
        await session.send("go")
        rig = Rig(emulator, registry)
        rig.controller = controller  # type: ignore[attr-defined]
        return rig

    yield build
    for emulator, registry, session, controller in stack:
        await controller.stop()
        await session.close()
        registry.close()
        await emulator.close()


CASES = [
    ("lamp", {"action": "on"}, lambda f: f.pin(17).state == 1),
    ("strip", {"value": 0.5}, lambda f: f.pin(12).state == pytest.approx(0.5)),
    ("pan", {"angle": 30}, lambda f: f.pin(16).state == pytest.approx(1.6667e-3 / 0.02, rel=0.01)),
    ("mood", {"colour": "red"}, lambda f: (f.pin(9).state, f.pin(10).state) == (1, 0)),
    ("door", {"duration_s": 0.1}, lambda f: [s.state for s in f.pin(18).states][-2:] == [1, 0]),
    ("chime", {"duration_s": 0.05}, lambda f: any(s.state for s in f.pin(23).states)),
]


@pytest.mark.parametrize(("name", "args", "moved"), CASES, ids=[c[0] for c in CASES])
async def test_a_tool_call_moves_the_pin_and_answers_with_its_id(
    rig: Any, factory: MockFactory, name: str, args: dict[str, Any], moved: Callable[..., bool]
) -> None:
    wire = await rig([{"name": name, "args": args}])
    await wire.until(lambda: wire.responses())
    [response] = wire.responses()
    assert response["id"] == "function-call-1" and response["name"] == name
    assert "error" not in response["response"], response
    assert moved(factory)


async def test_an_input_is_read_and_reported(rig: Any, factory: MockFactory) -> None:
    wire = await rig(
        [{"name": "button", "args": {}}],
        prepare=lambda: factory.pin(22).drive_low(),  # pulled up: pressed
    )
    await wire.until(lambda: wire.responses())
    [response] = wire.responses()
    assert response["response"]["result"] == {"state": "pressed", "active": True}, response


async def test_a_custom_handler_answers(rig: Any) -> None:
    wire = await rig([{"name": "weather", "args": {"unit": "F"}}])
    await wire.until(lambda: wire.responses())
    [response] = wire.responses()
    assert response["response"]["result"] == {"temperature": 21.5, "unit": "F"}


async def test_invalid_arguments_and_unknown_tools_get_errors_and_move_nothing(
    rig: Any, factory: MockFactory
) -> None:
    wire = await rig(
        [
            {"name": "strip", "args": {"value": 7}},
            {"name": "lamp", "args": {"action": "explode"}},
            {"name": "toaster", "args": {}},
        ]
    )
    await wire.until(lambda: len(wire.responses()) == 3)
    errors = {r["name"]: r["response"].get("error", "") for r in wire.responses()}
    assert "value" in errors["strip"] and "explode" in errors["lamp"]
    assert "toaster" in errors["toaster"]
    assert factory.pin(12).state == 0 and factory.pin(17).state == 0


async def test_a_cancelled_call_stops_at_once_and_is_not_answered(
    rig: Any, factory: MockFactory
) -> None:
    wire = await rig(
        [{"name": "door", "args": {"duration_s": 0.9}}],
        faults=(Fault.cancel_tool_call(after_s=0.1),),
    )
    await wire.until(lambda: wire.controller.stats.tool_cancellations == 1)
    await wire.until(lambda: factory.pin(18).state == 0)
    held = factory.pin(18).states[-1].timestamp - factory.pin(18).states[-2].timestamp
    await asyncio.sleep(1.0)  # longer than the pulse would have lasted
    assert wire.responses() == [], "a cancelled call gets no response"
    assert held < 0.6, "the relay was released when the call was cancelled, not after 0.9 s"
