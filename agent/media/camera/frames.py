"""Frame types, the frame-source interface and the errors of the camera layer.

A source hands over whichever representation is cheapest for it to produce, so that no
source pays for a conversion the encoder does not need:

* ``RgbFrame``: an ``(H, W, 3)`` uint8 RGB array (test pattern, image folder, resized USB
  frames).
* ``YuvFrame``: I420 planes, Y at full size and U, V at half size in each direction
  (Picamera2's YUV420 stream, USB cameras that send YUYV). libjpeg-turbo encodes these
  without any colour conversion.
* ``JpegFrame``: JPEG bytes the camera already compressed (USB cameras in MJPEG mode at the
  requested size). They go out as they are: no decode, no encode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
import simplejpeg
from numpy.typing import NDArray

RgbFrame: TypeAlias = NDArray[np.uint8]
"""An ``(H, W, 3)`` uint8 array in RGB order."""


@dataclass(frozen=True, slots=True)
class YuvFrame:
    """An I420 (YUV 4:2:0 planar) image; the planes may be strided views into a buffer."""

    y: NDArray[np.uint8]
    u: NDArray[np.uint8]
    v: NDArray[np.uint8]

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, slots=True)
class JpegFrame:
    """An image the camera has already compressed to JPEG."""

    data: bytes
    width: int
    height: int

    @classmethod
    def from_bytes(cls, data: bytes) -> JpegFrame:
        """Wrap ``data``, reading the size from its JPEG header.

        Raises:
            CameraError: ``data`` is not a JPEG image (a torn or corrupt camera frame).
        """
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError as exc:
            raise CameraError(f"camera frame is not a valid JPEG: {exc}") from exc
        return cls(data=bytes(data), width=int(width), height=int(height))


Frame: TypeAlias = RgbFrame | YuvFrame | JpegFrame


def frame_size(frame: Frame) -> tuple[int, int]:
    """Return ``(width, height)`` of any frame representation."""
    if isinstance(frame, YuvFrame | JpegFrame):
        return frame.width, frame.height
    return int(frame.shape[1]), int(frame.shape[0])


@runtime_checkable
class FrameSource(Protocol):
    """Where frames come from. Every method is blocking and runs in the camera thread.

    ``open`` is called again after ``close`` when the stream recovers from a fault, so an
    implementation must support open -> close -> open.
    """

    def open(self, width: int, height: int) -> None:
        """Acquire the device and configure it to deliver frames of this size."""

    def capture(self) -> Frame:
        """Return the newest frame. Raise ``CameraError`` (or ``OSError``) on a fault.

        The frame may share memory with the next one the source returns (sources reuse their
        arrays): use it before calling ``capture`` again.
        """

    def close(self) -> None:
        """Release the device. Must be safe to call when not open."""


class CameraError(Exception):
    """A camera fault: the stream logs it, closes the source and retries with backoff."""


class CameraUnavailable(CameraError):
    """The camera is missing, busy or not usable (missing module, device, permission)."""
