"""The Raspberry Pi camera through Picamera2 (libcamera).

picamera2 and its libcamera bindings come only from Raspberry Pi OS's apt archive
(``python3-picamera2``), so the module is imported inside ``open()``: the agent runs, and
says clearly what is missing, wherever it is not installed.

The ISP scales the sensor image to the requested size and writes YUV420, so a frame costs
one JPEG encode of the final size: no full-resolution copy, no resize, no colour conversion.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from agent.media.camera.frames import CameraError, CameraUnavailable, Frame, JpegFrame, YuvFrame

log = structlog.get_logger(__name__)

PICAMERA2_MISSING = (
    "picamera2 is not installed: apt install python3-picamera2 --no-install-recommends "
    "(Raspberry Pi OS only), and create the venv with --system-site-packages"
)

AF_MODE_CONTINUOUS = 2  # libcamera's controls.AfModeEnum.Continuous


def import_picamera2_class() -> Callable[..., Any]:
    """Return the ``Picamera2`` class, or raise ``CameraUnavailable`` saying how to install it.

    Off a Pi, ``pip install picamera2`` installs but fails on import (no ``libcamera``
    module), which is reported the same way.
    """
    try:
        module = importlib.import_module("picamera2")
    except ImportError as exc:
        raise CameraUnavailable(f"{PICAMERA2_MISSING} ({exc})") from exc
    camera_class: Callable[..., Any] = module.Picamera2
    return camera_class


class Picamera2Source:
    """Frames from a Pi camera (Camera Module 2, 3, HQ, ...), configured at the final size.

    Args:
        camera_num: libcamera's camera index (``edge-agent devices`` lists them).
        frame_rate: the sensor's frame rate while streaming. At 1 FPS of output a low rate
            saves ISP and CPU work per second; a capture waits at most one frame period.
        encode_in_picamera2: let picamera2 encode (``capture_file(..., format="jpeg")``),
            which is zero-copy on picamera2 >= 0.3.23 (it hands the mapped YUV buffer to
            simplejpeg). Off by default: older picamera2 converts through Pillow there, and
            ``capture_array`` costs only one copy of a ~0.7 MB buffer.
        quality: JPEG quality when ``encode_in_picamera2`` is on.
        autofocus: run continuous autofocus on cameras that have it (Camera Module 3), so
            the lens follows the scene between frames.
        picamera2_class: a class with Picamera2's interface; default imports the real one.
    """

    def __init__(
        self,
        camera_num: int = 0,
        *,
        frame_rate: float = 10.0,
        encode_in_picamera2: bool = False,
        quality: int = 80,
        autofocus: bool = True,
        picamera2_class: Callable[..., Any] | None = None,
    ) -> None:
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        self.camera_num = camera_num
        self.frame_rate = frame_rate
        self.encode_in_picamera2 = encode_in_picamera2
        self.quality = quality
        self.autofocus = autofocus
        self._camera_class = picamera2_class
        self._camera: Any = None
        self._size = (0, 0)

    def open(self, width: int, height: int) -> None:
        camera_class = self._camera_class or import_picamera2_class()
        try:
            camera = camera_class(self.camera_num)
        except (RuntimeError, IndexError, OSError) as exc:
            # Picamera2 raises RuntimeError for "no cameras" and for a camera another
            # process holds, IndexError for a camera number that does not exist.
            raise CameraUnavailable(
                f"cannot open Pi camera {self.camera_num}: {exc or type(exc).__name__}"
            ) from exc
        try:
            frame_us = round(1_000_000 / self.frame_rate)
            controls: dict[str, Any] = {"FrameDurationLimits": (frame_us, frame_us)}
            if self.autofocus and "AfMode" in (getattr(camera, "camera_controls", None) or {}):
                controls["AfMode"] = AF_MODE_CONTINUOUS
            config = camera.create_still_configuration(
                main={"size": (width, height), "format": "YUV420"},
                # No raw stream: it would hold a sensor-sized buffer we never read.
                raw=None,
                buffer_count=2,
                controls=controls,
            )
            camera.configure(config)
            self._size = _configured_size(camera, width, height)
            if self._size != (width, height):
                log.warning(
                    "camera.size_adjusted",
                    requested=f"{width}x{height}",
                    configured=f"{self._size[0]}x{self._size[1]}",
                )
            if self.encode_in_picamera2:
                camera.options["quality"] = self.quality
            camera.start()
        except Exception as exc:
            _close_quietly(camera)
            raise CameraUnavailable(f"cannot configure Pi camera {self.camera_num}: {exc}") from exc
        self._camera = camera

    def capture(self) -> Frame:
        camera = self._camera
        if camera is None:
            raise CameraError("Pi camera is not open")
        try:
            if self.encode_in_picamera2:
                buffer = io.BytesIO()
                camera.capture_file(buffer, format="jpeg")
                return JpegFrame.from_bytes(buffer.getvalue())
            array = camera.capture_array("main")
        except CameraError:
            raise
        except Exception as exc:
            raise CameraError(f"Pi camera capture failed: {exc}") from exc
        return yuv420_planes(np.asarray(array, dtype=np.uint8), *self._size)

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            _close_quietly(camera)


def _configured_size(camera: Any, width: int, height: int) -> tuple[int, int]:
    """Read back the size libcamera settled on (``configure`` may align it)."""
    main = (getattr(camera, "camera_config", None) or {}).get("main") or {}
    size = main.get("size", (width, height))
    return int(size[0]), int(size[1])


def yuv420_planes(array: NDArray[np.uint8], width: int, height: int) -> YuvFrame:
    """Split picamera2's YUV420 array into I420 plane views without copying.

    picamera2 returns YUV420 as ``(height * 3 / 2, stride)``: Y rows, then U and V rows of
    half the stride each, packed two to a row.
    """
    rows, stride = array.shape[:2] if array.ndim == 2 else (0, 0)
    if rows != height * 3 // 2 or stride < width:
        raise CameraError(
            f"Pi camera sent a {array.shape} array, expected YUV420 of {width}x{height}"
        )
    chroma = array.reshape(rows * 2, stride // 2)
    return YuvFrame(
        y=array[:height, :width],
        u=chroma[2 * height : 2 * height + height // 2, : width // 2],
        v=chroma[2 * height + height // 2 :, : width // 2],
    )


def _close_quietly(camera: Any) -> None:
    for step in ("stop", "close"):
        try:
            getattr(camera, step)()
        except Exception as exc:  # a half-dead camera must not stop the rest from closing
            log.warning("camera.close_failed", step=step, error=str(exc))


def picamera2_camera_info() -> list[dict[str, Any]]:
    """Return ``Picamera2.global_camera_info()``, or an empty list where it cannot run."""
    try:
        camera_class: Any = import_picamera2_class()
        return list(camera_class.global_camera_info())
    except Exception as exc:  # no picamera2, or libcamera failing: nothing to list
        log.debug("camera.picamera2_unavailable", error=str(exc))
        return []
