"""Hostile clients over real sockets: malformed frames close with the service's 1007 and a
reason, never 1011; memory stays bounded per connection and in all; a flooding client does
not delay another client's reply."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect

from agent.emulator import Emulator, EmulatorConfig, Scenario
from agent.emulator.pytest_plugin import DEVELOPER_PATH
from tests.support.emulator_client import STEP, LiveClient, is_turn_complete, setup_message
from tests.support.hostile_setups import HOSTILE_SETUPS, nested

URL_TAIL = DEVELOPER_PATH + "?key=k"
NO_INTERRUPTION = {"realtimeInputConfig": {"activityHandling": "NO_INTERRUPTION"}}
# a sliding window: a long flood of text does not fill the context and end the session
SLIDING = {"contextWindowCompression": {"slidingWindow": {}}}


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """Every error the server side logs (structlog events at error level and tracebacks of
    the websockets library), to assert that a hostile client produced none."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR or record.exc_info:
                found.append(record.getMessage())

    handler = Collect()
    logging.getLogger("websockets").addHandler(handler)
    with structlog.testing.capture_logs() as logs:
        yield found
        found.extend(str(e) for e in logs if e["log_level"] in ("error", "critical"))
    logging.getLogger("websockets").removeHandler(handler)


async def _first_frame_close(emu: Emulator, frame: str | bytes) -> tuple[int | None, str]:
    async with connect(emu.url + URL_TAIL, max_size=None) as ws:
        await ws.send(frame)
        try:
            async with asyncio.timeout(STEP):
                while True:
                    await ws.recv()
        except ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.mark.parametrize("name", sorted(HOSTILE_SETUPS))
async def test_a_malformed_setup_closes_with_1007_and_a_reason(
    emulator: Emulator, name: str, errors: list[str]
) -> None:
    code, reason = await _first_frame_close(emulator, HOSTILE_SETUPS[name])
    assert code == 1007 and reason
    assert errors == []
    assert emulator.stats.violations == 1


@pytest.mark.parametrize(
    "message",
    [
        {"clientContent": {"turns": [{"parts": [{"text": "x"}]}], "x": nested(150)}},
        {"toolResponse": {"functionResponses": [{"name": "f", "response": {"x": nested(400)}}]}},
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=" + "9" * 5000, "data": ""}}},
        {"realtimeInput": {"text": {"a": 1}}},
        {"contextUpdate": nested(3)},
    ],
    ids=["deep clientContent", "deep toolResponse", "5000-digit rate", "text object",
         "contextUpdate list"],
)  # fmt: skip
async def test_a_malformed_frame_after_setup_closes_with_1007(
    emulator: Emulator, open_client: Any, message: dict[str, Any], errors: list[str]
) -> None:
    client: LiveClient = await open_client(emulator, setup_message())
    await client.send(message)
    code, reason = await client.closed()
    assert code == 1007 and reason
    assert errors == []


async def test_a_frame_over_the_size_limit_closes_1009_and_others_go_on(
    open_client: Any, errors: list[str]
) -> None:
    async with Emulator(EmulatorConfig(max_message_bytes=64 * 1024, time_scale=0.05)) as emu:
        other: LiveClient = await open_client(emu, setup_message())
        big: LiveClient = await open_client(emu, setup_message())
        await big.send({"realtimeInput": {"text": "x" * 100_000}})
        code, _ = await big.closed()
        assert code == 1009  # RFC 6455: message too big
        await other.send({"realtimeInput": {"text": "still there?"}})
        assert (await other.turn())[-1]["serverContent"]["turnComplete"]
    assert errors == []


async def test_connections_beyond_the_limit_are_refused_with_503(open_client: Any) -> None:
    from agent.emulator import EmulatorLimits

    async with Emulator(EmulatorConfig(limits=EmulatorLimits(max_connections=2))) as emu:
        first: LiveClient = await open_client(emu, setup_message())
        await open_client(emu, setup_message())
        with pytest.raises(InvalidStatus) as info:
            await connect(emu.url + URL_TAIL)
        assert info.value.response.status_code == 503
        await first.ws.close()
        await emu.wait_for_close(1, STEP)
        await open_client(emu, setup_message())
        assert emu.stats.refused_handshakes == 1


