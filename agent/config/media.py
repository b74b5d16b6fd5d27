"""What the config is read against from the media layer: camera sources and mic profiles.

The one place the config imports from ``agent.media``. The imports wait until a config is
read: the media layer brings numpy and its devices' code, which importing ``agent.config``
alone does not need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.media.audio import CaptureFormat as CaptureFormat

__all__ = ["camera_source_keys", "camera_sources", "capture_format", "is_mic_profile_error"]


def camera_sources() -> tuple[str, ...]:
    """The camera sources ``camera.source`` may name."""
    from agent.media.camera import SOURCES

    return tuple(SOURCES)


def camera_source_keys() -> dict[str, tuple[str, ...]]:
    """Each ``[camera]`` key that feeds a source, with the sources it feeds."""
    from agent.media.camera import SOURCES

    users: dict[str, tuple[str, ...]] = {}
    for name, kind in SOURCES.items():
        for key in kind.config_keys:
            users[key] = (*users.get(key, ()), name)
    return users


def capture_format(mic: str | Path | None, overrides: Mapping[str, Any]) -> CaptureFormat:
    """The mic profile ``mic`` (None: 16 kHz mono S16) with ``overrides`` applied.

    Raises ValueError (``MicProfileError`` for a bad profile) for an impossible format.
    """
    from agent.media.audio import CaptureFormat, load_mic_profile

    base = load_mic_profile(mic) if mic is not None else CaptureFormat()
    return dataclasses.replace(base, **overrides)


def is_mic_profile_error(exc: ValueError) -> bool:
    """Whether ``exc`` is about the mic profile itself (not the overrides)."""
    from agent.media.audio import MicProfileError

    return isinstance(exc, MicProfileError)
