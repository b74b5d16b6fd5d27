"""The devices a token server serves: one secret each, stored as its SHA-256 only.

``devices.toml``::

    [devices.kitchen]
    secret_sha256 = ["<hex of the current secret>", "<hex of the next one, while rotating>"]

A device secret is 32 random bytes (``openssl rand -base64 32``): unguessable, so a plain
SHA-256 is enough and a leaked devices file gives nothing to sign in with. The file is read
again when it changes, so a device is added, rotated or removed without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import tomllib
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

MAX_DEVICES_BYTES = 1024 * 1024
MAX_DEVICES = 10_000
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HEX = re.compile(r"[0-9a-f]{64}")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Devices:
    """Device ids and the hashes of their secrets, from a file read again when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._hashes: dict[str, tuple[str, ...]] = {}
        self.reload()

    def reload(self) -> None:
        """Read the file if it changed; a broken file keeps the devices read before (and is
        logged), a broken file at start raises ValueError."""
        with self._lock:
            try:
                st = os.stat(self.path)
                seen = (st.st_ino, st.st_size, st.st_mtime_ns)
                if seen == self._seen:
                    return
                hashes = _parse(self.path)
            except (OSError, ValueError) as exc:
                if self._seen is None:
                    raise ValueError(f"{self.path}: {exc}") from None
                log.error("token_server.devices_unreadable", path=str(self.path),
                          error=str(exc)[:200])
                return
            self._seen, self._hashes = seen, hashes
            log.info("token_server.devices_loaded", devices=len(hashes))

    def known(self, device: str) -> bool:
        return device in self._hashes

    def verify(self, device: str, secret: str) -> bool:
        """Whether ``secret`` is one of ``device``'s, compared in constant time."""
        self.reload()
        given = secret_hash(secret)
        matches = [hmac.compare_digest(given, h) for h in self._hashes.get(device, ("0" * 64,))]
        return any(matches) and device in self._hashes


def _parse(path: Path) -> dict[str, tuple[str, ...]]:
    with path.open("rb") as handle:
        data = handle.read(MAX_DEVICES_BYTES + 1)
    if len(data) > MAX_DEVICES_BYTES:
        raise ValueError(f"larger than {MAX_DEVICES_BYTES} bytes")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"not a TOML file: {exc}") from None
    devices = doc.get("devices", {})
    if not isinstance(devices, dict) or len(devices) > MAX_DEVICES:
        raise ValueError(f"[devices] must be a table of at most {MAX_DEVICES} devices")
    hashes: dict[str, tuple[str, ...]] = {}
    for device, entry in devices.items():
        raw = entry.get("secret_sha256") if isinstance(entry, dict) else None
        values = [raw] if isinstance(raw, str) else raw
        if not _ID.fullmatch(device) or not isinstance(values, list) or not values or not all(
                isinstance(v, str) and _HEX.fullmatch(v) for v in values[:4]) or len(values) > 4:
            raise ValueError(f"devices.{device[:64]}: needs secret_sha256, 1-4 lowercase hex "
                             "SHA-256 digests, and an id of letters, digits, _ . -")
        hashes[device] = tuple(values)
    return hashes
