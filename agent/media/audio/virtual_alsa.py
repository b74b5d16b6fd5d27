"""Virtual ALSA devices: real PyAudio streams on a machine without a sound card.

ALSA's ``file`` plugin over the ``null`` PCM gives PortAudio ordinary capture and playback
devices whose samples come from, and go to, file descriptors. Pipes make them real time: a
writer thread feeds the mic at the device rate, a reader thread drains the speaker at the device
rate, and PyAudio's blocking reads and writes wait exactly as they would on hardware.

Devices (names as PortAudio lists them):

``vmic``
    raw capture from the pipe on fd 63, in whatever format the app opens (bit-exact).
``vmic_i2s``
    ``plug`` over a 16 kHz mono S16 feed on the same pipe: the app opens it as an I2S mic
    (48 kHz, 2 ch, S32_LE) and ALSA converts.
``vmic_plug``
    ``plug`` over an I2S-format feed (48 kHz, 2 ch, S32_LE) on the same pipe: what an app
    that opens the default device at 16 kHz mono gets on a Pi with an I2S mic.
``vspk``
    raw playback into the pipe on fd 62.
``vspk_wav``
    playback into ``<root>/vspk.wav`` (no clock: writes return at once).
``default``
    ``vmic`` for capture, ``vspk`` for playback.

Limits of the ``file`` plugin: a read that finds fewer bytes in the pipe than it asked for
returns stale data for the rest, so :class:`VirtualMic` writes in blocks of exactly the app's
read size, one ``write()`` per block (the kernel wakes the reader after the whole write; blocks
up to the pipe's 64 KiB worked here for 10, 20 and 40 ms reads). ALSA reads its configuration
once per process, so :meth:`VirtualAlsa.install` must run before the first ``PyAudio()``; it
verifies that PortAudio sees the devices and says so if it does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.media.audio.devices import PortAudio, release_alsa_config, silence_native_audio_errors

MIC_FD = 63
SPEAKER_FD = 62
DEVICE_NAMES = ("vmic", "vmic_i2s", "vmic_plug", "vspk", "vspk_wav")
_F_SETPIPE_SZ = 1031

_ASOUNDRC = """\
pcm.vmic {{ type file; slave.pcm "null"; file "/dev/null"; infile {mic_fd}; format "raw" }}
pcm.vmic_i2s {{ type plug; slave {{ pcm "vmic"; rate 16000; channels 1; format S16_LE }} }}
pcm.vmic_plug {{ type plug; slave {{ pcm "vmic"; rate 48000; channels 2; format S32_LE }} }}
pcm.vspk {{ type file; slave.pcm "null"; file {speaker_fd}; format "raw" }}
pcm.vspk_wav {{ type file; slave.pcm "null"; file "{root}/vspk.wav"; format "wav" }}
pcm.!default {{ type asym; playback.pcm "vspk"; capture.pcm "vmic" }}
"""


@dataclass(frozen=True, slots=True)
class ChildDevices:
    """The virtual devices of a process this one starts (a daemon under test): ``env`` points
    the child's ALSA at the config, ``fds`` are the descriptors to pass it, ``mic_end`` is the
    write end feeding its ``vmic`` and ``speaker_end`` the read end of what it plays."""

    env: dict[str, str]
    fds: tuple[int, int]
    mic_end: int
    speaker_end: int


def child_devices(root: Path, mic_fd: int, speaker_fd: int) -> ChildDevices:
    """Write the ALSA config under ``root`` for a child whose devices are pipes on ``mic_fd``
    and ``speaker_fd``, and park those pipes. This process never opens PortAudio on them, so
    none of `VirtualAlsa.install`'s checks apply; choose descriptors other than `VirtualAlsa`'s,
    which another test of this process may have installed."""
    conf = root / "alsa" / "asoundrc"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(_ASOUNDRC.format(mic_fd=mic_fd, speaker_fd=speaker_fd, root=root),
                    encoding="utf-8")
    speaker_end = _park(speaker_fd, read_end=False)
    mic_end = _park(mic_fd, read_end=True)
    return ChildDevices({"XDG_CONFIG_HOME": str(root)}, (mic_fd, speaker_fd), mic_end,
                        speaker_end)


class VirtualAlsaError(RuntimeError):
    """The virtual devices could not be set up (usually: PortAudio was initialised first)."""


def _park(fd: int, *, read_end: bool) -> int:
    """Put one end of a fresh pipe on ``fd``; return the other end."""
    r, w = os.pipe()
    mine, other = (r, w) if read_end else (w, r)
    os.dup2(mine, fd)
    os.close(mine)
    return other


class VirtualAlsa:
    """Writes the ALSA config under ``root`` and points this process at it.

    ``install()`` must run before PortAudio is first initialised in the process; ``uninstall()``
    restores the environment. One instance per process (the descriptors are fixed).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._old_env: str | None = None
        self._parked: list[int] = []
        self.installed = False

    @property
    def asoundrc(self) -> Path:
        """The generated configuration file."""
        return self.root / "alsa" / "asoundrc"

    def install(self) -> None:
        """Write the config, set ``XDG_CONFIG_HOME``, park pipes on the fds, verify."""
        self.asoundrc.parent.mkdir(parents=True, exist_ok=True)
        self.asoundrc.write_text(
            _ASOUNDRC.format(mic_fd=MIC_FD, speaker_fd=SPEAKER_FD, root=self.root),
            encoding="utf-8",
        )
        self._old_env = os.environ.get("XDG_CONFIG_HOME")
        os.environ["XDG_CONFIG_HOME"] = str(self.root)
        # PortAudio opens every device while enumerating: the fds must be valid before that.
        self._parked = [_park(MIC_FD, read_end=True), _park(SPEAKER_FD, read_end=False)]
        silence_native_audio_errors()
        release_alsa_config()  # drop a configuration read before XDG_CONFIG_HOME was set
        missing = [n for n in DEVICE_NAMES if n not in self.device_names()]
        if missing:
            raise VirtualAlsaError(
                f"PortAudio does not list {missing}: it was initialised before the virtual ALSA "
                "config was installed (create VirtualAlsa before any PyAudio())"
            )
        self.installed = True

    def uninstall(self) -> None:
        """Restore ``XDG_CONFIG_HOME`` and close the parked pipes."""
        if self._old_env is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = self._old_env
        for fd in (*self._parked, MIC_FD, SPEAKER_FD):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._parked = []
        self.installed = False

    @staticmethod
    def device_names() -> list[str]:
        """Device names PortAudio lists right now."""
        host = PortAudio()
        try:
            return [str(d["name"]) for d in host.devices()]
        finally:
            host.close()

    def mic(self) -> VirtualMic:
        """A fresh feed for ``vmic``/``vmic_i2s`` (the previous one is detached)."""
        return VirtualMic(_park(MIC_FD, read_end=True))

    def speaker(self, bytes_per_second: int, block_ms: int = 5) -> VirtualSpeaker:
        """A fresh, real-time drain for ``vspk`` at ``bytes_per_second``."""
        return VirtualSpeaker(_park(SPEAKER_FD, read_end=False), bytes_per_second, block_ms)


