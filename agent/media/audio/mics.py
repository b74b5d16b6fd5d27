"""Microphone profiles: the native capture format of each supported mic, from TOML files.

Profiles ship inside the package (``agent/media/audio/mic_profiles/<name>.toml``, so an
installed wheel has them); ``hardware/mics`` in the repository is a symlink to the same folder.
Each file has a ``[capture]`` table whose keys are
:class:`~agent.media.audio.convert.CaptureFormat` fields, plus an optional ``device`` (a name
substring to open) and comments with the boot overlay and ALSA notes. The config names a
profile (``mic = "inmp441"``) or a path to its own TOML file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from agent.media.audio.convert import CaptureFormat

_PACKAGE_DIR = "mic_profiles"
_FORMAT_KEYS = {f.name for f in fields(CaptureFormat)}
_TOP_KEYS = {"name", "description", "device", "capture"}
MAX_PROFILE_BYTES = 64 * 1024
"""The largest profile file read (the shipped ones are about 1 KiB)."""


class MicProfileError(ValueError):
    """A profile is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class MicProfile:
    """A loaded profile: its capture format and the device name to look for."""

    name: str
    description: str
    device: str | None
    fmt: CaptureFormat
    source: str


def available_mic_profiles() -> list[str]:
    """Names of the profiles that ship with the package."""
    folder = resources.files("agent.media.audio") / _PACKAGE_DIR
    files = [p.name for p in folder.iterdir()]
    return sorted(name.removesuffix(".toml") for name in files if name.endswith(".toml"))


def read_mic_profile(name_or_path: str | Path) -> MicProfile:
    """Load a shipped profile by name (``"sph0645"``) or any profile file by path."""
    text, source = _profile_text(str(name_or_path))
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOML errors, and limits tomllib meets
        raise MicProfileError(f"{source}: not a valid TOML profile: {exc}") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise MicProfileError(f"{source}: unknown key {sorted(unknown)[0]!r}")
    capture = data.get("capture")
    if not isinstance(capture, dict):
        raise MicProfileError(f"{source}: missing [capture] table")
    return MicProfile(
        name=str(data.get("name", Path(source).stem)),
        description=str(data.get("description", "")),
        device=_optional_str(data.get("device"), source, "device"),
        fmt=_capture_format(capture, source),
        source=source,
    )


def load_mic_profile(name: str | Path) -> CaptureFormat:
    """The capture format of a shipped profile (by name) or of a profile file (by path)."""
    return read_mic_profile(name).fmt


def mic_capture_format(mic: str | Path | None, **overrides: Any) -> CaptureFormat:
    """The format to open a mic in: its profile (None: 16 kHz mono S16, what a ``plughw``
    device gives) with ``overrides`` (``CaptureFormat`` fields) applied.

    Raises:
        MicProfileError: a profile that cannot be read.
        ValueError: a format the converter cannot take.
    """
    base = load_mic_profile(mic) if mic is not None else CaptureFormat()
    return replace(base, **overrides)


def _profile_text(name: str) -> tuple[str, str]:
    if name.endswith(".toml") or "/" in name:
        path = Path(name)
        return _read_profile(path), str(path)
    resource = resources.files("agent.media.audio") / _PACKAGE_DIR / f"{name}.toml"
    if not resource.is_file():
        raise MicProfileError(
            f"unknown mic profile {name!r}; known: {', '.join(available_mic_profiles())}"
        )
    return resource.read_text(encoding="utf-8"), f"{_PACKAGE_DIR}/{name}.toml"


def _read_profile(path: Path) -> str:
    """The text of a profile file: a regular file (``/dev/zero`` or a FIFO would never end),
    opened without blocking, at most `MAX_PROFILE_BYTES`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        reason = exc.strerror if isinstance(exc, OSError) else "invalid path"
        raise MicProfileError(f"{path}: cannot read mic profile: {reason}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise MicProfileError(f"{path}: a mic profile must be a regular file")
        data = f.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        raise MicProfileError(f"{path}: larger than {MAX_PROFILE_BYTES // 1024} KiB: not a "
                              "mic profile")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MicProfileError(f"{path}: a mic profile must be UTF-8 text") from None


def _optional_str(value: Any, source: str, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MicProfileError(f"{source}: {key} must be a string")


_TYPES: dict[str, tuple[type, ...]] = {
    "rate": (int,),
    "channels": (int,),
    "sample_format": (str,),
    "channel": (int, str),
    "shift": (int,),
    "dc_block": (bool,),
    "gain_db": (int, float),
    "agc": (bool,),
}


def _capture_format(table: dict[str, Any], source: str) -> CaptureFormat:
    for key, value in table.items():
        if key not in _FORMAT_KEYS:
            raise MicProfileError(f"{source}: capture.{key}: unknown key")
        ok = _TYPES[key]
        # bool is an int subclass: reject true/false where a number is expected
        if not isinstance(value, ok) or (isinstance(value, bool) and bool not in ok):
            names = " or ".join(t.__name__ for t in ok)
            raise MicProfileError(f"{source}: capture.{key}: expected {names}, got {value!r}")
    try:
        return CaptureFormat(**table)
    except ValueError as exc:
        raise MicProfileError(f"{source}: capture: {exc}") from exc
