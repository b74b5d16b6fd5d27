"""The camera layer: frame sources, JPEG encoding and 1 FPS pacing for the Live API.

Typical use, from the conversation loop::

    stream = CameraStream(make_frame_source("picamera2"), interval_s=1.0)
    async with contextlib.aclosing(stream.frames()) as frames:
        async for jpeg in frames:
            await session.send_video_realtime(GenerativeContentBlob("image/jpeg", jpeg))

``stream.pause()`` / ``stream.resume()`` stop and restart capture while the session is not
live. The pieces live in ``camera_*`` modules; this module is their public face.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.media.camera_change import ChangeDetector, luma_thumbnail
from agent.media.camera_frames import (
    CameraError,
    CameraUnavailable,
    Frame,
    FrameSource,
    JpegFrame,
    RgbFrame,
    YuvFrame,
    frame_size,
)
from agent.media.camera_jpeg import JpegEncoder
from agent.media.camera_stream import DEFAULT_HEIGHT, DEFAULT_WIDTH, CameraStream

if TYPE_CHECKING:
    from agent.media.camera_picamera2 import Picamera2Source
    from agent.media.camera_sim import ImageFolderSource, TestPatternSource
    from agent.media.camera_v4l2 import V4L2Source

# Each source lives in its own module, imported when first used: a device runs one of them,
# and the others' code (ctypes layouts, test patterns) would only take memory.
_SOURCE_MODULES = {
    "Picamera2Source": "agent.media.camera_picamera2",
    "V4L2Source": "agent.media.camera_v4l2",
    "TestPatternSource": "agent.media.camera_sim",
    "ImageFolderSource": "agent.media.camera_sim",
}
_SOURCE_CLASSES = {
    "picamera2": "Picamera2Source",
    "v4l2": "V4L2Source",
    "test-pattern": "TestPatternSource",
    "image-folder": "ImageFolderSource",
}

__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "SOURCE_KINDS",
    "CameraError",
    "CameraInfo",
    "CameraStream",
    "CameraUnavailable",
    "ChangeDetector",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "JpegEncoder",
    "JpegFrame",
    "Picamera2Source",
    "RgbFrame",
    "TestPatternSource",
    "V4L2Source",
    "YuvFrame",
    "frame_size",
    "list_cameras",
    "luma_thumbnail",
    "make_frame_source",
]

SOURCE_KINDS = ("picamera2", "v4l2", "test-pattern", "image-folder")


def make_frame_source(kind: str, **options: Any) -> FrameSource:
    """Build the frame source named by the config's ``camera.source``.

    Options by kind:
        picamera2: ``camera_num`` (0), ``frame_rate`` (10.0), ``encode_in_picamera2``
            (False), ``quality`` (80), ``autofocus`` (True).
        v4l2: ``device`` ("/dev/video0"), ``frame_timeout_s`` (2.0).
        test-pattern: none.
        image-folder: ``path`` (required): a folder of JPEG/PNG files, or one file.

    Raises:
        ValueError: an unknown kind, or an option that kind does not take (the message
            names both, for the config error).
    """
    class_name = _SOURCE_CLASSES.get(kind)
    if class_name is None:
        raise ValueError(
            f"unknown camera source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}"
        )
    allowed = _ALLOWED_OPTIONS[kind]
    unknown = sorted(set(options) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise ValueError(
            f"camera source {kind!r} does not take {', '.join(unknown)} (it takes: {expected})"
        )
    if kind == "image-folder" and "path" not in options:
        raise ValueError("camera source 'image-folder' needs a path")
    source: FrameSource = _source_class(class_name)(**options)
    return source


def _source_class(name: str) -> Any:
    return getattr(importlib.import_module(_SOURCE_MODULES[name]), name)


def __getattr__(name: str) -> Any:
    """The source classes, imported from their modules on first use."""
    if name not in _SOURCE_MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _source_class(name)


_ALLOWED_OPTIONS: dict[str, frozenset[str]] = {
    "picamera2": frozenset(
        {"camera_num", "frame_rate", "encode_in_picamera2", "quality", "autofocus"}
    ),
    "v4l2": frozenset({"device", "frame_timeout_s"}),
    "test-pattern": frozenset(),
    "image-folder": frozenset({"path"}),
}


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """One camera found on this machine, as ``edge-agent devices`` prints it.

    ``kind`` and ``id`` are what goes in the config: ``source = kind`` and
    ``camera_num = id`` (picamera2) or ``device = id`` (v4l2).
    """

    kind: str
    id: str
    name: str
    detail: str = ""


def list_cameras(
    dev_dir: str = "/dev", sys_dir: str = "/sys/class/video4linux"
) -> list[CameraInfo]:
    """List Pi cameras (through libcamera, when picamera2 is installed) and USB webcams."""
    from agent.media.camera_picamera2 import picamera2_camera_info
    from agent.media.camera_v4l2 import list_v4l2_capture_devices

    cameras: list[CameraInfo] = []
    for number, info in enumerate(picamera2_camera_info()):
        detail = ", ".join(
            f"{key.lower()} {info[key]}" for key in ("Location", "Rotation") if key in info
        )
        cameras.append(
            CameraInfo(
                kind="picamera2",
                id=str(info.get("Num", number)),
                name=str(info.get("Model", "unknown")),
                detail=f"{info.get('Id', '')} {detail}".strip(),
            )
        )
    for node in list_v4l2_capture_devices(dev_dir, sys_dir):
        cameras.append(
            CameraInfo(
                kind="v4l2",
                id=node.path,
                name=node.name,
                detail=" ".join(part for part in (node.driver, node.bus_info) if part),
            )
        )
    return cameras