@dataclass
class VirtualMic:
    """Feeds the virtual mic from a thread; ``written_at`` records when each block went in."""

    fd: int
    written_at: list[tuple[int, float]] = field(default_factory=list)  # (end offset, monotonic)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def play(self, data: bytes, *, block_bytes: int, bytes_per_second: int | None = None) -> None:
        """Write ``data`` in ``block_bytes`` blocks, paced to ``bytes_per_second`` if given.

        ``block_bytes`` must equal the capture's read size in bytes (at most 64 KiB).
        """
        if not 0 < block_bytes <= 65536:
            raise ValueError("block_bytes must be 1..65536 (the pipe's capacity)")
        self._thread = threading.Thread(
            target=self._write,
            args=(data, block_bytes, bytes_per_second),
            daemon=True,
            name="virtual-mic",
        )
        self._thread.start()

    def _write(self, data: bytes, block: int, rate: int | None) -> None:
        started = time.monotonic()
        for offset in range(0, len(data) - len(data) % block, block):
            if rate:
                due = started + (offset + block) / rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
            elif self._stop.is_set():
                return
            try:
                os.write(self.fd, data[offset : offset + block])
            except OSError:
                return
            self.written_at.append((offset + block, time.monotonic()))

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for everything to be written; False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Stop writing and close the pipe: a blocked capture read returns (with stale data)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if self._thread is not None:
            self._thread.join(2.0)


class VirtualSpeaker:
    """Drains the virtual speaker at a real-time rate from a thread and keeps what it read.

    ``chunks`` holds ``(monotonic time, bytes)`` per read. The pipe is shrunk to one page so
    little audio hides in it: at 48 kHz stereo S16 that is 21 ms, about a real device buffer.
    """

    def __init__(self, fd: int, bytes_per_second: int, block_ms: int) -> None:
        self.fd = fd
        self.bytes_per_second = bytes_per_second
        self.chunks: list[tuple[float, bytes]] = []
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, 4096)
        self._block = max(2, bytes_per_second * block_ms // 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True, name="virtual-speaker")
        self._thread.start()

    @property
    def data(self) -> bytes:
        """Everything read so far."""
        return b"".join(c for _, c in self.chunks)

    def _drain(self) -> None:
        started = time.monotonic()
        total = 0
        os.set_blocking(self.fd, False)
        while not self._stop.is_set():
            due = started + total / self.bytes_per_second
            if self._stop.wait(max(0.0, due - time.monotonic())):
                break
            try:
                got = os.read(self.fd, self._block)
            except BlockingIOError:
                got = b""
            except OSError:
                break
            if got:
                self.chunks.append((time.monotonic(), got))
            # A real device plays on whether or not data came: keep the clock running.
            total += self._block

    def close(self) -> None:
        """Stop draining and close the pipe."""
        self._stop.set()
        self._thread.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self.fd)
