"""Real wake-word recordings and the room sounds they are mixed with (16 kHz mono).

The recordings (tests/data/wakeword, see its SOURCE.md) are people saying "okay nabu" and
"hey jarvis"; speech without a wake word is the demo's WAV. Signals are floats in [-1, 1);
`pcm` turns them into the S16LE bytes a microphone gives.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

import agent

Floats = npt.NDArray[np.float64]

RATE = 16000
ROOT = Path(__file__).resolve().parents[2]
WAKEWORD_DIR = ROOT / "tests" / "data" / "wakeword"
# From the agent package itself: the checkout's, or the installed wheel's when the tests run
# against an install (the arm64 tier).
SPEECH_WAV = Path(agent.__file__).resolve().parent / "data" / "demo_commands.wav"
RECORDINGS = {
    "okay_nabu": ("okay_nabu_1", "okay_nabu_2"),
    "hey_jarvis": ("hey_jarvis_1", "hey_jarvis_2"),
}


def load(path: Path) -> Floats:
    """A 16 kHz mono S16 WAV as floats."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0


def recording(name: str) -> Floats:
    """One recording of tests/data/wakeword by its stem (``okay_nabu_1``)."""
    return load(WAKEWORD_DIR / f"{name}.wav")


def speech() -> Floats:
    """About 16 s of ordinary spoken commands, with no wake word in them."""
    return load(SPEECH_WAV)


def speech_level(x: Floats) -> float:
    """RMS of the louder half of 20 ms frames: the level of the speech, not of the pauses."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    energy = np.sort(np.mean(frames**2, axis=1))[::-1]
    return float(np.sqrt(np.mean(energy[: max(1, len(energy) // 2)])))


def silence(seconds: float) -> Floats:
    return np.zeros(round(seconds * RATE))


def white_noise(seconds: float, level: float, seed: int = 0) -> Floats:
    """White noise of RMS ``level`` (full scale = 1)."""
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)) * level


def with_noise(x: Floats, snr_db: float, seed: int = 0) -> Floats:
    """``x`` with white noise ``snr_db`` below its speech level."""
    level = speech_level(x) * 10 ** (-snr_db / 20)
    return x + white_noise(len(x) / RATE, level, seed)


def phrase_end_s(x: Floats) -> float:
    """Where a recording's phrase ends: the end of the last 20 ms frame within 25 dB of the
    loudest one."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    return float((np.nonzero(level > level.max() - 25)[0][-1] + 1) * 0.02)


def faster(x: Floats, factor: float) -> Floats:
    """``x`` played ``factor`` times as fast (higher and quicker: another voice, another pace)."""
    import soxr

    return np.asarray(soxr.resample(x, RATE * factor, RATE), dtype=np.float64)


def room_blocks(excluded: tuple[str, ...], seconds: float, seed: int = 0
                ) -> Iterator[Floats]:
    """About ``seconds`` of room sound with no wake phrase but the recordings not in
    ``excluded`` (model names), in blocks of whole 40 ms chunks, made as they are needed (an
    hour is 460 MB as floats). Each block varies what it draws from: the spoken commands at
    0.85-1.15x speed and 0 to -12 dB, alone or in white noise at 5-30 dB SNR; white noise and
    hum (1/f^2) at random levels; silence; and the other recordings at 0.9-1.1x speed,
    in random order. The same ``seed`` gives the same audio."""
    rng = np.random.default_rng(seed)
    others = [recording(n) for m, names in RECORDINGS.items() if m not in excluded
              for n in names]
    base = speech()
    made = 0
    while made < seconds * RATE:
        talk = faster(base, rng.uniform(0.85, 1.15)) * 10 ** (rng.uniform(-12, 0) / 20)
        snr = rng.choice([np.inf, 30, 20, 10, 5])
        parts = [talk if snr == np.inf else with_noise(talk, snr, seed=int(rng.integers(1 << 30))),
                 white_noise(rng.uniform(3, 10), 10 ** rng.uniform(-3.5, -1.5),
                             seed=int(rng.integers(1 << 30))),
                 hum(rng.uniform(3, 10), 10 ** rng.uniform(-3.5, -1.5),
                     seed=int(rng.integers(1 << 30))),
                 silence(rng.uniform(1, 4))]
        parts += [np.concatenate([silence(0.5), faster(x, rng.uniform(0.9, 1.1))
                                  * 10 ** (rng.uniform(-10, 0) / 20), silence(0.5)])
                  for x in others]
        block = np.concatenate([parts[i] for i in rng.permutation(len(parts))])
        block = block[: len(block) // 640 * 640]
        made += len(block)
        yield block


def hum(seconds: float, level: float, seed: int = 0) -> Floats:
    """Brown (1/f^2) noise of RMS ``level``: the rumble of traffic, a fan, a fridge."""
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(round(seconds * RATE)))
    sums = np.cumsum(np.concatenate([np.zeros(801), walk, np.full(800, walk[-1])]))
    walk -= (sums[1601:] - sums[:-1601]) / 1601  # less its 100 ms moving mean: no drift
    return walk * level / (np.sqrt(np.mean(walk**2)) + 1e-12)


def false_wakes(models: tuple[str, ...], excluded: tuple[str, ...], seconds: float,
                seed: int) -> tuple[dict[str, int], float, float]:
    """Detections of each of ``models`` over ``room_blocks(excluded, seconds, seed)`` in 40 ms
    chunks, as the capture gives them: (per model, seconds of audio, CPU seconds spent)."""
    import logging
    import time

    import structlog

    from agent.media.audio.wakeword import MicroWakeWordDetector

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    detector = MicroWakeWordDetector(list(models))
    counts = dict.fromkeys(models, 0)
    heard, cpu = 0, 0.0
    for block in room_blocks(excluded, seconds, seed):
        data = pcm(block)
        start = time.process_time()
        for chunk in chunks(data):
            if (hit := detector.detect(chunk)) is not None:
                counts[hit.name] += 1
        cpu += time.process_time() - start
        heard += len(block)
    detector.close()
    return counts, heard / RATE, cpu


def pcm(x: Floats) -> bytes:
    """Floats to S16LE bytes, clipped."""
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()


def chunks(data: bytes, chunk_ms: int = 40) -> list[bytes]:
    """S16LE bytes in the capture's chunks."""
    step = RATE * chunk_ms // 1000 * 2
    return [data[i : i + step] for i in range(0, len(data), step)]


class DaemonMic:
    """The virtual ALSA devices for a daemon run as a subprocess: the ALSA config under
    ``root`` (``env`` points the child at it) and pipes parked on the devices' descriptors
    (pass ``fds`` to the child). ``mic`` feeds ``vmic`` in real time."""

    MIC_FD, SPEAKER_FD = 73, 72

    def __init__(self, root: Path) -> None:
        from agent.media.audio import virtual_alsa as va

        devices = va.child_devices(root, self.MIC_FD, self.SPEAKER_FD)
        self.env, self.fds = devices.env, devices.fds
        self._speaker_end = devices.speaker_end
        self.mic = va.VirtualMic(devices.mic_end)

    def close(self) -> None:
        import contextlib
        import os

        self.mic.close()
        for fd in (self._speaker_end, *self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
