"""Real wake-word recordings and the room sounds they are mixed with (16 kHz mono).

The recordings (tests/data/wakeword, see its SOURCE.md) are people saying "okay nabu" and
"hey jarvis"; speech without a wake word is the demo's WAV. Signals are floats in [-1, 1);
`pcm` turns them into the S16LE bytes a microphone gives.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

RATE = 16000
ROOT = Path(__file__).resolve().parents[2]
WAKEWORD_DIR = ROOT / "tests" / "data" / "wakeword"
SPEECH_WAV = ROOT / "agent" / "data" / "demo_commands.wav"
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
    (pass ``fds`` to the child). ``mic`` feeds ``vmic`` in real time. This process never opens
    PortAudio on them, so it needs none of `VirtualAlsa.install`'s checks; the descriptors are
    not those of `VirtualAlsa`, which another test of this process may have installed."""

    MIC_FD, SPEAKER_FD = 73, 72

    def __init__(self, root: Path) -> None:
        from agent.media.audio import virtual_alsa as va

        conf = root / "alsa" / "asoundrc"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(va._ASOUNDRC.format(mic_fd=self.MIC_FD, speaker_fd=self.SPEAKER_FD,
                                            root=root))
        self.env = {"XDG_CONFIG_HOME": str(root)}
        self.fds = (self.MIC_FD, self.SPEAKER_FD)
        self._speaker_end = va._park(self.SPEAKER_FD, read_end=False)
        self.mic = va.VirtualMic(va._park(self.MIC_FD, read_end=True))

    def close(self) -> None:
        import contextlib
        import os

        self.mic.close()
        for fd in (self._speaker_end, *self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
