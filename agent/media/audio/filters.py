"""Streaming filters behind :mod:`agent.media.audio.convert`: decimation, resampling, DC
blocking, gain.

Every filter here is stateful and block-size independent: feeding a signal in pieces of any
length gives the same output as feeding it at once (up to float rounding), which is what makes
chunk boundaries seamless. All of them work on float32 mono arrays scaled to [-1, 1).
"""

from __future__ import annotations

import functools
import math
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

# Stopband attenuation of the anti-alias filter. 70 dB keeps folded energy below the 16-bit
# quantisation floor of a typical -20 dBFS speech signal, with a margin over the 60 dB goal.
_STOPBAND_DB = 70.0


class Resampler(Protocol):
    """A stateful mono resampler: float32 in, float32 out."""

    @property
    def delay_s(self) -> float:
        """Group delay the resampler adds, in seconds."""
        ...

    def process(self, x: Float32Array) -> Float32Array:
        """Consume ``x`` and return every output sample that is complete so far."""
        ...

    def reset(self) -> None:
        """Forget all history, as if newly built."""
        ...


def design_decimation_filter(factor: int, in_rate: int) -> Float32Array:
    """Linear-phase Kaiser-windowed low-pass FIR for decimating ``in_rate`` by ``factor``.

    The passband ends at 87.5 % of the output Nyquist frequency and the stopband starts at
    112.5 %: what falls between 100 % and 112.5 % folds only onto the top 12.5 % of the output
    band (7-8 kHz at 16 kHz), which speech does not need. That keeps the filter short (about
    100 taps, 1 ms of delay at 48 kHz) where a steep general-purpose resampler adds ~20 ms.
    """
    if factor < 2:
        raise ValueError(f"decimation factor must be at least 2, got {factor}")
    out_nyquist = in_rate / factor / 2.0
    f_pass, f_stop = 0.875 * out_nyquist, 1.125 * out_nyquist
    width = (f_stop - f_pass) / in_rate
    taps = math.ceil((_STOPBAND_DB - 7.95) / (2.285 * 2.0 * math.pi * width)) + 1
    taps += 1 - taps % 2  # odd length: integer group delay
    beta = 0.1102 * (_STOPBAND_DB - 8.7)
    cutoff = (f_pass + f_stop) / 2.0 / in_rate
    n = np.arange(taps) - (taps - 1) / 2.0
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(taps, beta)
    h /= h.sum()  # unity gain at DC
    coefficients: Float32Array = h.astype(np.float32)
    return coefficients


class FirDecimator:
    """Integer-factor decimation with a short linear-phase FIR, streamed and polyphase.

    Keeps the last input samples between calls and the position of the next output sample, so
    the output after any sequence of calls equals one call on the concatenation. After ``n``
    input samples it has produced exactly ``ceil(n / factor)`` outputs: no samples are held
    back, so a chunk is complete as soon as its input has arrived.

    Only the kept outputs are computed: the taps are split into ``factor`` phases, each
    correlated with every ``factor``-th input sample, a third of the work of filtering every
    position at 48 kHz and keeping one in three.
    """

    def __init__(self, factor: int, in_rate: int) -> None:
        self.factor = factor
        self._taps = design_decimation_filter(factor, in_rate)
        # Leading zeros bring the reversed taps to a whole number of phases; the history is
        # that much longer, so every output still sees the same samples.
        reversed_taps = self._taps[::-1]
        padded = np.concatenate([np.zeros(-len(reversed_taps) % factor, np.float32), reversed_taps])
        self._phase_len = len(padded) // factor
        self._phases: Float32Array = np.ascontiguousarray(padded.reshape(-1, factor).T)
        self._history_len = len(padded) - 1
        self.delay_s = (len(self._taps) - 1) / 2.0 / in_rate
        # History then the newest block, in one buffer reused while blocks keep their length
        # (they always do while a device streams): no allocation or concatenation per block.
        self._ext: Float32Array = np.zeros(self._history_len, np.float32)
        self._skip = 0  # input samples to skip before the next output position

    @property
    def taps(self) -> Float32Array:
        """The filter coefficients (read-only copy)."""
        return self._taps.copy()

    def process(self, x: Float32Array) -> Float32Array:
        """Filter and decimate one block of any length."""
        ext = self._extend(x)
        count = 0 if self._skip >= len(x) else (len(x) - self._skip - 1) // self.factor + 1
        out: Float32Array
        if count:
            rows = count - 1 + self._phase_len
            span = ext[self._skip : self._skip + rows * self.factor]
            # Row m holds the inputs of output position m, one column per phase.
            columns = np.ascontiguousarray(span.reshape(rows, self.factor).T)
            out = np.correlate(columns[0], self._phases[0], "valid")
            for phase in range(1, self.factor):
                out += np.correlate(columns[phase], self._phases[phase], "valid")
        else:
            out = np.zeros(0, np.float32)
        self._skip = self._skip + count * self.factor - len(x)
        return out

    def _extend(self, x: Float32Array) -> Float32Array:
        """The history followed by ``x``, in the reused buffer (the history is its tail)."""
        keep = self._history_len
        ext = self._ext
        if len(ext) == keep + len(x):
            ext[:keep] = ext[len(x) :]
        else:
            history = ext[len(ext) - keep :]
            ext = self._ext = np.empty(keep + len(x), np.float32)
            ext[:keep] = history
        ext[keep:] = x
        return ext

    def reset(self) -> None:
        """Forget all history."""
        self._ext = np.zeros(self._history_len, np.float32)
        self._skip = 0


