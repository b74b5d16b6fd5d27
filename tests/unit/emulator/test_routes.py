"""Routing of upgrade requests and credentials."""

from __future__ import annotations

import pytest

from agent.emulator import wire
from agent.emulator.routes import (
    Backend,
    Credentials,
    check_credentials,
    extract_credentials,
    match_route,
)


def test_developer_paths_versions_and_constrained() -> None:
    route = match_route(
        "/ws/google.ai.generativelanguage.v1alpha.GenerativeService."
        "BidiGenerateContentConstrained?access_token=t"
    )
    assert route is not None
    assert (route.backend, route.version, route.constrained) == (Backend.DEVELOPER, "v1alpha", True)
    assert route.developer_api


def test_prefix_and_repeated_slashes() -> None:
    route = match_route(
        "//proxy//ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent/"
    )
    assert route is not None and route.prefix == "/proxy" and route.version == "v1"


def test_firebase_vertex_location() -> None:
    route = match_route(
        "/ws/google.firebase.vertexai.v1beta.LlmBidiService/BidiGenerateContent/locations/"
        "us-central1?key=k"
    )
    assert route is not None and route.backend is Backend.FIREBASE_VERTEX
    assert route.location == "us-central1" and not route.developer_api


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ws/google.ai.generativelanguage.v2.GenerativeService.BidiGenerateContent",
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService/BidiGenerateContent",
        "/ws/google.firebase.vertexai.v1beta.GenerativeService.BidiGenerateContent",
    ],
)
def test_unknown_paths(path: str) -> None:
    assert match_route(path) is None


def test_credentials_from_every_form() -> None:
    assert extract_credentials("/p?key=a%2Fb", {}) == Credentials(api_key="a/b")
    assert extract_credentials("/p", {"x-goog-api-key": "k"}).api_key == "k"
    assert extract_credentials("/p?access_token=t", {}) == Credentials(
        token="t", scheme="access_token"
    )
    for scheme in ("Token", "Bearer", "Firebase"):
        creds = extract_credentials("/p", {"authorization": f"{scheme} abc"})
        assert (creds.token, creds.scheme) == ("abc", scheme.lower())
    assert not extract_credentials("/p", {"authorization": "Basic abc"}).present


def test_credential_checks() -> None:
    assert check_credentials(Credentials(), None) == wire.NO_CREDENTIALS
    assert check_credentials(Credentials(api_key="x"), None) is None
    assert check_credentials(Credentials(api_key="x"), "y") == wire.BAD_API_KEY
    assert check_credentials(Credentials(token="x"), "y") == wire.BAD_TOKEN
    # ephemeral tokens arrive as both header forms with the same value
    assert check_credentials(Credentials(api_key="auth_tokens/t", token="auth_tokens/t"),
                             "auth_tokens/t") is None  # fmt: skip
