"""A conversation that sleeps until a wake word, against a scripted server: nothing but the
pre-roll leaves before the phrase, it sleeps again after the timeout, the camera waits with it,
and the mute button cuts the model off."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from agent.live.conversation import AudioConversationController, start_audio_conversation
from agent.media.audio import MicroWakeWordDetector, wake_chime
from tests.support import wake_audio as wa

from .conftest import ScriptedConnection, ScriptedServer

T = 10.0


class Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.flushes = 0

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        self.writes.append(pcm)

    def flush(self) -> None:
        self.flushes += 1


class Feed:
    """An AudioSource (or a video source) the test feeds item by item."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.taken = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            self.taken += 1
            yield item

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks()

    async def put_all(self, items: list[bytes]) -> None:
        target = self.taken + len(items)
        for item in items:
            self.queue.put_nowait(item)
        async with asyncio.timeout(T):
            while self.taken < target or not self.queue.empty():
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the chunk just taken is handled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def audio_part(pcm: bytes) -> dict[str, Any]:
    return {"inlineData": {"mimeType": "audio/pcm;rate=24000",
                           "data": base64.b64encode(pcm).decode()}}


async def drain(conn: ScriptedConnection, quiet_s: float = 0.3) -> list[dict[str, Any]]:
    """Every frame the client sent until it has been quiet for ``quiet_s``."""
    frames = []
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                frames.append(await conn.expect())
        except TimeoutError:
            return frames


def sent_audio(frames: list[dict[str, Any]]) -> list[bytes]:
    return [base64.b64decode(f["realtimeInput"]["audio"]["data"])
            for f in frames if "audio" in f.get("realtimeInput", {})]


async def start(live_server: ScriptedServer, **kwargs: Any
                ) -> tuple[AudioConversationController, ScriptedConnection, Feed, Sink,
                           list[tuple[str, dict[str, Any]]]]:
    session, conn = await live_server.connect()
    mic, sink, events = Feed(), Sink(), []
    controller = await start_audio_conversation(
        session, source=mic, sink=sink, wake=MicroWakeWordDetector(["okay_nabu"]),
        pre_roll_ms=200, on_event=lambda name, fields: events.append((name, fields)), **kwargs)
    return controller, conn, mic, sink, events


async def test_nothing_but_the_pre_roll_leaves_before_the_wake_word(
        live_server: ScriptedServer) -> None:
    clock = Clock()
    controller, conn, mic, sink, events = await start(
        live_server, conversation_timeout_s=5.0, clock=clock, chime=wake_chime())
    before = wa.chunks(wa.pcm(np.concatenate([wa.speech()[: 3 * 16000],
                                               wa.silence(0.5)])))
    phrase = wa.chunks(wa.pcm(wa.with_noise(np.concatenate(
        [wa.recording("okay_nabu_2"), wa.silence(0.5)]), 30)))
    await mic.put_all(before)
    assert await drain(conn) == [], "speech without the wake word never leaves"
    assert not controller.awake and controller.stats.wakes == 0

    await mic.put_all(phrase)
    frames = await drain(conn)
    audio = sent_audio(frames)
    [(_, wake)] = [e for e in events if e[0] == "listen.wake"]
    assert wake["wake_word"] == "okay_nabu" and wake["probability"] > 0.85
    assert controller.awake and controller.stats.wakes == 1
    # The first chunk sent is the first of the 200 ms (5 chunks) of pre-roll before the chunk
    # that completed the phrase; everything from there on follows, in order.
    stream = before + phrase
    first = stream.index(audio[0])
    assert first >= len(before), "nothing from before the phrase"
    assert audio == stream[first:]
    assert sink.writes == [wake_chime()], "the chime played"

    # The model answers; nobody speaks for the timeout after its turn: the stream ends.
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\0\0" * 240)]}}})
    await conn.send({"serverContent": {"turnComplete": True}})
    await asyncio.sleep(0.1)
    clock.now += 4.0
    await mic.put_all(wa.chunks(wa.pcm(wa.silence(0.2))))
    assert controller.awake, "not before the timeout"
    await drain(conn)
    clock.now += 1.5
    await mic.put_all(wa.chunks(wa.pcm(wa.speech()[: 2 * 16000])))
    frames = await drain(conn)
    assert sent_audio(frames) == []
    assert frames == [{"realtimeInput": {"audioStreamEnd": True}}]
    assert not controller.awake
    assert [e[1]["reason"] for e in events if e[0] == "listen.sleep"] == ["timeout"]

    # A second wake opens a second conversation.
    await mic.put_all(wa.chunks(wa.pcm(wa.with_noise(np.concatenate(
        [wa.silence(0.5), wa.recording("okay_nabu_1"), wa.silence(0.3)]), 30, seed=4))))
    assert controller.awake and controller.stats.wakes == 2
    assert sent_audio(await drain(conn))
    await controller.stop()


