"""Initial history (``historyConfig.initialHistoryInClientContent``): clientContent up to the
first ``turnComplete: true`` is context the model answers from later, not a turn; realtime
input or a function response before it ends is refused with 1007. With ``client_content =
"initial_history_only"`` the emulator is a model such as gemini-3.1-flash-live, which takes
clientContent only that way."""

from __future__ import annotations

from typing import Any

import pytest

from agent.emulator import Emulator, EmulatorConfig, Scenario, wire
from tests.support.emulator_client import content, setup_message, tone

HISTORY = {"initialHistoryInClientContent": True}
TEXT = {"responseModalities": ["TEXT"]}
SEED = [{"role": "user", "parts": [{"text": "my name is Ada"}]},
        {"role": "model", "parts": [{"text": "Hello Ada."}]}]  # fmt: skip


def config(**overrides: Any) -> EmulatorConfig:
    scenario = Scenario.from_mapping({"name": "memory",
                                      "default_reply": "Before that you said: {previous}"})
    return EmulatorConfig(**{"time_scale": 0.05, "scenario": scenario, **overrides})


def history(*turns: dict[str, Any], complete: bool = True) -> dict[str, Any]:
    return {"clientContent": {"turns": list(turns), "turnComplete": complete}}


def reply_text(messages: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for t in content(messages, "modelTurn") for p in t["parts"])


@pytest.mark.parametrize("rule", ["any", "initial_history_only"])
async def test_the_initial_history_is_context_and_gets_no_reply(rule: str,
                                                                open_client: Any) -> None:
    async with Emulator(config(client_content=rule)) as emu:
        client = await open_client(emu, setup_message(historyConfig=HISTORY,
                                                      generationConfig=TEXT))
        await client.send(history(SEED[0], complete=False))  # the history may take frames
        await client.send(history(SEED[1]))  # turnComplete: true ends it
        await client.send({"realtimeInput": {"text": "what is my name?"}})
        messages = await client.turn()
        [session] = emu.sessions.sessions.values()
        assert session.state.context_turns == 2
        assert session.state.history[:3] == [("user", "my name is Ada"), ("model", "Hello Ada."),
                                             ("user", "what is my name?")]
        assert emu.stats.replies == 1, "the history itself was not answered"
    assert reply_text(messages) == "Before that you said: my name is Ada"


async def test_after_the_history_client_content_is_a_turn_when_any_is_accepted(
        open_client: Any) -> None:
    async with Emulator(config()) as emu:
        client = await open_client(emu, setup_message(historyConfig=HISTORY,
                                                      generationConfig=TEXT))
        await client.send(history(*SEED))
        await client.send(history({"role": "user", "parts": [{"text": "and now?"}]}))
        messages = await client.turn()
    assert reply_text(messages) == "Before that you said: my name is Ada"


@pytest.mark.parametrize("first", [
    {"realtimeInput": {"audio": {"data": wire.encode_base64(tone(0.04).tobytes()),
                                 "mimeType": "audio/pcm;rate=16000"}}},
    {"realtimeInput": {"text": "hello"}},
    {"realtimeInput": {"audioStreamEnd": True}},
    {"toolResponse": {"functionResponses": [{"id": "x", "name": "f", "response": {}}]}},
], ids=["audio", "text", "audioStreamEnd", "toolResponse"])
@pytest.mark.parametrize("sent", [(), (SEED[0],)], ids=["no history", "history not ended"])
async def test_input_before_the_history_ends_is_refused(first: dict[str, Any],
                                                        sent: tuple[dict[str, Any], ...],
                                                        open_client: Any) -> None:
    async with Emulator(config()) as emu:
        client = await open_client(emu, setup_message(historyConfig=HISTORY))
        if sent:
            await client.send(history(*sent, complete=False))
        await client.send(first)
        code, reason = await client.closed()
    assert (code, reason) == wire.HISTORY_PENDING
    assert "historyConfig" in reason and "turnComplete" in reason


@pytest.mark.parametrize(("setup", "before"), [
    ({}, []),
    ({"historyConfig": {}}, []),
    ({"historyConfig": {"initialHistoryInClientContent": False}}, []),
    ({"historyConfig": HISTORY}, [history(*SEED)]),  # a second one, after the history
], ids=["no historyConfig", "empty historyConfig", "false", "after the history"])
async def test_a_restricted_model_refuses_other_client_content(
        setup: dict[str, Any], before: list[dict[str, Any]], open_client: Any) -> None:
    async with Emulator(config(client_content="initial_history_only")) as emu:
        client = await open_client(emu, setup_message(**setup))
        for message in before:
            await client.send(message)
        await client.send(history({"role": "user", "parts": [{"text": "hi"}]}))
        code, reason = await client.closed()
        assert emu.stats.replies == 0
    assert (code, reason) == wire.CLIENT_CONTENT_REFUSED
    assert "historyConfig" in reason


async def test_a_restricted_model_takes_realtime_input_without_history(open_client: Any) -> None:
    async with Emulator(config(client_content="initial_history_only")) as emu:
        client = await open_client(emu, setup_message(generationConfig=TEXT))
        await client.send({"realtimeInput": {"text": "hello"}})
        messages = await client.turn()
    assert reply_text(messages) == "Before that you said: "


async def test_a_malformed_history_config_closes_the_handshake(open_client: Any) -> None:
    async with Emulator(config()) as emu:
        client = await open_client(emu)
        await client.send(setup_message(historyConfig={"initialHistoryInClientContent": "yes"}))
        code, reason = await client.closed()
    assert (code, reason) == wire.INVALID_ARGUMENT
