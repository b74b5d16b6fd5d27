"""The token server's TOML file: where it listens, its key, its devices, what it mints."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SETTINGS_BYTES = 64 * 1024


class SettingsError(Exception):
    """Every problem of a settings file, one ``file: key: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    api_key_file: Path
    devices_file: Path
    model: str
    host: str = "127.0.0.1"
    port: int = 8471
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    response_modalities: tuple[str, ...] = ("AUDIO",)
    uses: int = 1
    expire_s: float = 1800.0
    new_session_expire_s: float = 60.0
    per_device_per_minute: float = 6.0
    per_device_burst: int = 3
    max_in_flight: int = 16
    api_endpoint: str | None = None
    """The Gemini API's base URL (tests: the emulator's token endpoints)."""


def load_settings(path: Path) -> Settings:
    """Read and check ``path``. Raises SettingsError naming each problem."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SETTINGS_BYTES + 1)
    except OSError as exc:
        raise SettingsError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise SettingsError([f"{path}: larger than {MAX_SETTINGS_BYTES} bytes"])
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError([f"{path}: not a TOML file: {exc}"]) from None
    return parse_settings(doc, path)


def parse_settings(doc: dict[str, Any], path: Path) -> Settings:
    problems: list[str] = []
    base = path.parent

    def want(key: str, kind: type | tuple[type, ...], default: Any, check: Any = None,
             rule: str = "") -> Any:
        if key not in doc:
            if default is _REQUIRED:
                problems.append(f"{path}: {key}: is required")
            return None if default is _REQUIRED else default
        value = doc[key]
        if not isinstance(value, kind) or isinstance(value, bool):  # no key here is a flag
            problems.append(f"{path}: {key}: {rule or 'has the wrong type'}")
            return None if default is _REQUIRED else default
        if check is not None and not check(value):
            problems.append(f"{path}: {key}: {rule}")
            return None if default is _REQUIRED else default
        return value

    def file(key: str, required: bool) -> Path | None:
        text = want(key, str, _REQUIRED if required else None, bool, "must be a path")
        return None if text is None else (base / Path(text).expanduser())

    known = {"api_key_file", "devices_file", "model", "host", "port", "tls_cert_file",
             "tls_key_file", "response_modalities", "uses", "expire_s",
             "new_session_expire_s", "per_device_per_minute", "per_device_burst",
             "max_in_flight", "api_endpoint"}
    problems += [f"{path}: {key}: unknown key" for key in doc if key not in known]
    modalities = want("response_modalities", list, ["AUDIO"],
                      lambda v: v in (["AUDIO"], ["TEXT"]), 'must be ["AUDIO"] or ["TEXT"]')
    settings = Settings(
        api_key_file=file("api_key_file", True) or Path(),
        devices_file=file("devices_file", True) or Path(),
        model=want("model", str, _REQUIRED, bool, "must be a model name") or "",
        host=want("host", str, "127.0.0.1", bool, "must be an address"),
        port=want("port", int, 8471, lambda v: 1 <= v <= 65535, "must be 1-65535"),
        tls_cert_file=file("tls_cert_file", False),
        tls_key_file=file("tls_key_file", False),
        response_modalities=tuple(modalities),
        uses=want("uses", int, 1, lambda v: 1 <= v <= 10, "must be 1-10"),
        expire_s=float(want("expire_s", (int, float), 1800.0,
                            lambda v: 60 <= v <= 20 * 3600, "must be 60-72000 s")),
        new_session_expire_s=float(want("new_session_expire_s", (int, float), 60.0,
                                        lambda v: 10 <= v <= 3600, "must be 10-3600 s")),
        per_device_per_minute=float(want("per_device_per_minute", (int, float), 6.0,
                                         lambda v: 0 < v <= 600, "must be above 0, at most 600")),
        per_device_burst=want("per_device_burst", int, 3, lambda v: 1 <= v <= 100,
                              "must be 1-100"),
        max_in_flight=want("max_in_flight", int, 16, lambda v: 1 <= v <= 256, "must be 1-256"),
        api_endpoint=want("api_endpoint", str, None,
                          lambda v: v.startswith(("https://", "http://127.0.0.1")),
                          "must be an https:// URL"),
    )
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        problems.append(f"{path}: tls_key_file: set both tls_cert_file and tls_key_file, or "
                        "neither (then a proxy in front serves HTTPS)")
    if settings.tls_cert_file is None and settings.host not in ("127.0.0.1", "::1",
                                                                 "localhost"):
        problems.append(f"{path}: host: without tls_cert_file the server listens on this "
                        "machine only (127.0.0.1), behind an HTTPS proxy")
    if settings.new_session_expire_s > settings.expire_s:
        problems.append(f"{path}: new_session_expire_s: must not exceed expire_s")
    if problems:
        raise SettingsError(problems)
    return settings


_REQUIRED = object()
