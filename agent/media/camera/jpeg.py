"""JPEG in and out with libjpeg-turbo through simplejpeg (the codec picamera2 itself uses)."""

from __future__ import annotations

import numpy as np
import simplejpeg
from numpy.typing import NDArray

from agent.media.camera.frames import CameraError, Frame, JpegFrame, YuvFrame


class JpegEncoder:
    """Turn any ``Frame`` into JPEG bytes at a fixed quality, chroma subsampled 4:2:0.

    4:2:0 matters: simplejpeg's default (4:4:4) is slower than Pillow and makes larger files
    for no visible gain at the Live API's frame size. YUV planes are encoded without a colour
    conversion; camera-made JPEG passes through untouched (its quality is the camera's).
    """

    def __init__(self, quality: int = 80) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be between 1 and 100, got {quality}")
        self.quality = quality

    def encode(self, frame: Frame) -> bytes:
        """Encode ``frame``; raises ``ValueError`` for an array that is not (H, W, 3) uint8."""
        if isinstance(frame, JpegFrame):
            return frame.data
        if isinstance(frame, YuvFrame):
            return bytes(
                simplejpeg.encode_jpeg_yuv_planes(
                    _contiguous_rows(frame.y),
                    _contiguous_rows(frame.u),
                    _contiguous_rows(frame.v),
                    quality=self.quality,
                )
            )
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}"
            )
        return bytes(
            simplejpeg.encode_jpeg(
                _contiguous_rows(frame),
                quality=self.quality,
                colorspace="RGB",
                colorsubsampling="420",
            )
        )


def _contiguous_rows(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """libjpeg-turbo accepts a row stride but needs each row packed; copy only if it is not."""
    if array.strides[-1] != array.itemsize or (
        array.ndim == 3 and array.strides[-2] != array.shape[-1] * array.itemsize
    ):
        return np.ascontiguousarray(array)
    return array


def decode_jpeg(
    data: bytes, min_width: int, min_height: int, *, gray: bool = False, what: str = "camera frame"
) -> NDArray[np.uint8]:
    """Decode ``data`` at the smallest DCT scale (1/1 to 1/8) that still covers the size asked.

    Scaling inside the decoder is what makes a large JPEG cheap to look at small. Returns an
    ``(H, W, 3)`` RGB array, or an ``(H, W)`` luma plane with ``gray``; the image is at least
    ``min_width`` x ``min_height`` when the JPEG is, so the caller fits it to the exact size.

    Raises:
        CameraError: ``data`` is not a JPEG image; the message calls it ``what``.
    """
    try:
        image = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if gray else "RGB",
            fastdct=True,
            min_height=min_height,
            min_width=min_width,
        )
    except ValueError as exc:
        raise CameraError(f"{what} is not a valid JPEG: {exc}") from exc
    return np.asarray(image[..., 0] if gray else image, dtype=np.uint8)
