"""The camera: frame sources, JPEG encoding and 1 FPS pacing for the Live API.

Typical use, from the conversation loop::

    stream = CameraStream(make_frame_source("picamera2"), interval_s=1.0)
    async with contextlib.aclosing(stream.frames()) as frames:
        async for jpeg in frames:
            await session.send_video_realtime(GenerativeContentBlob("image/jpeg", jpeg))

``stream.pause()`` / ``stream.resume()`` stop and restart capture while the session is not
live. :data:`SOURCES` lists the kinds of source by the name the config gives them; a source's
own module is imported only when :func:`make_frame_source` builds it.
"""

from agent.media.camera.devices import CameraInfo, list_cameras
from agent.media.camera.frames import (
    CameraError,
    CameraUnavailable,
    Frame,
    FrameSource,
    JpegFrame,
    RgbFrame,
    YuvFrame,
)
from agent.media.camera.sources import SOURCES, SourceKind, make_frame_source
from agent.media.camera.stream import CameraStream

__all__ = [
    "SOURCES",
    "CameraError",
    "CameraInfo",
    "CameraStream",
    "CameraUnavailable",
    "Frame",
    "FrameSource",
    "JpegFrame",
    "RgbFrame",
    "SourceKind",
    "YuvFrame",
    "list_cameras",
    "make_frame_source",
]