def _retained_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_large_turns_leave_bounded_state(open_client: Any) -> None:
    """Twenty turns of 5 kB text each, echoed back (a spoken reply minutes long) on a session
    that issues a handle per turn, with recording off: what the server keeps once the client
    has gone (history, handle snapshots, synthesised voice) stays small."""
    config = EmulatorConfig(time_scale=0.001, record=False, connection_lifetime_s=None)
    async with Emulator(config) as emu:
        tracemalloc.start()
        try:
            before = _retained_bytes()
            client: LiveClient = await open_client(
                emu, setup_message(sessionResumption={}, **SLIDING)
            )
            await client.recv()  # the first handle
            for i in range(20):
                await client.send({"realtimeInput": {"text": "w" * (5000 + i)}})
                await client.recv_until(lambda m: "sessionResumptionUpdate" in m, within=60)
            await client.ws.close()
            await emu.wait_for_close(1, STEP)
            retained = _retained_bytes() - before
        finally:
            tracemalloc.stop()
    print(f"retained after 20 turns of 5 kB: {retained / 1e6:.1f} MB")
    assert retained < 5_000_000


async def _reply_latency(client: LiveClient, text: str) -> float:
    started = time.monotonic()
    await client.send({"realtimeInput": {"text": text}})
    await client.recv_until(lambda m: "modelTurn" in m.get("serverContent", {}), within=60)
    latency = time.monotonic() - started
    await client.turn(within=60)
    return latency


FLOOD_LATENCY_BOUND_S = 0.5


class Flooder:
    """A client in its own threads (so its sending costs the server's loop nothing): one
    sends text turns back to back, one reads what comes back."""

    def __init__(self, url: str) -> None:
        self.url = url + URL_TAIL
        self.sent = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        assert self._ready.wait(STEP), "the flooder did not get its setupComplete"

    def _run(self) -> None:
        with sync_connect(self.url, close_timeout=0.5) as ws:
            ws.send(json.dumps(setup_message(**SLIDING)))
            ws.recv()
            reader = threading.Thread(target=self._read, args=(ws,))
            reader.start()
            self._ready.set()
            with contextlib.suppress(ConnectionClosed):
                while not self._stop.is_set():
                    # 2-3 kB of words: the default echo asks for a two-minute spoken reply
                    text = "w " * (1000 + self.sent % 500)
                    ws.send(json.dumps({"realtimeInput": {"text": text}}))
                    self.sent += 1
        reader.join()

    @staticmethod
    def _read(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                ws.recv()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)


async def test_a_flooding_client_does_not_delay_another_clients_reply(open_client: Any) -> None:
    """The other client's replies start within the stated bound while the flood goes on."""
    async with Emulator(EmulatorConfig(time_scale=0.2)) as emu:
        normal: LiveClient = await open_client(emu, setup_message(**NO_INTERRUPTION))
        quiet = [await _reply_latency(normal, "hello") for _ in range(3)]
        flooder = await asyncio.to_thread(Flooder, emu.url)
        try:
            await asyncio.sleep(0.5)
            busy = [await _reply_latency(normal, "hello") for _ in range(5)]
        finally:
            await flooder.stop()
    print(f"reply latency quiet max {max(quiet) * 1000:.0f} ms; under a flood of "
          f"{flooder.sent} turns max {max(busy) * 1000:.0f} ms "
          f"(bound {FLOOD_LATENCY_BOUND_S * 1000:.0f} ms)")  # fmt: skip
    assert max(busy) < FLOOD_LATENCY_BOUND_S


async def test_turns_beyond_the_queue_wait_for_the_model(open_client: Any) -> None:
    """Without interruption every typed turn is answered, in order; the connection is not
    read while its model has a full queue of turns waiting."""
    from agent.emulator import EmulatorLimits

    config = EmulatorConfig(time_scale=0.01, limits=EmulatorLimits(max_pending_turns=2))
    async with Emulator(config) as emu:
        client: LiveClient = await open_client(emu, setup_message(**NO_INTERRUPTION))
        for i in range(12):
            await client.send({"realtimeInput": {"text": f"turn {i}"}})
        replies = []
        for _ in range(12):
            messages = await client.turn()
            replies.append("".join(
                m["serverContent"]["outputTranscription"]["text"]
                for m in messages if "outputTranscription" in m.get("serverContent", {})
            ))  # fmt: skip
        assert emu.stats.backpressure_waits > 0
    assert emu.recordings.session().texts() == [f"turn {i}" for i in range(12)]


