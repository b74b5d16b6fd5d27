"""microWakeWord's frontend and models, run window by window with their buffers made once.

``pymicro-wakeword`` loads a model and its TFLite runtime, and ``pymicro-features`` makes the
features; this module runs them. The library's own loop (``MicroWakeWordFeatures`` and
``MicroWakeWord.process_streaming_prob``) makes an array per 10 ms window and a dozen small
ones per inference, and averages its sliding window with ``statistics.mean``, whose exact
fractions alone cost more than the network: on a device listening all day, that glue was most
of the detector's CPU. `WakeModel` does the library's arithmetic (the same quantisation, the
same dequantised levels) in buffers made once; the tests hold its probabilities beside the
library's on the recordings.

Imported only when a detector is made, with the runtime it needs.
"""

from __future__ import annotations

import ctypes
import math
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pymicro_features import MicroFrontend
from pymicro_wakeword import MicroWakeWord

SAMPLE_BYTES = 2
WINDOW_BYTES = 160 * SAMPLE_BYTES
"""The frontend steps 10 ms (160 samples of 16 kHz S16) per window."""
FEATURES = 40
"""Features per window the frontend makes: a model must take windows of this many."""


class WakeModelError(ValueError):
    """A model whose tensors are not those of a microWakeWord streaming model."""


class Frontend:
    """The feature frontend: 16 kHz mono S16LE in, one list of features per 10 ms out."""

    def __init__(self) -> None:
        self._frontend = MicroFrontend()
        self._pending = b""

    def windows(self, pcm: bytes) -> Iterator[list[float]]:
        """The feature windows ``pcm`` completes, in order; a partial window waits."""
        pending = self._pending + pcm if self._pending else pcm
        at = 0
        try:
            while at + WINDOW_BYTES <= len(pending):
                result = self._frontend.process_samples(pending[at : at + WINDOW_BYTES])
                # Never stand still, whatever the frontend says it read.
                at += result.samples_read * SAMPLE_BYTES or WINDOW_BYTES
                if result.features:
                    yield result.features
        finally:
            self._pending = pending[at:]

    def reset(self) -> None:
        self._frontend.reset()
        self._pending = b""


class WakeModel:
    """One streaming model: feature windows in, the mean probability of its sliding window
    out (0.0 until it has heard a window's worth), as ``process_streaming_prob`` gives it."""

    def __init__(self, config: Path) -> None:
        self._model = MicroWakeWord.from_config(config)
        self.cutoff = float(self._model.probability_cutoff)
        self._recent: deque[float] = deque(maxlen=self._model.sliding_window_size)
        self._bind()

    def _bind(self) -> None:
        """Buffers and pointers for the model's current interpreter (a reset makes another)."""
        model, lib = self._model, self._model.lib
        input_bytes = lib.TfLiteTensorByteSize(model.input_tensor)
        stride = model.stride
        itemsize = np.dtype(model.input_dtype).itemsize
        if stride < 1 or input_bytes % (stride * itemsize):
            raise WakeModelError(f"{model.tflite_model}: input of {input_bytes} bytes is not "
                                 f"{stride} windows")
        if input_bytes // itemsize // stride != FEATURES:
            raise WakeModelError(f"{model.tflite_model}: takes windows of "
                                 f"{input_bytes // itemsize // stride} features, the frontend "
                                 f"makes {FEATURES}")
        if lib.TfLiteTensorByteSize(model.output_tensor) != 1:
            raise WakeModelError(f"{model.tflite_model}: output is not one probability")
        self._rows = np.zeros((stride, input_bytes // itemsize // stride), np.float64)
        self._scaled = np.zeros(self._rows.size, np.float64)
        self._input = np.zeros(self._rows.size, model.input_dtype)
        self._input_at = self._input.ctypes.data
        self._output = ctypes.c_uint8()
        self._output_at = ctypes.addressof(self._output)
        # Every output byte's probability, dequantised as the library does it (float32).
        levels = np.arange(256, dtype=np.uint8).view(model.output_dtype).astype(np.float32)
        self._levels: list[float] = ((levels - model.output_zero_point)
                                     * model.output_scale).tolist()
        self._filled = 0

    @property
    def features(self) -> int:
        """Features per window the model takes."""
        return int(self._rows.shape[1])

    def probability(self, window: Sequence[float]) -> float:
        """Hear one window; the sliding window's mean probability."""
        rows = self._rows
        rows[self._filled] = window
        self._filled += 1
        if self._filled < len(rows):
            return 0.0
        self._filled = 0
        model, lib, scaled = self._model, self._model.lib, self._scaled
        np.divide(rows.reshape(-1), model.input_scale, out=scaled)
        scaled += model.input_zero_point
        np.rint(scaled, out=scaled)
        np.copyto(self._input, scaled, casting="unsafe")
        lib.TfLiteTensorCopyFromBuffer(model.input_tensor, self._input_at, self._input.nbytes)
        lib.TfLiteInterpreterInvoke(model.interpreter)
        lib.TfLiteTensorCopyToBuffer(model.output_tensor, self._output_at, 1)
        recent = self._recent
        recent.append(self._levels[self._output.value])
        if len(recent) < (recent.maxlen or 0):
            return 0.0
        return math.fsum(recent) / len(recent)

    def reset(self) -> None:
        """Forget what was heard: the library reloads the interpreter for its state."""
        self._model.reset()
        self._recent.clear()
        self._bind()

    def close(self) -> None:
        self._model.close()
