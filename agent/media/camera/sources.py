"""The kinds of frame source, in one registry: what the config names, validates and builds.

Each kind says where its class lives, which constructor options it takes and which keys of the
config's ``[camera]`` table feed it. Adding a source means adding one entry to :data:`SOURCES`.

A source's module is imported only when that source is built: a device runs one of them, and
the others' code (ctypes layouts, test patterns) would only take memory.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.media.camera.frames import FrameSource


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One kind of frame source.

    Attributes:
        module, class_name: where the source class is, imported on first use.
        options: the keyword arguments its constructor takes.
        config_keys: the ``[camera]`` keys passed on to it, as options of the same name.
        required: options it cannot do without.
    """

    module: str
    class_name: str
    options: frozenset[str] = frozenset()
    config_keys: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()

    def load(self) -> Callable[..., FrameSource]:
        """The source class, importing its module."""
        source_class: Callable[..., FrameSource] = getattr(
            importlib.import_module(self.module), self.class_name
        )
        return source_class


SOURCES: Mapping[str, SourceKind] = MappingProxyType(
    {
        "picamera2": SourceKind(
            "agent.media.camera.picamera2",
            "Picamera2Source",
            options=frozenset(
                {"camera_num", "frame_rate", "encode_in_picamera2", "quality", "autofocus"}
            ),
            config_keys=("camera_num", "quality"),
        ),
        "v4l2": SourceKind(
            "agent.media.camera.v4l2",
            "V4L2Source",
            options=frozenset({"device", "frame_timeout_s"}),
            config_keys=("device",),
        ),
        "test-pattern": SourceKind("agent.media.camera.sim", "TestPatternSource"),
        "image-folder": SourceKind(
            "agent.media.camera.sim",
            "ImageFolderSource",
            options=frozenset({"path"}),
            config_keys=("path",),
            required=frozenset({"path"}),
        ),
    }
)
"""Every frame source by the name ``camera.source`` gives it in the config."""


def make_frame_source(name: str, **options: Any) -> FrameSource:
    """Build the frame source named by the config's ``camera.source``.

    Options by name:
        picamera2: ``camera_num`` (0), ``frame_rate`` (10.0), ``encode_in_picamera2``
            (False), ``quality`` (80), ``autofocus`` (True).
        v4l2: ``device`` ("/dev/video0"), ``frame_timeout_s`` (2.0).
        test-pattern: none.
        image-folder: ``path`` (required): a folder of JPEG/PNG files, or one file.

    Raises:
        ValueError: an unknown name, or an option that source does not take or lacks (the
            message names both, for the config error).
    """
    kind = SOURCES.get(name)
    if kind is None:
        raise ValueError(f"unknown camera source {name!r}; expected one of {', '.join(SOURCES)}")
    unknown = sorted(set(options) - kind.options)
    if unknown:
        expected = ", ".join(sorted(kind.options)) or "none"
        raise ValueError(
            f"camera source {name!r} does not take {', '.join(unknown)} (it takes: {expected})"
        )
    missing = sorted(kind.required - set(options))
    if missing:
        raise ValueError(f"camera source {name!r} needs a {', '.join(missing)}")
    return kind.load()(**options)
