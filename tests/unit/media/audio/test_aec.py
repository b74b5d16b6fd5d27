"""The in-process echo canceller: WebRTC AEC3 against the speaker's tap, on synthetic rooms."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import structlog

from agent.config.model import MAX_AEC_DELAY_MS
from agent.emulator.speech import synth_voice
from agent.media.audio.aec import (
    FRAME,
    MAX_DELAY_MS,
    EchoCancellerError,
    EchoCancellingSource,
    EchoSettings,
    make_processor,
)
from agent.media.audio.playback import AudioPlayback
from agent.media.audio.reference import ReferenceTap
from agent.media.audio.sim import SilenceSource
from tests.support import offline_aec
from tests.support.offline_aec import CHUNK, RATE, Chunks
from tests.support.room import broadband_voice, room_impulse_response
from tests.support.wake_audio import speech

pytest.importorskip("pywebrtc_audio")



def db(x: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-3))


def cancel(far: npt.NDArray[np.float64], mic: npt.NDArray[np.float64],
           settings: EchoSettings | None = None
           ) -> tuple[npt.NDArray[np.int16], EchoCancellingSource]:
    """Run the canceller chunk by chunk, the tap fed just before each mic chunk."""
    return offline_aec.cancel(far, mic, settings or EchoSettings(delay_ms=0))


def echo_of(far: npt.NDArray[np.float64], lag_ms: float = 30.0) -> npt.NDArray[np.float64]:
    rir = room_impulse_response()
    size = far.size + rir.size - 1  # by FFT: a direct convolution of seconds of audio is slow
    echo = np.fft.irfft(np.fft.rfft(far, size) * np.fft.rfft(rir, size), size)[: far.size]
    lag = round(lag_ms * RATE / 1000)
    return np.concatenate([np.zeros(lag), echo])[: far.size]


def test_echo_is_cancelled_by_more_than_20_db_after_convergence() -> None:
    far = broadband_voice(8.0)
    echo = echo_of(far)
    noise = np.random.default_rng(1).standard_normal(far.size) * 3
    out, aec = cancel(far, echo + noise)
    tail = slice(4 * RATE, out.size)
    erle = db(echo[tail]) - db(out[tail])
    assert erle > 20, f"ERLE {erle:.1f} dB"
    assert aec.frames == out.size // FRAME


def test_near_end_speech_passes_while_the_echo_goes() -> None:
    far = broadband_voice(8.0)
    echo = echo_of(far)
    near = np.zeros(far.size)
    near[6 * RATE : 7 * RATE] = broadband_voice(1.0, seed=7) * 0.5
    out, _ = cancel(far, echo + near)
    talk, alone = slice(6 * RATE, 7 * RATE), slice(5 * RATE, 6 * RATE)
    # the echo alone goes; over the echo, the speech stays well above what is left of it
    assert db(out[alone]) < db(echo[alone]) - 20
    assert db(out[talk]) > db(out[alone]) + 10


def test_without_a_reference_the_mic_passes_unchanged_in_level() -> None:
    near = broadband_voice(3.0, seed=3)
    out, _ = cancel(np.zeros(near.size), near)
    assert abs(db(out[RATE:]) - db(near[RATE : out.size])) < 3


def test_a_canceller_that_falls_behind_says_what_to_do() -> None:
    source = Chunks()
    source.dropped = 0
    aec = EchoCancellingSource(source, ReferenceTap(RATE), EchoSettings(delay_ms=0))
    chunk = np.zeros(CHUNK, np.int16).tobytes()
    with structlog.testing.capture_logs() as logs:
        aec.process(chunk)
        for _ in range(3):
            source.dropped += 5  # the capture's queue threw the oldest away
            aec.process(chunk)
    behind = [e for e in logs if e["event"] == "audio.aec.behind"]
    assert len(behind) == 1 and behind[0]["log_level"] == "warning"
    assert "half_duplex" in behind[0]["hint"] and behind[0]["dropped"] == 5


def test_chunks_that_are_not_whole_frames_wait_for_the_rest() -> None:
    aec = EchoCancellingSource(Chunks(), ReferenceTap(RATE), EchoSettings(delay_ms=0))
    assert aec.process(b"\x01") == b""  # an odd byte
    assert aec.process(bytes(2 * FRAME - 2)) == b""  # short of a frame by the odd byte's half
    out = aec.process(bytes(2 * FRAME + 1))
    assert len(out) == 2 * 2 * FRAME  # two whole frames out, one byte kept
    assert aec.process(b"") == b""
    assert aec.frames == 2


def test_the_reference_is_held_back_by_the_delay_or_the_reported_latency() -> None:
    tap = ReferenceTap(RATE)
    tap.latency_s = 0.05
    assert EchoCancellingSource(Chunks(), tap, EchoSettings()).hold_samples == 800
    assert EchoCancellingSource(Chunks(), tap, EchoSettings(delay_ms=120)).hold_samples == 1920
    tap.latency_s = 10.0  # a device reporting nonsense is capped
    assert EchoCancellingSource(Chunks(), tap).hold_samples == MAX_DELAY_MS * 16


def test_a_held_back_reference_meets_a_late_echo() -> None:
    far = broadband_voice(8.0)
    echo = echo_of(far, lag_ms=250.0)  # past what AEC3 finds in a short time on its own
    out, _ = cancel(far, echo, EchoSettings(delay_ms=240))
    tail = slice(4 * RATE, out.size)
    assert db(echo[tail]) - db(out[tail]) > 20


def test_settings_are_checked() -> None:
    assert MAX_DELAY_MS == MAX_AEC_DELAY_MS  # config's bound is the canceller's
    with pytest.raises(ValueError, match="delay_ms"):
        EchoSettings(delay_ms=MAX_DELAY_MS + 1)
    with pytest.raises(ValueError, match="noise suppression"):
        EchoSettings(noise_suppression="loud")
    with pytest.raises(ValueError, match="16000"):
        bad = Chunks()
        bad.sample_rate = 48000
        EchoCancellingSource(bad, ReferenceTap(RATE))


@pytest.mark.parametrize("level", ["off", "low", "moderate", "high", "very_high"])
def test_every_noise_suppression_level_and_gain_control_run(level: str) -> None:
    settings = EchoSettings(delay_ms=0, noise_suppression=level, gain_control=True, gain_db=6)
    far = broadband_voice(2.0)
    out, _ = cancel(far, echo_of(far), settings)
    assert out.size == far.size // CHUNK * CHUNK and np.isfinite(out.astype(float)).all()


def test_a_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    with pytest.raises(EchoCancellerError, match="pip install pywebrtc-audio"):
        make_processor(EchoSettings())


def test_reference_tap_keeps_the_newest_half_second_and_reads_by_position() -> None:
    tap = ReferenceTap(RATE)
    x = np.arange(20000, dtype=np.int16)
    for i in range(0, x.size, 300):
        tap.push(x[i : i + 300].tobytes())
    assert tap.written == 20000 and tap.size == 8000
    out = np.empty(100, np.int16)
    tap.read_into(out, 20000)
    assert np.array_equal(out, x[-100:])
    tap.read_into(out, 12050)  # straddles the oldest kept sample: zeros before it
    assert np.array_equal(out[:50], np.zeros(50)) and np.array_equal(out[50:], x[12000:12050])
    tap.read_into(out, 20050)  # not written yet: zeros
    assert np.array_equal(out[:50], x[-50:]) and not out[50:].any()
    tap.push(np.arange(9000, dtype=np.int16).tobytes())  # more than the ring: the newest kept
    tap.read_into(out, tap.written)
    assert np.array_equal(out, np.arange(8900, 9000))
    with pytest.raises(ValueError):
        ReferenceTap(RATE, keep_s=5.0)


def test_reference_tap_converts_the_models_24_khz() -> None:
    tap = ReferenceTap(24000)
    tone = (np.sin(2 * np.pi * 440 * np.arange(24000) / 24000) * 8000).astype(np.int16)
    for i in range(0, tone.size, 240):
        tap.push(tone[i : i + 240].tobytes())
    assert abs(tap.written - 16000) < 400  # the resampler holds back a few ms


def model_voice(seconds: float) -> npt.NDArray[np.float64]:
    """The emulator's synthetic voice, as the daemon plays it."""
    pcm = synth_voice(round(seconds * RATE), RATE, 180.0, 0.5)
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def test_after_barge_ins_every_reply_starts_with_its_echo_taken() -> None:
    """Replies, three of them talked over (the reply cut as the person speaks), each followed
    by a quiet one: AEC3 carried over from double talk passes the next reply's first echo;
    the canceller starts each reply afresh and takes it from the first frame."""
    person = speech() * 0.8 * 32767
    quiet_reply = np.concatenate([model_voice(3.4), np.zeros(RATE)])
    far_parts, near_parts = [np.zeros(RATE), quiet_reply], [np.zeros(RATE + quiet_reply.size)]
    for start, end in ((0.45, 1.45), (5.2, 7.0), (10.7, 11.9)):
        words = person[round(start * RATE) : round(end * RATE)]
        cut = model_voice(1.25)  # the words start 1 s in; the reply is cut 0.25 s later
        far_parts += [cut, np.zeros(RATE + words.size + 2 * RATE - cut.size), quiet_reply]
        near_parts += [np.zeros(RATE), words, np.zeros(2 * RATE + quiet_reply.size)]
    far, near = np.concatenate(far_parts), np.concatenate(near_parts)
    noise = np.random.default_rng(2).standard_normal(far.size) * 30  # the room's -60 dBFS
    mic = echo_of(far, lag_ms=0.0) + near + noise
    # the echo comes 120 ms after the reference pairs it (buffers the device did not report)
    lead = round(0.12 * RATE)
    far = np.concatenate([far[lead:], np.zeros(lead)])
    out, aec = cancel(far, mic)

    def onsets(signal: npt.NDArray[np.float64]) -> list[int]:
        frames = signal[: signal.size // FRAME * FRAME].reshape(-1, FRAME)
        loud = np.mean(frames**2, axis=1) > 1e4
        return [i * FRAME for i in range(10, loud.size) if loud[i] and not loud[i - 10 : i].any()]

    starts = onsets(far)
    assert len(starts) == 7
    first_echo = [slice(at, at + round(0.3 * RATE)) for at in starts]
    assert all(db(out[s]) < db(mic[s]) - 20 for s in first_echo), [
        (round(db(mic[s])), round(db(out[s]))) for s in first_echo]
    assert aec.fresh_starts == 7
    # the same audio through one AEC3 left to itself: some reply's first echo comes through
    carried = make_processor(EchoSettings())
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    far16 = np.clip(far, -32768, 32767).astype(np.int16)
    plain = np.concatenate([np.array(carried.process(mic16[i : i + CHUNK], far16[i : i + CHUNK]))
                            for i in range(0, far16.size - CHUNK + 1, CHUNK)])
    leaks = [round(db(plain[s]) - db(out[s])) for s in first_echo]
    assert max(leaks) > 20, leaks


class FakeOutput:
    """A device stand-in: records what it is given, paced like a device (10 ms a block)."""

    def __init__(self) -> None:
        self.rate, self.channels, self.latency_s = 24000, 1, 0.03
        self.written: list[bytes] = []

    def write(self, pcm: bytes) -> None:
        self.written.append(pcm)
        time.sleep(len(pcm) / 48000)

    def close(self) -> None:
        pass


async def test_a_tapped_speaker_plays_silence_between_replies_and_taps_what_it_plays() -> None:
    device = FakeOutput()
    speaker = AudioPlayback(open_output=lambda: device)
    tap = speaker.tap()
    assert speaker.tap() is tap

    def played() -> npt.NDArray[np.int16]:
        return np.frombuffer(b"".join(device.written), np.int16)

    async def until(done: Callable[[], bool]) -> None:  # waits on progress, not on the clock
        async with asyncio.timeout(10.0):
            while not done():
                await asyncio.sleep(0.01)

    await speaker.start()
    try:
        assert tap.latency_s == pytest.approx(0.03)
        await until(lambda: played().size >= 2400)  # no reply yet: silence all the same
        speaker.write(np.full(4800, 1000, np.int16).tobytes())  # 200 ms of the model
        await until(lambda: (played() == 1000).sum() == 4800
                    and not played()[-2400:].any())  # and silence again after it
    finally:
        await speaker.stop()
    reply = np.flatnonzero(played() == 1000)
    assert reply[0] >= 2400 and reply[-1] - reply[0] == 4799  # silence, the reply whole, silence
    assert abs(tap.written - played().size * 2 / 3) < 800  # all of it (soxr holds some)
    ref = np.empty(tap.size, np.int16)
    tap.read_into(ref, tap.written)
    assert (np.abs(ref - 1000) < 50).sum() > 2500  # the model's 200 ms is in the reference


def test_an_untapped_speaker_writes_nothing_between_replies() -> None:
    device = FakeOutput()
    speaker = AudioPlayback(open_output=lambda: device)

    async def run() -> None:
        await speaker.start()
        await asyncio.sleep(0.3)
        await speaker.stop()

    asyncio.run(run())
    assert not device.written


async def test_the_canceller_wraps_a_source_like_the_gate() -> None:
    source = SilenceSource(0.4, realtime=False, chunk_ms=40)
    aec = EchoCancellingSource(source, ReferenceTap(RATE), EchoSettings(delay_ms=0))
    async with aec:
        chunks = [c async for c in aec.chunks()]
    assert chunks and all(len(c) == 1280 for c in chunks)
