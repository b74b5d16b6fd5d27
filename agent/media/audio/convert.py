"""Audio conversion between devices and the Live API, in a tight, allocation-light loop.

Capture: a device's native PCM (I2S: 48 kHz, 2 ch, S32_LE carrying 24 or 18 bits; USB: S16 at
44.1/48 kHz) becomes 16 kHz mono S16LE chunks of a fixed length. The steps, in order:

1. channel pick (or mix) on the interleaved integers,
2. bit-depth shift (drops the bits below the mic's precision) and scaling to float,
3. anti-alias filtering and resampling to 16 kHz (a 1 ms FIR for 48 kHz, soxr otherwise),
4. DC blocking, fixed gain, optional automatic gain (at 16 kHz: a third of the work),
5. rounding to int16 little-endian and cutting into chunks, carrying leftovers between calls.

Playback: the model's 24 kHz mono S16 is resampled and widened to whatever the speaker takes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soxr

from agent.media.audio.filters import (
    AutoGain,
    DcBlocker,
    Float32Array,
    Resampler,
    SoxrResampler,
    make_resampler,
)

SampleFormat = Literal["int16", "int32"]

_DTYPES: dict[str, str] = {"int16": "<i2", "int32": "<i4"}
_BITS: dict[str, int] = {"int16": 16, "int32": 32}


@dataclass(frozen=True)
class CaptureFormat:
    """How a capture device delivers samples, and how to clean them up.

    Attributes:
        rate: device sample rate in Hz (48000 for I2S MEMS mics).
        channels: interleaved channels the device is opened with (I2S ``hw:`` needs 2).
        sample_format: ``"int16"`` or ``"int32"`` (S32_LE slots carrying 24 or 18 bits).
        channel: which channel to keep (0-based), or ``"mix"`` to average all of them.
        shift: low-order bits that carry no audio (8 for 24-bit-in-32, 14 for the SPH0645's
            18 bits); they are discarded by an arithmetic shift. Level is unchanged: full
            scale of the remaining bits maps to int16 full scale.
        dc_block: remove DC offset and sub-audio rumble (needed for the SPH0645).
        gain_db: fixed gain in dB (I2S MEMS mics usually need about 30 dB).
        agc: automatic gain toward a speech level of about -20 dBFS, on top of ``gain_db``.
    """

    rate: int = 16000
    channels: int = 1
    sample_format: SampleFormat = "int16"
    channel: int | Literal["mix"] = 0
    shift: int = 0
    dc_block: bool = True
    gain_db: float = 0.0
    agc: bool = False

    def __post_init__(self) -> None:
        if not 8000 <= self.rate <= 384000:
            raise ValueError(f"capture rate must be 8000..384000 Hz, got {self.rate}")
        if not 1 <= self.channels <= 32:
            raise ValueError(f"capture channels must be 1..32, got {self.channels}")
        if self.sample_format not in _DTYPES:
            raise ValueError(
                f"sample_format must be 'int16' or 'int32', got {self.sample_format!r}"
            )
        if self.channel != "mix" and not (
            isinstance(self.channel, int) and 0 <= self.channel < self.channels
        ):
            raise ValueError(
                f"channel must be 'mix' or 0..{self.channels - 1}, got {self.channel!r}"
            )
        if not 0 <= self.shift < _BITS[self.sample_format] - 8:
            raise ValueError(
                f"shift must be 0..{_BITS[self.sample_format] - 9} for {self.sample_format}, "
                f"got {self.shift}"
            )
        if not -40.0 <= self.gain_db <= 60.0:
            raise ValueError(f"gain_db must be -40..60, got {self.gain_db}")

    @property
    def bytes_per_sample(self) -> int:
        """Bytes in one sample of one channel."""
        return _BITS[self.sample_format] // 8

    @property
    def frame_bytes(self) -> int:
        """Bytes in one interleaved frame (one sample of every channel)."""
        return self.bytes_per_sample * self.channels

    @property
    def dtype(self) -> str:
        """The numpy dtype string of one sample (little-endian)."""
        return _DTYPES[self.sample_format]


@dataclass
class _Carry:
    """Bytes waiting for the rest of their frame or chunk."""

    raw: bytes = b""
    out: bytearray = field(default_factory=bytearray)


class CaptureConverter:
    """Device PCM in, 16 kHz mono S16LE chunks out; stateful and seamless across calls.

    ``feed()`` accepts any number of bytes (even half a frame) and returns every complete chunk
    of ``chunk_ms``; partial frames and partial chunks wait for the next call. Filters keep
    their history, so converting a signal in pieces equals converting it in one call.
    """

    def __init__(
        self,
        fmt: CaptureFormat,
        out_rate: int = 16000,
        chunk_ms: int = 40,
        *,
        resampler: str = "auto",
    ) -> None:
        if not 5 <= chunk_ms <= 1000:
            raise ValueError(f"chunk_ms must be 5..1000, got {chunk_ms}")
        self.fmt = fmt
        self.out_rate = out_rate
        self.chunk_ms = chunk_ms
        self.chunk_bytes = out_rate * chunk_ms // 1000 * 2
        self._resampler: Resampler = make_resampler(fmt.rate, out_rate, resampler)
        self._dc = DcBlocker(out_rate) if fmt.dc_block else None
        self._agc = AutoGain(out_rate) if fmt.agc else None
        # Shift, full-scale scaling and fixed gain fold into one multiply.
        self._scale = float(
            2.0 ** (fmt.shift - (_BITS[fmt.sample_format] - 1)) * 10.0 ** (fmt.gain_db / 20.0)
        )
        self._carry = _Carry()

    @property
    def delay_s(self) -> float:
        """Group delay added by the conversion (the resampler's), in seconds."""
        return self._resampler.delay_s

    def feed(self, raw: bytes) -> list[bytes]:
        """Convert ``raw`` device bytes; return zero or more complete chunks."""
        if self._carry.raw:
            raw = self._carry.raw + raw
        usable = len(raw) - len(raw) % self.fmt.frame_bytes
        self._carry.raw = raw[usable:]
        if usable:
            count = usable // self.fmt.bytes_per_sample
            self._carry.out += self._convert(np.frombuffer(raw, self.fmt.dtype, count))
        return self._cut()

    def flush(self, pad: bool = True) -> list[bytes]:
        """End of stream: drain the resampler and return what is left, zero-padded to a chunk."""
        if isinstance(self._resampler, SoxrResampler):
            self._carry.out += self._finish(self._resampler.flush())
        chunks = self._cut()
        if pad and self._carry.out:
            self._carry.out += bytes(self.chunk_bytes - len(self._carry.out))
            chunks += self._cut()
        self._carry = _Carry()
        return chunks

    def reset(self) -> None:
        """Drop leftovers and filter history (after a device reopen, say)."""
        self._carry = _Carry()
        self._resampler.reset()
        if self._dc:
            self._dc.reset()
        if self._agc:
            self._agc.reset()

    def _convert(self, samples: npt.NDArray[np.signedinteger[Any]]) -> bytes:
        fmt = self.fmt
        frames = samples.reshape(-1, fmt.channels)
        if fmt.channel == "mix" and fmt.channels > 1:
            picked = frames >> fmt.shift if fmt.shift else frames
            mono = picked.mean(axis=1, dtype=np.float32) * np.float32(self._scale)
        else:
            column = frames[:, 0 if fmt.channel == "mix" else fmt.channel]
            if fmt.shift:
                column = column >> fmt.shift
            mono = np.multiply(column, np.float32(self._scale), dtype=np.float32)
        return self._finish(self._resampler.process(mono))

    def _finish(self, x: Float32Array) -> bytes:
        if len(x) == 0:
            return b""
        if self._dc:
            x = self._dc.process(x)
        if self._agc:
            x = self._agc.process(x)
        return to_int16_bytes(x)

    def _cut(self) -> list[bytes]:
        out, size = self._carry.out, self.chunk_bytes
        n = len(out) // size
        if not n:
            return []
        chunks = [bytes(out[i * size : (i + 1) * size]) for i in range(n)]
        del out[: n * size]
        return chunks


def to_int16_bytes(x: Float32Array) -> bytes:
    """Round float samples in [-1, 1) to clipped int16 little-endian bytes."""
    y = np.rint(x * np.float32(32768.0))
    # np.clip, not np.minimum and np.maximum in place with a float32 bound: those crashed
    # Debian bookworm's numpy 1.24 in the x86 system test's VM.
    np.clip(y, -32768.0, 32767.0, out=y)
    return bytes(y.astype("<i2").tobytes())


class PlaybackConverter:
    """Mono S16LE at ``in_rate`` (the model's 24 kHz) to S16LE at the speaker's rate and width.

    Stateful (soxr streaming resampler), so consecutive pieces join without clicks; call
    ``reset()`` after dropping queued audio so the next utterance does not start with the tail
    of the previous one.
    """

    def __init__(self, in_rate: int = 24000, out_rate: int = 24000, out_channels: int = 1) -> None:
        if out_channels < 1:
            raise ValueError(f"out_channels must be at least 1, got {out_channels}")
        if in_rate < 1 or out_rate < 1:
            raise ValueError(f"sample rates must be positive, got {in_rate} and {out_rate}")
        self.in_rate, self.out_rate, self.out_channels = in_rate, out_rate, out_channels
        self._odd = b""
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        # float32, not int16: soxr dithers int16 output, which turns digital silence into hiss
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")

    def convert(self, pcm: bytes) -> bytes:
        """Convert one piece; an odd trailing byte waits for the next call."""
        if self._odd:
            pcm = self._odd + pcm
        usable = len(pcm) - len(pcm) % 2
        self._odd = pcm[usable:]
        samples = np.frombuffer(pcm, "<i2", usable // 2)
        if self._stream is None:
            return self._widen(samples)
        x = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
        return self._widen_float(self._stream.resample_chunk(x))

    def drain(self) -> bytes:
        """End of an utterance: return the resampler's held-back tail and start afresh."""
        tail = b""
        if self._stream is not None:
            tail = self._widen_float(
                self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
            )
        self.reset()
        return tail

    def _widen_float(self, x: Float32Array) -> bytes:
        return self._widen(np.frombuffer(to_int16_bytes(x), "<i2"))

    def _widen(self, samples: npt.NDArray[np.int16]) -> bytes:
        if self.out_channels > 1:
            samples = np.repeat(samples, self.out_channels)
        return bytes(samples.astype("<i2", copy=False).tobytes())

    def reset(self) -> None:
        """Forget resampler history and any odd byte."""
        self._odd = b""
        self._stream = self._new_stream()


MIN_PLAYBACK_RATE = 8_000
MAX_PLAYBACK_RATE = 48_000
"""Rates a sink converts from. Speech comes at 8-48 kHz; outside that range a rate is an error,
not audio, and a resampler for it would cost without bound (1 Hz to 24 kHz is 24,000x)."""


class RateAdapters:
    """Converters from other rates to ``out_rate``, mono S16LE: at most ``limit`` of them, the
    least recently used dropped first (with its few milliseconds of held-back tail)."""

    def __init__(self, out_rate: int, limit: int = 4) -> None:
        self.out_rate = out_rate
        self.limit = limit
        self._adapters: OrderedDict[int, PlaybackConverter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._adapters)

    def pieces(self, pcm: bytes, rate: int, piece_s: float = 0.5) -> Iterator[bytes]:
        """``pcm`` at ``rate``, converted ``piece_s`` at a time, so that a long chunk costs no
        more memory than one piece. Raises ``ValueError`` at once for a rate outside
        ``MIN_PLAYBACK_RATE``..``MAX_PLAYBACK_RATE``."""
        if rate == self.out_rate:
            return iter((pcm,))
        adapter = self._adapter(rate)
        step = max(2, round(rate * piece_s) * 2)
        return (adapter.convert(pcm[at : at + step]) for at in range(0, len(pcm), step))

    def _adapter(self, rate: int) -> PlaybackConverter:
        adapter = self._adapters.get(rate)
        if adapter is not None:
            self._adapters.move_to_end(rate)
            return adapter
        if not MIN_PLAYBACK_RATE <= rate <= MAX_PLAYBACK_RATE:
            raise ValueError(
                f"cannot play audio at {rate} Hz: rates go from {MIN_PLAYBACK_RATE} to "
                f"{MAX_PLAYBACK_RATE} Hz"
            )
        adapter = self._adapters[rate] = PlaybackConverter(rate, self.out_rate, 1)
        while len(self._adapters) > self.limit:
            self._adapters.popitem(last=False)
        return adapter

    def reset(self) -> None:
        """Forget every converter's history (after a flush)."""
        for adapter in self._adapters.values():
            adapter.reset()

    def drain(self) -> list[bytes]:
        """Every converter's held-back tail (at the end of a stream)."""
        return [tail for adapter in self._adapters.values() if (tail := adapter.drain())]
