"""What the config is read against from the media layer: camera sources, mic profiles and
wake words.

The one place the config imports from ``agent.media``. The imports wait until a config is
read: the media layer brings numpy and its devices' code, which importing ``agent.config``
alone does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["camera_source_keys", "camera_sources", "capture_problem", "echo_canceller_problem",
           "wake_word_problem"]


def echo_canceller_problem() -> str | None:
    """Why ``echo = "aec"`` cannot run here (its library is missing), or None."""
    import importlib.util

    if importlib.util.find_spec("pywebrtc_audio") is None:
        return ('"aec" needs the pywebrtc-audio package (pip install pywebrtc-audio); '
                'or choose "half_duplex"')
    return None


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


def capture_problem(mic: str | Path | None, overrides: Mapping[str, Any]
                    ) -> tuple[str | None, str] | None:
    """Why the mic profile ``mic`` with ``overrides`` cannot be opened, as (key, message):
    key ``"mic"`` when the profile itself is bad, None when the overrides are. None if fine."""
    from agent.media.audio import MicProfileError, mic_capture_format

    try:
        mic_capture_format(mic, **overrides)
    except MicProfileError as exc:
        return "mic", str(exc)
    except ValueError as exc:
        return None, str(exc)
    return None


def wake_word_problem(spec: str | Path) -> str | None:
    """Why the wake word ``spec`` (a bundled model's name or a model file's path) cannot be
    loaded, or None."""
    from agent.media.audio.wakeword import wake_word_problem as problem

    return problem(spec)
