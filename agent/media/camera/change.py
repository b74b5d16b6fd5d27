"""Decide whether a frame changed enough since the last one sent to be worth its tokens.

The comparison runs on a 32x24 luma thumbnail: each cell averages a 4x4 sample grid, which
evens out sensor noise, and the whole thing touches about 12k pixels whatever the frame size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.media.camera.frames import Frame, JpegFrame, YuvFrame
from agent.media.camera.image import luma_of_rgb
from agent.media.camera.jpeg import decode_jpeg

THUMB_WIDTH = 32
THUMB_HEIGHT = 24
_SAMPLES = 4  # samples per cell along each axis


def luma_thumbnail(frame: Frame) -> NDArray[np.float32]:
    """Return the mean luma (0..255) of each cell of a 32x24 grid over ``frame``."""
    sample_h, sample_w = THUMB_HEIGHT * _SAMPLES, THUMB_WIDTH * _SAMPLES
    if isinstance(frame, JpegFrame):
        # libjpeg-turbo decodes at 1/2, 1/4 or 1/8 scale straight from the DCT: cheap.
        plane = decode_jpeg(frame.data, sample_w, sample_h, gray=True)
        samples = _sample_grid(plane, sample_h, sample_w).astype(np.float32)
    elif isinstance(frame, YuvFrame):
        samples = _sample_grid(frame.y, sample_h, sample_w).astype(np.float32)
    else:
        samples = luma_of_rgb(_sample_grid(frame, sample_h, sample_w))
    cells = samples.reshape(THUMB_HEIGHT, _SAMPLES, THUMB_WIDTH, _SAMPLES)
    return np.asarray(cells.mean(axis=(1, 3)), dtype=np.float32)


def _sample_grid(image: NDArray[np.uint8], rows: int, cols: int) -> NDArray[np.uint8]:
    height, width = image.shape[:2]
    row_index = ((2 * np.arange(rows) + 1) * height) // (2 * rows)
    col_index = ((2 * np.arange(cols) + 1) * width) // (2 * cols)
    sampled: NDArray[np.uint8] = image[row_index[:, None], col_index]
    return sampled


def thumbnail_difference(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Mean absolute luma difference between two thumbnails, in levels (0..255)."""
    return float(np.mean(np.abs(a - b)))


class ChangeDetector:
    """Remembers the thumbnail of the last frame sent and judges the next one against it.

    A frame is sent when it differs by at least ``threshold`` luma levels on average, or when
    ``max_interval_s`` has passed since the last send, so a still scene is refreshed anyway.
    Comparing with the last *sent* frame (not the last captured one) means a slow drift
    still adds up to a send.
    """

    def __init__(self, threshold: float, max_interval_s: float) -> None:
        self.threshold = threshold
        self.max_interval_s = max_interval_s
        self._last_thumb: NDArray[np.float32] | None = None
        self._last_sent_at = 0.0
        self.last_difference: float | None = None

    def should_send(self, thumb: NDArray[np.float32], now: float) -> bool:
        """Return whether a frame with ``thumb`` captured at ``now`` (seconds) goes out."""
        if self._last_thumb is None:
            self.last_difference = None
            return True
        self.last_difference = thumbnail_difference(thumb, self._last_thumb)
        if now - self._last_sent_at >= self.max_interval_s:
            return True
        return self.last_difference >= self.threshold

    def mark_sent(self, thumb: NDArray[np.float32], now: float) -> None:
        """Record that the frame with ``thumb`` was sent at ``now``."""
        self._last_thumb = thumb
        self._last_sent_at = now

    def reset(self) -> None:
        """Forget the last frame sent, so the next one goes out (after a pause or a fault)."""
        self._last_thumb = None
        self.last_difference = None
