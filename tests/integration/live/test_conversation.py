"""start_audio_conversation against a scripted server: the Firebase SDK's controller tests that
apply off the browser, and where this controller does better (every audio part played at its
own rate, concurrent calls, failing handlers answered, cancellation, nothing lost on stop)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import numpy as np
import pytest
import structlog

from agent.live.conversation import (
    MAX_CALLS_IN_FLIGHT,
    TRANSCRIPT_KEEP_CHARS,
    start_audio_conversation,
)
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.types import FunctionCall, FunctionResponse
from agent.media.audio import EnergySpeechDetector

from .conftest import ScriptedServer

T = 5.0


class RecordingSink:
    """An AudioSink that keeps what it was given, to look at."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, int]] = []
        self.flushes = 0

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        self.writes.append((pcm, sample_rate))

    def flush(self) -> None:
        self.flushes += 1


class Chunks:
    """An AudioSource of fixed chunks, then silence forever."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.items = chunks

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.items:
            yield chunk
        while True:
            await asyncio.sleep(3600)
            yield b""


def audio_part(pcm: bytes, rate: int = 24000) -> dict:  # type: ignore[type-arg]
    return {
        "inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": base64.b64encode(pcm).decode()}
    }


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_guards(live_server: ScriptedServer) -> None:
    session, _ = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    with pytest.raises(LiveSessionError) as busy:
        await start_audio_conversation(session, source=Chunks([]), sink=sink)
    assert busy.value.code == LiveErrorCode.REQUEST_ERROR
    await controller.stop()
    assert not session.in_conversation
    await session.close()
    with pytest.raises(LiveSessionError) as closed:
        await start_audio_conversation(session, source=Chunks([]), sink=sink)
    assert closed.value.code == LiveErrorCode.SESSION_CLOSED


async def test_microphone_chunks_are_sent_as_16khz_pcm(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    chunks = [bytes([n]) * 1280 for n in range(3)]
    controller = await start_audio_conversation(
        session, source=Chunks(chunks), sink=RecordingSink()
    )
    for chunk in chunks:
        audio = (await conn.expect())["realtimeInput"]["audio"]
        assert audio["mimeType"] == "audio/pcm;rate=16000"
        assert base64.b64decode(audio["data"]) == chunk
    await controller.stop()
    await session.close()


async def test_speech_gate_sends_pre_roll_then_speech_then_ends_the_stream(
    live_server: ScriptedServer,
) -> None:
    rng = np.random.default_rng(2)
    t = np.arange(int(0.6 * 16000)) / 16000
    speech = 0.1 * np.sin(2 * np.pi * 300 * t)
    noise = rng.standard_normal(16000) * 0.001  # 1 s: 25 chunks
    signal = np.concatenate([noise, speech, noise])
    pcm = (signal * 32767).astype("<i2").tobytes()
    chunks = [pcm[i : i + 1280] for i in range(0, len(pcm) - 1279, 1280)]
    session, conn = await live_server.connect()
    controller = await start_audio_conversation(
        session,
        source=Chunks(chunks),
        sink=RecordingSink(),
        vad=EnergySpeechDetector(hangover_ms=120),
        pre_roll_ms=200,
    )
    sent: list[bytes] = []
    while True:
        message = (await conn.expect())["realtimeInput"]
        if "audioStreamEnd" in message:
            break
        sent.append(base64.b64decode(message["audio"]["data"]))
    await controller.stop()
    await session.close()
    first = chunks.index(sent[0])
    assert first == 25 - 5 + 1  # 5 chunks (200 ms) of pre-roll before the onset chunk
    assert sent == chunks[first : first + len(sent)]  # contiguous, in order, no duplicates
    assert len(sent) >= 15 + 5  # all of the speech plus pre-roll


async def test_every_audio_part_is_played_at_its_rate(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    parts = [audio_part(b"\x01\x00" * 10), audio_part(b"\x02\x00" * 10, rate=16000), {"text": "hi"}]
    await conn.send({"serverContent": {"modelTurn": {"parts": parts}}})
    await until(lambda: len(sink.writes) == 2)
    assert sink.writes == [(b"\x01\x00" * 10, 24000), (b"\x02\x00" * 10, 16000)]
    await controller.stop()
    await session.close()


async def test_interruption_flushes_the_speaker_then_plays_what_came_with_it(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\x01\x00")]}}})
    await until(lambda: len(sink.writes) == 1)
    await conn.send({"serverContent": {"interrupted": True}})
    await until(lambda: sink.flushes == 1)
    assert controller.stats.interruptions == 1
    await controller.stop()
    await session.close()


async def test_bad_audio_is_skipped_and_the_rest_plays(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    parts = [
        {"inlineData": {"mimeType": "audio/pcm", "data": "!!not base64!!"}},
        audio_part(b"\x01\x00\x02"),  # odd length: not 16-bit PCM
        audio_part(b"\x03\x00"),
    ]
    await conn.send({"serverContent": {"modelTurn": {"parts": parts}}})
    await until(lambda: len(sink.writes) == 1)
    assert sink.writes == [(b"\x03\x00", 24000)]
    assert controller.stats.bad_audio_chunks == 2
    await controller.stop()
    await session.close()


async def test_tool_call_without_a_handler_is_logged_and_ignored(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    with structlog.testing.capture_logs() as logs:
        controller = await start_audio_conversation(
            session, source=Chunks([]), sink=RecordingSink()
        )
        await conn.send({"toolCall": {"functionCalls": [{"id": "1", "name": "f", "args": {}}]}})
        await until(lambda: any(e["event"] == "conversation.tool_call_ignored" for e in logs))
    await controller.stop()
    await session.close()


async def test_calls_run_concurrently_and_a_failing_handler_answers_with_an_error(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    release = asyncio.Event()

    async def handler(call: FunctionCall) -> FunctionResponse | dict:  # type: ignore[type-arg]
        if call.name == "slow":
            await release.wait()
            return {"result": "slow done"}
        if call.name == "broken":
            raise RuntimeError("relay board not answering")
        return FunctionResponse(id=call.id, name=call.name, response={"result": "quick"})

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler
    )
    calls = [
        {"id": "s", "name": "slow"},
        {"id": "q", "name": "quick"},
        {"id": "b", "name": "broken"},
    ]
    await conn.send({"toolCall": {"functionCalls": calls}})
    answered = []
    for _ in range(2):  # the slow one is still running: the others are not held behind it
        frame = await conn.expect()
        answered += frame["toolResponse"]["functionResponses"]
    by_id = {r["id"]: r["response"] for r in answered}
    assert by_id["q"] == {"result": "quick"}
    assert "relay board not answering" in by_id["b"]["error"]
    release.set()
    frame = await conn.expect()
    assert frame["toolResponse"]["functionResponses"][0]["response"] == {"result": "slow done"}
    await controller.stop()
    await session.close()


async def test_cancellation_stops_the_handler_and_sends_nothing(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    cancelled = asyncio.Event()

    async def handler(call: FunctionCall) -> dict:  # type: ignore[type-arg]
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler
    )
    await conn.send({"toolCall": {"functionCalls": [{"id": "c1", "name": "wait"}]}})
    await asyncio.sleep(0.05)
    await conn.send({"toolCallCancellation": {"ids": ["c1"]}})
    async with asyncio.timeout(T):
        await cancelled.wait()
    await until(lambda: controller.stats.tool_cancellations == 1)
    with pytest.raises(TimeoutError):  # nothing is sent for the cancelled call
        async with asyncio.timeout(0.3):
            await conn.ws.recv()
    await controller.stop()
    await session.close()


async def test_stop_loses_no_message(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=RecordingSink())
    await asyncio.sleep(0.05)
    await controller.stop()
    await conn.send({"goAway": {"timeLeft": "5s"}})
    async with asyncio.timeout(T):
        async for message in session.receive():
            assert message.type == "goingAwayNotice"  # not swallowed by a stopped controller
            break
    await session.close()


class RefusingSink(RecordingSink):
    """A sink that raises for rates it will not take, and on flush: a broken speaker."""

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        if sample_rate != 24000:
            raise ValueError(f"cannot play audio at {sample_rate} Hz")
        super().write(pcm, sample_rate)

    def flush(self) -> None:
        raise RuntimeError("the device went away")


async def test_a_sink_that_raises_never_ends_the_conversation(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    sink = RefusingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    await conn.send({"serverContent": {"modelTurn": {"parts": [
        audio_part(b"\x01\x00", rate=16000), audio_part(b"\x02\x00")]}}})  # fmt: skip
    await conn.send({"serverContent": {"interrupted": True}})
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\x03\x00")]}}})
    await until(lambda: len(sink.writes) == 2)
    assert sink.writes == [(b"\x02\x00", 24000), (b"\x03\x00", 24000)]
    assert controller.stats.sink_errors == 1
    assert controller.stats.failed_messages == 1, "the failed flush cost that message only"
    await controller.stop()
    await session.close()


async def test_transcripts_are_kept_to_their_newest_characters(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    heard: list[str] = []
    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(),
        on_event=lambda event, fields: heard.append(fields["text"])
        if event == "transcript.model" else None,
    )  # fmt: skip
    fragment = "word " * 4000  # 20,000 characters
    for _ in range(50):
        await conn.send({"serverContent": {"outputTranscription": {"text": fragment},
                                           "inputTranscription": {"text": fragment}}})
    await until(lambda: len(heard) == 50)
    stats = controller.stats
    assert stats.model_transcript.chars == stats.user_transcript.chars == 50 * len(fragment)
    assert len(stats.model_transcript.text) == TRANSCRIPT_KEEP_CHARS
    assert len(stats.user_transcript.text) == TRANSCRIPT_KEEP_CHARS
    assert all(text == fragment for text in heard), "listeners still get every fragment"
    await controller.stop()
    await session.close()


async def test_a_result_the_wire_encoder_refuses_is_answered_with_an_error(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()

    async def handler(call: FunctionCall) -> dict:  # type: ignore[type-arg]
        if call.name == "keys":
            return {1: "json.dumps takes int keys"}
        return {"reading": 2**70}

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler
    )
    await conn.send({"toolCall": {"functionCalls": [{"id": "k", "name": "keys"},
                                                    {"id": "b", "name": "big"}]}})
    answered = []
    for _ in range(2):
        frame = await conn.expect()
        answered += frame["toolResponse"]["functionResponses"]
    by_id = {r["id"]: r["response"] for r in answered}
    assert set(by_id) == {"k", "b"}, "every call is answered"
    assert all(set(response) == {"error"} for response in by_id.values())
    assert controller.stats.unencodable_tool_results == 2
    await controller.stop()
    await session.close()


async def test_arguments_with_integers_over_64_bits_reach_the_handler(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    seen: list[dict] = []  # type: ignore[type-arg]

    async def handler(call: FunctionCall) -> dict:  # type: ignore[type-arg]
        seen.append(call.args)
        return {"error": "out of range"}

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler
    )
    await conn.send_raw('{"toolCall":{"functionCalls":[{"id":"n","name":"set","args":{"n":1'
                        + "0" * 400 + "}}]}}")
    frame = await conn.expect()
    assert frame["toolResponse"]["functionResponses"][0]["id"] == "n"
    assert seen == [{"n": 10**400}]
    await controller.stop()
    await session.close()


async def test_calls_over_the_in_flight_limit_are_answered_at_once_with_an_error(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    release = asyncio.Event()
    started: list[str] = []

    async def handler(call: FunctionCall) -> dict:  # type: ignore[type-arg]
        started.append(call.id or "")
        await release.wait()
        return {"ok": True}

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler
    )
    extra = 10
    ids = [f"c{n}" for n in range(MAX_CALLS_IN_FLIGHT + extra)]
    for at in range(0, len(ids), 32):
        await conn.send({"toolCall": {"functionCalls": [
            {"id": call_id, "name": "slow"} for call_id in ids[at : at + 32]]}})  # fmt: skip
    refused = []
    while len(refused) < extra:
        frame = await conn.expect()
        refused += frame["toolResponse"]["functionResponses"]
    assert all(set(r["response"]) == {"error"} for r in refused)
    assert {r["id"] for r in refused} == set(ids[MAX_CALLS_IN_FLIGHT:])
    assert len(started) == MAX_CALLS_IN_FLIGHT
    assert controller.stats.tool_calls_refused == extra
    release.set()
    answered = []
    while len(answered) < MAX_CALLS_IN_FLIGHT:
        frame = await conn.expect()
        answered += frame["toolResponse"]["functionResponses"]
    assert {r["id"] for r in answered} == set(ids[:MAX_CALLS_IN_FLIGHT])
    await controller.stop()
    await session.close()