async def test_turns_while_a_call_waits_are_merged_not_stuck(open_client: Any) -> None:
    """With a full queue and a function call waiting for its response, the connection is
    still read (the response may be behind the turns): later turns join the last one."""
    from agent.emulator import EmulatorLimits

    scenario = Scenario.parse(
        '[[turn]]\ntext = "lamp"\ncall = [{ name = "set_lamp" }]\nreply = "done"\n'
    )
    config = EmulatorConfig(
        time_scale=0.01, scenario=scenario, limits=EmulatorLimits(max_pending_turns=2)
    )
    async with Emulator(config) as emu:
        client: LiveClient = await open_client(emu, setup_message(**NO_INTERRUPTION))
        await client.send({"realtimeInput": {"text": "lamp"}})
        call = await client.recv_until(lambda m: "toolCall" in m)
        for i in range(10):
            await client.send({"realtimeInput": {"text": f"more {i}"}})
        call_id = call[-1]["toolCall"]["functionCalls"][0]["id"]
        await client.send({"toolResponse": {"functionResponses": [
            {"id": call_id, "name": "set_lamp", "response": {"ok": True}}]}})  # fmt: skip
        completes = 0
        async with asyncio.timeout(STEP):
            while completes < 3:  # the call's turn and the two queued ones (merged)
                completes += is_turn_complete(await client.recv())
        assert emu.stats.merged_turns > 0


async def test_a_client_that_stops_reading_is_dropped(open_client: Any) -> None:
    from agent.emulator import EmulatorLimits

    config = EmulatorConfig(
        time_scale=0.01, limits=EmulatorLimits(send_timeout_s=0.5),
        scenario=Scenario.parse('default_reply = "{text}"'),
    )  # fmt: skip
    async with Emulator(config) as emu:
        # a small receive buffer: the server's sends block soon
        client: LiveClient = await open_client(
            emu, setup_message(**NO_INTERRUPTION), max_queue=1, close_timeout=0.5
        )
        for _ in range(8):
            await client.send({"realtimeInput": {"text": "w " * 2000}})
        async with asyncio.timeout(4 * STEP):
            while emu.open_connections:
                await asyncio.sleep(0.05)
        assert emu.stats.dropped_slow_clients == 1


async def test_sessions_and_handles_are_evicted(open_client: Any) -> None:
    from agent.emulator import EmulatorLimits

    limits = EmulatorLimits(max_sessions=4, max_handles_per_session=3)
    async with Emulator(EmulatorConfig(time_scale=0.01, limits=limits)) as emu:
        handles = []
        for _ in range(10):
            client: LiveClient = await open_client(emu, setup_message(sessionResumption={}))
            handles.append((await client.recv())["sessionResumptionUpdate"]["newHandle"])
            for _ in range(5):
                await client.send({"realtimeInput": {"text": "hi"}})
                update = await client.recv_until(lambda m: "sessionResumptionUpdate" in m)
                handles.append(update[-1]["sessionResumptionUpdate"]["newHandle"])
            await client.ws.close()
            await emu.wait_for_close(emu.connections, STEP)
        assert len(emu.sessions.sessions) <= 4
        assert emu.sessions.handle_count <= 4 * 3
        # the newest session's newest handle still resumes
        resumed: LiveClient = await open_client(emu)
        await resumed.send(setup_message(sessionResumption={"handle": handles[-1]}))
        assert "setupComplete" in await resumed.recv()
        # an evicted handle is refused like an unknown one
        late: LiveClient = await open_client(emu)
        await late.send(setup_message(sessionResumption={"handle": handles[0]}))
        assert await late.closed() == (1007, "Request contains an invalid argument.")


async def test_expired_handles_and_closed_sessions_go_after_the_ttl(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(handle_ttl_s=0.2)) as emu:
        client: LiveClient = await open_client(emu, setup_message(sessionResumption={}))
        await client.recv()
        await client.ws.close()
        await emu.wait_for_close(1, STEP)
        await asyncio.sleep(0.3)
        await open_client(emu, setup_message())  # a new session sweeps the expired ones
        assert len(emu.sessions.sessions) == 1 and emu.sessions.handle_count == 0


async def test_abandoned_handshakes_do_not_hold_a_slot(open_client: Any) -> None:
    """Clients that give up while their upgrade is delayed never reach a handler: the slots
    they were admitted to are free again."""
    from agent.emulator import EmulatorLimits, Fault

    async with Emulator(EmulatorConfig(limits=EmulatorLimits(max_connections=2))) as emu:
        for number in (1, 2, 3):
            emu.inject(Fault.delay_handshake(0.3), connection=number)
            with pytest.raises(TimeoutError):
                await connect(emu.url + URL_TAIL, open_timeout=0.1)
        await asyncio.sleep(0.5)  # the delays end; the upgrades go to closed sockets
        await open_client(emu, setup_message())
        await open_client(emu, setup_message())
        assert emu.stats.refused_handshakes == 0
