"""Small numpy image operations for sources that cannot deliver the requested size.

Cameras that can be configured at the requested size never come through here: resizing is
the expensive part of a frame, so it is the fallback, not the path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.media.camera.frames import RgbFrame, YuvFrame


def fit_rgb(image: RgbFrame, width: int, height: int) -> RgbFrame:
    """Scale ``image`` to exactly ``width`` x ``height``, cropping the centre to keep its shape.

    Downscaling averages integer blocks first (no aliasing from the bulk of the reduction),
    then picks the nearest pixel for the remaining fraction. The result is a new array; a
    source fitting a frame a second uses :class:`RgbFitter` instead.
    """
    return RgbFitter(width, height).fit(image)


class RgbFitter:
    """:func:`fit_rgb` into arrays kept from one frame to the next.

    A frame's megabytes allocated afresh each time go back to the kernel when they are freed
    (blocks over the daemon's 128 KiB mmap threshold are mappings of their own, and a thread's
    malloc arena trims what it frees), so every frame would pay a page fault per 4 KiB
    touched: about 1,600 for a 1280x720 JPEG fitted to 768x576, a third of its CPU. The result
    of :meth:`fit` is the fitter's own array, valid until the next call; it and the decoded
    image are all a frame keeps resident.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._arrays: dict[str, NDArray[Any]] = {}

    def fit(self, image: RgbFrame) -> RgbFrame:
        """``image`` fitted to the size; ``image`` itself when it already has it."""
        width, height = self.width, self.height
        src_h, src_w = image.shape[:2]
        if (src_w, src_h) == (width, height):
            return image
        x0 = y0 = 0
        if src_w * height > src_h * width:  # wider than the target: trim the sides
            crop_w = max(1, round(src_h * width / height))
            x0, src_w = (src_w - crop_w) // 2, crop_w
        elif src_w * height < src_h * width:  # taller: trim top and bottom
            crop_h = max(1, round(src_w * height / width))
            y0, src_h = (src_h - crop_h) // 2, crop_h
        factor = min(src_h // height, src_w // width)
        if factor >= 2:
            image = self._block_mean(image[y0 : y0 + src_h, x0 : x0 + src_w], factor)
            x0 = y0 = 0
            src_h, src_w = image.shape[:2]
        # The crop is folded into the indices rather than sliced: take() copies an input that
        # is not contiguous, and a cropped view is not.
        rows = y0 + ((2 * np.arange(height) + 1) * src_h) // (2 * height)
        cols = x0 + ((2 * np.arange(width) + 1) * src_w) // (2 * width)
        # Row by row, each row's pixels taken straight into the result: twice as fast as one
        # fancy index over both axes, and, unlike a take of the rows and then of the columns,
        # no intermediate the size of the rows kept (2 MB at 1280x720). "clip" because the
        # indices are in range, and take buffers its output in "raise" mode.
        fitted = self._array("fitted", (height, width, 3), np.uint8)
        for y, row in enumerate(rows.tolist()):
            image[row].take(cols, axis=0, out=fitted[y], mode="clip")
        return fitted

    def _block_mean(self, image: RgbFrame, factor: int) -> RgbFrame:
        rows = image.shape[0] // factor
        cols = image.shape[1] // factor
        blocks = image[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor, -1)
        mean = self._array("mean", (rows, cols, blocks.shape[-1]), np.float32)
        blocks.mean(axis=(1, 3), dtype=np.float32, out=mean)
        np.rint(mean, out=mean)
        averaged = self._array("averaged", mean.shape, np.uint8)
        np.copyto(averaged, mean, casting="unsafe")
        return averaged

    def _array(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> NDArray[Any]:
        """The array kept under ``name``, made anew only when the shape changes."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape:
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array


def yuyv_to_i420(data: bytes | memoryview, width: int, height: int, stride: int) -> YuvFrame:
    """Repack packed YUYV 4:2:2 (the uncompressed format of every UVC webcam) into I420.

    Only slicing and copies: chroma keeps every other row, which is what 4:2:0 means.
    """
    packed = np.frombuffer(data, dtype=np.uint8, count=stride * height).reshape(height, stride)
    packed = packed[:, : width * 2]
    return YuvFrame(
        y=np.ascontiguousarray(packed[:, 0::2]),
        u=np.ascontiguousarray(packed[0::2, 1::4]),
        v=np.ascontiguousarray(packed[0::2, 3::4]),
    )


def luma_of_rgb(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """BT.601 luma of an RGB array (any leading shape), as float32."""
    rgb = image.astype(np.float32)
    return np.asarray(
        rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114, dtype=np.float32
    )
