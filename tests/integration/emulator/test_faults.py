"""Every fault mode, injected from the test or by a scenario, seen from a plain client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent.emulator import Emulator, EmulatorConfig, Fault, Scenario, Trigger
from agent.emulator.pytest_plugin import DEVELOPER_PATH
from tests.support.emulator_client import STEP, setup_message, tone

TOOL_SCENARIO = Scenario.parse(
    '[[turn]]\ntext = "lamp"\ncall = [{ name = "set_lamp", args = { on = true } }]\n'
    'reply = "Done."\n'
)


async def test_drop_mid_reply_sends_no_close_frame(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())
    emulator.inject(Fault.drop(at=Trigger.REPLY))
    await client.send({"realtimeInput": {"text": "talk to me"}})
    assert await client.closed() == (None, None)
    assert client.ws.close_code == 1006
    assert emulator.stats.faults == 1


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1011, "Internal error encountered."),
                                              (4000, "custom")])  # fmt: skip
async def test_close_with_any_code_and_reason(
    emulator: Emulator, open_client: Any, code: int, reason: str
) -> None:
    client = await open_client(emulator, setup_message())
    emulator.inject(Fault.close(code, reason))
    assert await client.closed() == (code, reason)


@pytest.mark.parametrize("status", [401, 403, 429, 503])
async def test_refuse_the_handshake(emulator: Emulator, status: int) -> None:
    emulator.inject(Fault.refuse_handshake(status))
    with pytest.raises(InvalidStatus) as info:
        await connect(emulator.url + DEVELOPER_PATH + "?key=k")
    assert info.value.response.status_code == status
    # only that connection: the next one is served
    async with connect(emulator.url + DEVELOPER_PATH + "?key=k") as ws:
        await ws.send(json.dumps(setup_message()))
        assert "setupComplete" in json.loads(await ws.recv())
    assert emulator.connections == 2 and emulator.stats.refused_handshakes == 1


async def test_delay_the_handshake(fast: Callable[..., EmulatorConfig]) -> None:
    async with Emulator(fast()) as emu:
        emu.inject(Fault.delay_handshake(6.0))  # 0.3 s at time_scale 0.05
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with connect(emu.url + DEVELOPER_PATH + "?key=k"):
            assert loop.time() - start >= 0.28


async def test_stall_stops_reading(fast: Callable[..., EmulatorConfig], open_client: Any) -> None:
    async with Emulator(fast()) as emu:
        client = await open_client(emu, setup_message())
        emu.inject(Fault.stall(8.0))  # 0.4 s
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        await client.send({"realtimeInput": {"text": "anyone?"}})
        pong = await client.ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.2)
        await client.turn()  # served once the stall ends
        assert loop.time() - sent_at >= 0.35
        received = emu.recordings.connection(1).received[-1]
        assert received.kind == "realtimeInput.text" and received.t - sent_at >= 0.3


async def test_malformed_json_frame(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())
    emulator.inject(Fault.malformed_json())
    async with asyncio.timeout(STEP):
        frame = await client.ws.recv()
    with pytest.raises(json.JSONDecodeError):
        json.loads(frame)


async def test_unknown_message_kind(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())
    emulator.inject(Fault.unknown_message())
    message = await client.recv()
    assert list(message) == ["somethingNew"]


async def test_oversized_frame_breaks_a_1_mib_client(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())  # websockets' default max_size: 1 MiB
    emulator.inject(Fault.oversized_frame(1_200_000))
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(STEP):
            await client.ws.recv()
    # the client fails the connection with 1009; google-genai reports it as 1006 (§9.4)
    assert info.value.sent is not None and info.value.sent.code == 1009


async def test_repeated_tool_call(fast: Callable[..., EmulatorConfig], open_client: Any) -> None:
    async with Emulator(fast(scenario=TOOL_SCENARIO)) as emu:
        client = await open_client(emu, setup_message())
        emu.inject(Fault.repeat_tool_call())
        await client.send({"realtimeInput": {"text": "lamp"}})
        first = (await client.recv_until(lambda m: "toolCall" in m))[-1]
        second = await client.recv()
        assert first == second
        call = first["toolCall"]["functionCalls"][0]
        await client.send({"toolResponse": {"functionResponses": [
            {"id": call["id"], "name": call["name"], "response": {}}]}})  # fmt: skip
        await client.turn()


async def test_tool_call_cancellation_while_the_call_runs(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    async with Emulator(fast(scenario=TOOL_SCENARIO)) as emu:
        client = await open_client(emu, setup_message())
        emu.inject(Fault.cancel_tool_call())
        await client.send({"realtimeInput": {"text": "lamp"}})
        call = (await client.recv_until(lambda m: "toolCall" in m))[-1]
        ids = [c["id"] for c in call["toolCall"]["functionCalls"]]
        assert await client.recv() == {"toolCallCancellation": {"ids": ids}}
        await client.turn()  # the model goes on without the response
        # a late response to the cancelled call is ignored, not a violation
        await client.send({"toolResponse": {"functionResponses": [
            {"id": ids[0], "name": "set_lamp", "response": {}}]}})  # fmt: skip
        await client.send({"realtimeInput": {"text": "still there?"}})
        await client.turn()


async def test_barge_in_during_a_tool_call_cancels_it(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    async with Emulator(fast(scenario=TOOL_SCENARIO)) as emu:
        client = await open_client(emu, setup_message())
        await client.send({"realtimeInput": {"text": "lamp"}})
        call = (await client.recv_until(lambda m: "toolCall" in m))[-1]
        ids = [c["id"] for c in call["toolCall"]["functionCalls"]]
        await client.send_audio(tone(0.2))
        messages = await client.recv_until(lambda m: "toolCallCancellation" in m)
        assert {"serverContent": {"interrupted": True}} in messages
        assert messages[-1] == {"toolCallCancellation": {"ids": ids}}


async def test_go_away_fault(fast: Callable[..., EmulatorConfig], open_client: Any) -> None:
    async with Emulator(fast()) as emu:
        client = await open_client(emu, setup_message())
        emu.inject(Fault.go_away(2.0))
        assert await client.recv() == {"goAway": {"timeLeft": "0.1s"}}
        assert await client.closed() == (1011, "Deadline expired before operation could complete.")


async def test_faults_for_later_connections(emulator: Emulator, open_client: Any) -> None:
    emulator.inject(Fault.close(1011, "second"), connection=2)
    first = await open_client(emulator, setup_message())
    second = await open_client(emulator, setup_message())
    assert await second.closed() == (1011, "second")
    await first.send({"realtimeInput": {"text": "first is fine"}})
    await first.turn()
    with pytest.raises(ValueError):
        emulator.inject(Fault.drop(), connection=1 if 1 not in emulator.open_connections else 0)


async def test_faults_from_a_scenario(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    scenario = Scenario.parse(
        """
        [[turn]]
        text = "break"
        reply = "This reply will not finish."
        [turn.fault]
        kind = "close"
        code = 1011
        reason = "The service is currently unavailable."
        at = "reply"

        [[fault]]
        connection = 2
        kind = "handshake_refuse"
        status = 503
        """
    )
    async with Emulator(fast(scenario=scenario)) as emu:
        client = await open_client(emu, setup_message())
        await client.send({"realtimeInput": {"text": "please break"}})
        assert await client.closed() == (1011, "The service is currently unavailable.")
        with pytest.raises(InvalidStatus):
            await connect(emu.url + DEVELOPER_PATH + "?key=k")
        again = await open_client(emu, setup_message())
        assert again.setup_complete is not None


async def test_the_shipped_faults_scenario_does_what_it_says(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    from agent.emulator.cli import EXAMPLE

    scenario = Scenario.load(EXAMPLE.with_name("faults.toml"))
    async with Emulator(fast(scenario=scenario)) as emu:
        first = await open_client(emu, setup_message(sessionResumption={}))
        handle = (await first.recv())["sessionResumptionUpdate"]["newHandle"]
        await first.send({"realtimeInput": {"text": "switch the lamp on"}})
        calls = await first.recv_until(lambda m: "toolCall" in m)
        assert await first.recv() == calls[-1]  # sent twice
        call = calls[-1]["toolCall"]["functionCalls"][0]
        await first.send({"toolResponse": {"functionResponses": [
            {"id": call["id"], "name": "set_lamp", "response": {"ok": True}}]}})  # fmt: skip
        await first.turn()
        await first.send({"realtimeInput": {"text": "second turn"}})
        assert await first.closed() == (None, None)  # dropped mid-reply

        with pytest.raises(InvalidStatus) as info:  # connection 2: 503
            await connect(emu.url + DEVELOPER_PATH + "?key=k")
        assert info.value.response.status_code == 503

        third = await open_client(emu, setup_message(sessionResumption={"handle": handle}))
        await third.send({"realtimeInput": {"text": "again"}})
        assert await third.closed() == (1011, "The service is currently unavailable.")

        fourth = await open_client(emu, setup_message())
        assert await fourth.recv() == {"goAway": {"timeLeft": "0.25s"}}
        assert (await fourth.closed())[0] == 1011


async def test_a_response_must_name_its_call(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    async with Emulator(fast(scenario=TOOL_SCENARIO)) as emu:
        client = await open_client(emu, setup_message())
        await client.send({"realtimeInput": {"text": "lamp"}})
        call = (await client.recv_until(lambda m: "toolCall" in m))[-1]
        call_id = call["toolCall"]["functionCalls"][0]["id"]
        await client.send({"toolResponse": {"functionResponses": [
            {"id": call_id, "name": "other_function", "response": {}}]}})  # fmt: skip
        assert await client.closed() == (1007, "Request contains an invalid argument.")
