"""Which backend an upgrade request is for, and the credentials it carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qs

from agent.emulator import wire


class Backend(StrEnum):
    """The service dialects the emulator serves."""

    DEVELOPER = "developer"
    VERTEX = "vertex"
    FIREBASE_GOOGLE_AI = "firebase-google-ai"
    FIREBASE_VERTEX = "firebase-vertex"


_ROUTES: Final = (
    (
        Backend.DEVELOPER,
        re.compile(
            r"/ws/google\.ai\.generativelanguage\.(?P<version>v1|v1beta|v1alpha)"
            r"\.GenerativeService\.BidiGenerateContent(?P<constrained>Constrained)?$"
        ),
    ),
    (
        Backend.VERTEX,
        re.compile(
            r"/ws/google\.cloud\.aiplatform\.(?P<version>v1|v1beta1)"
            r"\.LlmBidiService/BidiGenerateContent$"
        ),
    ),
    (
        Backend.FIREBASE_GOOGLE_AI,
        re.compile(
            r"/ws/google\.firebase\.vertexai\.(?P<version>v1beta)"
            r"\.GenerativeService/BidiGenerateContent$"
        ),
    ),
    (
        Backend.FIREBASE_VERTEX,
        re.compile(
            r"/ws/google\.firebase\.vertexai\.(?P<version>v1beta)"
            r"\.LlmBidiService/BidiGenerateContent/locations/(?P<location>[^/]+)$"
        ),
    ),
)

_SLASHES: Final = re.compile(r"/{2,}")


@dataclass(frozen=True, slots=True)
class Route:
    """A matched endpoint: backend, API version, path prefix, and the normalised path."""

    backend: Backend
    version: str
    path: str
    prefix: str
    constrained: bool = False
    location: str | None = None

    @property
    def developer_api(self) -> bool:
        """The Developer API dialect (Firebase's Google AI proxy forwards to it)."""
        return self.backend in (Backend.DEVELOPER, Backend.FIREBASE_GOOGLE_AI)


def match_route(target: str) -> Route | None:
    """Match a request target (path and query); repeated slashes and a path prefix are fine."""
    # not urlsplit: it reads a leading "//ws/..." as a host name
    path = _SLASHES.sub("/", target.partition("?")[0].partition("#")[0])
    if len(path) > 1:
        path = path.rstrip("/")
    for backend, pattern in _ROUTES:
        found = pattern.search(path)
        if found:
            groups = found.groupdict()
            return Route(
                backend=backend,
                version=groups["version"],
                path=path,
                prefix=path[: found.start()],
                constrained=bool(groups.get("constrained")),
                location=groups.get("location"),
            )
    return None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client presented. ``api_key`` from ``?key=``/``x-goog-api-key``; ``token``
    from ``?access_token=`` or ``Authorization: Token|Bearer|Firebase``; ``app_check`` from
    ``X-Firebase-AppCheck``."""

    api_key: str | None = None
    token: str | None = None
    scheme: str | None = None
    app_check: str | None = None

    @property
    def present(self) -> bool:
        """Whether any credential was sent."""
        return bool(self.api_key or self.token)


def extract_credentials(target: str, headers: Mapping[str, str]) -> Credentials:
    """Collect credentials from every form a client uses (live-protocol.md §9.4)."""
    query = parse_qs(target.partition("?")[2].partition("#")[0])
    key = next(iter(query.get("key", [])), None) or headers.get("x-goog-api-key")
    token = next(iter(query.get("access_token", [])), None)
    scheme = "access_token" if token else None
    auth = headers.get("authorization")
    if auth and not token:
        found_scheme, _, value = auth.strip().partition(" ")
        if found_scheme.lower() in ("token", "bearer", "firebase") and value.strip():
            token, scheme = value.strip(), found_scheme.lower()
    app_check = headers.get("x-firebase-appcheck") or None
    return Credentials(api_key=key or None, token=token, scheme=scheme, app_check=app_check)


def check_credentials(creds: Credentials, accepted: str | None) -> tuple[int, str] | None:
    """None when accepted, else the (code, reason) the service closes with."""
    if not creds.present:
        return wire.NO_CREDENTIALS
    if accepted is None:
        return None
    if creds.api_key is not None:
        if creds.api_key == accepted or creds.token == accepted:
            return None
        return wire.BAD_API_KEY
    if creds.token == accepted:
        return None
    return wire.BAD_TOKEN
