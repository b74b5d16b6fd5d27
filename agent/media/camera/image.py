"""Small numpy image operations for sources that cannot deliver the requested size.

Cameras that can be configured at the requested size never come through here: resizing is
the expensive part of a frame, so it is the fallback, not the path.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.media.camera.frames import RgbFrame, YuvFrame


def fit_rgb(image: RgbFrame, width: int, height: int) -> RgbFrame:
    """Scale ``image`` to exactly ``width`` x ``height``, cropping the centre to keep its shape.

    Downscaling averages integer blocks first (no aliasing from the bulk of the reduction),
    then picks the nearest pixel for the remaining fraction.
    """
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    if src_w * height > src_h * width:  # wider than the target: trim the sides
        crop_w = max(1, round(src_h * width / height))
        x0 = (src_w - crop_w) // 2
        image = image[:, x0 : x0 + crop_w]
    elif src_w * height < src_h * width:  # taller: trim top and bottom
        crop_h = max(1, round(src_w * height / width))
        y0 = (src_h - crop_h) // 2
        image = image[y0 : y0 + crop_h]
    src_h, src_w = image.shape[:2]
    factor = min(src_h // height, src_w // width)
    if factor >= 2:
        image = _block_mean(image, factor)
        src_h, src_w = image.shape[:2]
    rows = ((2 * np.arange(height) + 1) * src_h) // (2 * height)
    cols = ((2 * np.arange(width) + 1) * src_w) // (2 * width)
    # Two one-axis takes: four times faster than one fancy index over both axes.
    return np.asarray(image.take(rows, axis=0).take(cols, axis=1), dtype=np.uint8)


def _block_mean(image: RgbFrame, factor: int) -> RgbFrame:
    rows = image.shape[0] // factor
    cols = image.shape[1] // factor
    blocks = image[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor, -1)
    mean = blocks.mean(axis=(1, 3), dtype=np.float32)
    return np.asarray(np.rint(mean), dtype=np.uint8)


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