async def test_the_model_speaking_holds_the_conversation_open(
        live_server: ScriptedServer) -> None:
    clock = Clock()
    busy = [False]
    controller, conn, mic, _, _ = await start(
        live_server, conversation_timeout_s=2.0, clock=clock, speaker_busy=lambda: busy[0])
    await mic.put_all(wa.chunks(wa.pcm(wa.recording("okay_nabu_2"))))
    assert controller.awake
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\0\0" * 240)]}}})
    await asyncio.sleep(0.1)
    clock.now += 10  # a long reply, its turn still open
    await mic.put_all(wa.chunks(wa.pcm(wa.silence(0.1))))
    assert controller.awake
    await conn.send({"serverContent": {"turnComplete": True}})
    busy[0] = True  # ... and still playing
    await asyncio.sleep(0.1)
    clock.now += 10
    await mic.put_all(wa.chunks(wa.pcm(wa.silence(0.1))))
    assert controller.awake
    busy[0] = False
    clock.now += 2.5
    await mic.put_all(wa.chunks(wa.pcm(wa.silence(0.1))))
    assert not controller.awake
    await controller.stop()


async def test_the_camera_sends_only_in_a_conversation(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    mic, video = Feed(), Feed()
    controller = await start_audio_conversation(
        session, source=mic, sink=Sink(), wake=MicroWakeWordDetector(["okay_nabu"]),
        video=video, pre_roll_ms=0)
    await video.put_all([b"\xff\xd8frame-asleep"] * 3)
    assert await drain(conn) == []
    assert controller.stats.frames_held == 3
    await mic.put_all(wa.chunks(wa.pcm(wa.recording("okay_nabu_2"))))
    await drain(conn)
    await video.put_all([b"\xff\xd8frame-awake"])
    [frame] = await drain(conn)
    assert base64.b64decode(frame["realtimeInput"]["video"]["data"]) == b"\xff\xd8frame-awake"
    await controller.stop()


async def test_muting_cuts_the_model_off_and_ends_the_conversation(
        live_server: ScriptedServer) -> None:
    controller, conn, mic, sink, events = await start(live_server)
    await mic.put_all(wa.chunks(wa.pcm(wa.recording("okay_nabu_2"))))
    assert controller.awake
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\1\0" * 240)]}}})
    await asyncio.sleep(0.1)
    assert len(sink.writes) == 1
    controller.set_muted(True)
    assert sink.flushes == 1
    await mic.put_all(wa.chunks(wa.pcm(wa.silence(0.1))))
    assert not controller.awake
    assert [e[1]["reason"] for e in events if e[0] == "listen.sleep"] == ["muted"]
    # The rest of the turn the model was speaking is not played.
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\2\0" * 240)]}}})
    await conn.send({"serverContent": {"turnComplete": True}})
    await asyncio.sleep(0.1)
    assert len(sink.writes) == 1
    controller.set_muted(False)
    # While asleep nothing is sent, muted or not.
    await drain(conn)
    await mic.put_all(wa.chunks(wa.pcm(wa.speech()[:16000])))
    assert sent_audio(await drain(conn)) == []
    await controller.stop()
