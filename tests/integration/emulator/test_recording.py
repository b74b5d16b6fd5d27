"""Recordings: what arrived, in order, with times, per connection and per session."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np

from agent.emulator import Emulator, EmulatorConfig
from tests.support.emulator_client import audio_message, setup_message, utterance


def _frames(start: int, stop: int) -> list[np.ndarray[Any, np.dtype[np.int16]]]:
    """40 ms frames whose samples carry their own frame number."""
    return [np.full(640, i, dtype="<i2") for i in range(start, stop)]


async def _wait_for(predicate: Any, within: float = 5.0) -> None:
    """Poll the recording (it has no event to wait on) for at most ``within`` seconds."""
    for _ in range(round(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the emulator did not record it in time")


async def test_audio_across_a_resumed_session_is_complete_and_in_order(
    emulator: Emulator, open_client: Any
) -> None:
    first = await open_client(emulator, setup_message(sessionResumption={}))
    handle = (await first.recv())["sessionResumptionUpdate"]["newHandle"]
    for frame in _frames(0, 30):
        await first.send(audio_message(frame, snake=True))
    rec1 = emulator.recordings.connection(1)
    await _wait_for(lambda: len(rec1.audio) == 30)
    await first.ws.close()

    second = await open_client(emulator, setup_message(sessionResumption={"handle": handle}))
    for frame in _frames(30, 60):
        await second.send(audio_message(frame))
    rec2 = emulator.recordings.connection(2)
    await _wait_for(lambda: len(rec2.audio) == 30)

    session = emulator.recordings.session()
    assert [c.number for c in session.connections] == [1, 2]
    assert np.array_equal(session.audio_samples(), np.concatenate(_frames(0, 60)))
    firsts = [int(chunk.samples[0]) for chunk in session.audio]
    assert firsts == list(range(60))  # nothing lost, duplicated or reordered
    times = [chunk.t for chunk in session.audio]
    assert times == sorted(times)
    assert rec1.closed_at is not None and rec1.closed_at <= rec2.opened_at
    assert rec1.close_code == 1000


async def test_every_message_in_order_with_video_and_what_was_sent(
    emulator: Emulator, open_client: Any
) -> None:
    client = await open_client(emulator, setup_message())
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
    data = base64.b64encode(jpeg).decode()
    await client.send({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": data}}})
    await client.send_audio(utterance())
    await client.turn()
    rec = emulator.recordings.connection(1)
    assert [r.index for r in rec.received] == list(range(len(rec.received)))
    assert rec.kinds()[:3] == ["setup", "realtimeInput.video", "realtimeInput.audio"]
    assert [t.t for t in rec.received] == sorted(t.t for t in rec.received)
    assert [v.data for v in rec.video] == [jpeg]
    assert rec.sent_kinds()[0] == "setupComplete"
    assert rec.sent_kinds()[-1] == "serverContent+usageMetadata"
    # The reply follows the end of the speech (0.4 s of tone, then the 0.6 s of silence that
    # ends a turn), which the client may still be sending silence after: what was received
    # before the reply, on the same monotonic clock, holds all of it, and the reply came soon.
    first_out = next(s.t for s in rec.sent if "modelTurn" in s.message.get("serverContent", {}))
    before = [a for a in rec.audio if a.t <= first_out]
    assert sum(len(a.samples) for a in before) >= round((0.4 + 0.6) * 16000)
    assert first_out - before[-1].t < 5
    assert emulator.stats.audio_frames == len(rec.audio) and emulator.stats.video_frames == 1
    assert emulator.stats.frame_percentile(99) > 0


async def test_texts_of_a_session(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())
    await client.send({"client_content": {"turns": [{"role": "user", "parts": [{"text": "a"}]}],
                                          "turn_complete": True}})  # fmt: skip
    await client.turn()
    await client.send({"realtimeInput": {"text": "b"}})
    await client.turn()
    assert emulator.recordings.session().texts() == ["a", "b"]


async def test_recording_can_be_switched_off(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(record=False, time_scale=0.05)) as emu:
        client = await open_client(emu, setup_message())
        await client.send_audio(utterance())
        await client.turn()
        rec = emu.recordings.connection(1)
        assert rec.received == [] and rec.audio == [] and rec.sent == []
        assert emu.stats.audio_frames == 30
