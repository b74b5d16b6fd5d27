"""JPEG in and out with libjpeg-turbo through simplejpeg (the codec picamera2 itself uses)."""

from __future__ import annotations

import numpy as np
import simplejpeg
from numpy.typing import NDArray

from agent.media.camera.frames import CameraError, Frame, JpegFrame, RgbFrame, YuvFrame
from agent.media.camera.image import RgbFitter


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
    data: bytes,
    min_width: int,
    min_height: int,
    *,
    gray: bool = False,
    what: str = "camera frame",
    buffer: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Decode ``data`` at the smallest of the scales 1/8, 1/4, 1/2 and 1/1 that still covers the
    size asked.

    Scaling inside the decoder is what makes a large JPEG cheap to look at small. Only those
    four scales have SIMD inverse transforms in libjpeg-turbo: the others (3/8, 7/8, ...) run
    plain C and cost more than a whole decode at 1/1 (1280x720 at 7/8: 8 ms against 5 ms).
    Returns an ``(H, W, 3)`` RGB array, or an ``(H, W)`` luma plane with ``gray``; the image is
    at least ``min_width`` x ``min_height`` when the JPEG is, so the caller fits it to the
    exact size. With ``buffer`` (flat uint8) the image is decoded into it when it is large
    enough, and into a new array when not.

    Raises:
        CameraError: ``data`` is not a JPEG image; the message calls it ``what``.
    """
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        scaled_w, scaled_h = _power_of_two_scale(width, height, min_width, min_height)
        needed = scaled_w * scaled_h * (1 if gray else 3)
        image = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if gray else "RGB",
            fastdct=True,
            # Smooth chroma upsampling is wasted on a frame whose chroma is halved again when
            # it is encoded (4:2:0).
            fastupsample=True,
            min_height=scaled_h,
            min_width=scaled_w,
            buffer=buffer if buffer is not None and buffer.size >= needed else None,
        )
    except ValueError as exc:
        raise CameraError(f"{what} is not a valid JPEG: {exc}") from exc
    return np.asarray(image[..., 0] if gray else image, dtype=np.uint8)


class JpegFitter:
    """JPEG bytes to an RGB frame of exactly one size, decoded and fitted in arrays kept from
    one frame to the next (see :class:`~agent.media.camera.image.RgbFitter` for why).

    The frame :meth:`fit` returns is the fitter's own, valid until the next call.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._decoded: NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._fitter = RgbFitter(width, height)

    def fit(self, data: bytes, what: str = "camera frame") -> RgbFrame:
        """Decode ``data`` and fit it; raises ``CameraError`` when it is not a JPEG."""
        image = decode_jpeg(data, self.width, self.height, what=what, buffer=self._decoded)
        if not np.shares_memory(image, self._decoded):  # larger than the last: keep its array
            self._decoded = image.reshape(-1)
        return self._fitter.fit(image)


def _power_of_two_scale(
    width: int, height: int, min_width: int, min_height: int
) -> tuple[int, int]:
    """The size of ``width`` x ``height`` decoded at the smallest of 1/8, 1/4, 1/2, 1/1 that is
    at least ``min_width`` x ``min_height`` (libjpeg rounds a scaled side up)."""
    for denominator in (8, 4, 2):
        scaled_w = -(-width // denominator)
        scaled_h = -(-height // denominator)
        if scaled_w >= min_width and scaled_h >= min_height:
            return scaled_w, scaled_h
    return width, height