class SoxrResampler:
    """Any-ratio resampling with soxr's streaming resampler (for 44.1 kHz and other odd rates).

    soxr holds back its filter delay (10-38 ms at ``HQ``, about 20 ms on average) instead of
    emitting it as leading zeros, so output arrives that much behind input; the audio itself
    is time-aligned.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self._in_rate, self._out_rate, self._quality = in_rate, out_rate, quality
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
        self.delay_s = _soxr_holdback_s(in_rate, out_rate, quality)

    def process(self, x: Float32Array) -> Float32Array:
        """Resample one block of any length."""
        out: Float32Array = self._stream.resample_chunk(x)
        return out

    def flush(self) -> Float32Array:
        """Return the held-back tail (call once at the end of a stream)."""
        out: Float32Array = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        return out

    def reset(self) -> None:
        """Forget all history."""
        self._stream = soxr.ResampleStream(
            self._in_rate, self._out_rate, 1, dtype="float32", quality=self._quality
        )


@functools.cache
def _soxr_holdback_s(in_rate: int, out_rate: int, quality: str) -> float:
    """How long soxr keeps output back on average, fed 40 ms blocks (it varies with its
    internal block phase: 10 to 38 ms at HQ for 48 and 44.1 kHz to 16 kHz)."""
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    block = np.zeros(in_rate // 25, np.float32)
    produced, held = 0, []
    for n in range(1, 51):
        produced += len(stream.resample_chunk(block))
        held.append(n * len(block) * out_rate / in_rate - produced)
    return float(np.mean(held[10:])) / out_rate


class Passthrough:
    """The identity resampler, for input already at the output rate."""

    delay_s = 0.0

    def process(self, x: Float32Array) -> Float32Array:
        """Return ``x`` unchanged."""
        return x

    def reset(self) -> None:
        """Nothing to forget."""


def make_resampler(in_rate: int, out_rate: int, kind: str = "auto") -> Resampler:
    """Pick the resampler for a rate pair.

    ``auto`` uses :class:`FirDecimator` for integer down-ratios (48 kHz and 32 kHz to 16 kHz),
    :class:`SoxrResampler` otherwise; ``soxr`` forces soxr (steeper, ~20 ms more latency).
    """
    if kind not in ("auto", "soxr"):
        raise ValueError(f"resampler must be 'auto' or 'soxr', got {kind!r}")
    if in_rate == out_rate:
        return Passthrough()
    if kind == "auto" and in_rate % out_rate == 0:
        return FirDecimator(in_rate // out_rate, in_rate)
    return SoxrResampler(in_rate, out_rate)


class DcBlocker:
    """One-pole DC-blocking high-pass ``y[n] = x[n] - x[n-1] + r * y[n-1]``, vectorised.

    The recursion is evaluated in closed form per block,
    ``y[n] = r^n (r * y[-1] + sum_k r^-k d[k])`` with ``d = diff(x)``, which numpy computes
    with one cumulative sum instead of a Python loop. Blocks are split so that ``r^-n`` stays
    far from float64 overflow and cancellation.
    """

    _MAX_BLOCK = 1024

    def __init__(self, sample_rate: int, cutoff_hz: float = 20.0) -> None:
        self.r = math.exp(-2.0 * math.pi * cutoff_hz / sample_rate)
        k = np.arange(self._MAX_BLOCK + 1, dtype=np.float64)
        self._pow = self.r**k  # r^0 .. r^MAX
        self._inv_pow = self.r ** -k[: self._MAX_BLOCK]
        self._prev_x = 0.0
        self._prev_y = 0.0

    def process(self, x: Float32Array) -> Float32Array:
        """Filter one block of any length."""
        if len(x) <= self._MAX_BLOCK:  # the usual case: one block, no extra copy
            return self._block(x) if len(x) else x
        return np.concatenate(
            [self._block(x[i : i + self._MAX_BLOCK]) for i in range(0, len(x), self._MAX_BLOCK)]
        )

    def _block(self, x: Float32Array) -> Float32Array:
        n = len(x)
        d = np.empty(n, np.float64)
        d[0] = float(x[0]) - self._prev_x
        np.subtract(x[1:], x[:-1], out=d[1:])
        d *= self._inv_pow[:n]
        np.add.accumulate(d, out=d)  # the ufunc itself: np.cumsum is a Python wrapper round it
        d += self.r * self._prev_y
        d *= self._pow[:n]
        self._prev_x = float(x[-1])
        self._prev_y = float(d[-1])
        return d.astype(np.float32)

    def reset(self) -> None:
        """Forget all history."""
        self._prev_x = self._prev_y = 0.0


class AutoGain:
    """Slow automatic gain control for speech, applied per block with a linear gain ramp.

    The gain moves toward ``target_dbfs - level`` (clamped to ``[min_gain_db, max_gain_db]``):
    down quickly (``attack_db_per_s``), up slowly (``release_db_per_s``), and not at all while
    the block is quieter than ``gate_dbfs`` so silence is not pumped up into hiss. A peak guard
    lowers the gain at once if the block would clip. Ramping the gain across each block instead
    of stepping it avoids zipper clicks at block edges.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        target_dbfs: float = -20.0,
        max_gain_db: float = 30.0,
        min_gain_db: float = -12.0,
        attack_db_per_s: float = 40.0,
        release_db_per_s: float = 6.0,
        gate_dbfs: float = -55.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.target_dbfs = target_dbfs
        self.max_gain_db = max_gain_db
        self.min_gain_db = min_gain_db
        self.attack_db_per_s = attack_db_per_s
        self.release_db_per_s = release_db_per_s
        self.gate_dbfs = gate_dbfs
        self.gain_db = 0.0

    def process(self, x: Float32Array) -> Float32Array:
        """Apply the gain to one block and update it for the next."""
        if len(x) == 0:
            return x
        start_db = self.gain_db
        level = level_dbfs(x)
        seconds = len(x) / self.sample_rate
        if level > self.gate_dbfs:
            want = min(max(self.target_dbfs - level, self.min_gain_db), self.max_gain_db)
            step = want - start_db
            limit = (self.release_db_per_s if step > 0 else self.attack_db_per_s) * seconds
            self.gain_db = start_db + max(-limit, min(limit, step))
        peak = float(np.max(np.abs(x)))
        if peak > 0.0:  # never ramp into clipping
            self.gain_db = min(self.gain_db, 20.0 * math.log10(0.98 / peak))
            start_db = min(start_db, 20.0 * math.log10(0.98 / peak))
        ramp = np.linspace(
            10.0 ** (start_db / 20.0), 10.0 ** (self.gain_db / 20.0), len(x), dtype=np.float32
        )
        out: Float32Array = x * ramp
        return out

    def reset(self) -> None:
        """Return to unity gain."""
        self.gain_db = 0.0


def level_dbfs(x: Float32Array) -> float:
    """RMS level of a float block in dB relative to full scale (a full-scale sine is -3 dBFS)."""
    if len(x) == 0:
        return -200.0
    power = float(np.dot(x, x)) / len(x)
    return 10.0 * math.log10(power) if power > 1e-20 else -200.0
