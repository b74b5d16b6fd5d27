"""``LiveGenerativeModel`` and the backends it can reach.

A backend knows three things: the WebSocket URL, the headers that authenticate, and the form of
the model path in ``setup.model``. ``endpoint`` on every backend points the client at another
server (the local emulator, a proxy) while keeping the backend's path and credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import structlog
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeaderValue,
    InvalidStatus,
)

from agent import __version__
from agent.live import protocol
from agent.live.bad_input import BadInput
from agent.live.credentials import kept_credentials, note_refusal
from agent.live.endpoint import check_headers, check_url, redact_url
from agent.live.errors import LiveErrorCode, LiveSessionError, ProtocolError
from agent.live.session import LiveSession
from agent.live.tls import client_context
from agent.live.types import (
    HOISTED_GENERATION_FIELDS,
    Content,
    JsonDict,
    LiveGenerationConfig,
    LiveServerSetupComplete,
    Part,
    RealtimeInputConfig,
    SessionResumptionConfig,
    Tool,
    camel_case,
    to_wire,
)

log = structlog.get_logger(__name__)

FIREBASE_HOST = "wss://firebasevertexai.googleapis.com"
GEMINI_HOST = "wss://generativelanguage.googleapis.com"
CLIENT_TAG = f"edge-agent/{__version__}"

Secret = str | Callable[[], str]
"""A credential, or a function returning a fresh one (called at every connect); a
``KeptCredential`` is such a function, made ready before each connection."""


def _secret(value: Secret | None) -> str | None:
    secret = value() if callable(value) else value
    if secret is not None and not isinstance(secret, str):
        raise LiveSessionError(
            LiveErrorCode.NO_API_KEY,
            f"The credential function returned a {type(secret).__name__}, not a string.",
            permanent=True,
        )
    return secret


class Backend(Protocol):
    """Where and how to connect."""

    @property
    def endpoint(self) -> str | None: ...

    def url(self) -> str: ...

    def headers(self) -> dict[str, str]: ...

    def model_path(self, model: str) -> str: ...


def _base(endpoint: str | None, default: str) -> str:
    return (endpoint or default).rstrip("/")


def _vertex_model(model: str) -> str:
    if "/" not in model:
        return f"publishers/google/models/{model}"
    if model.startswith("models/"):
        return f"publishers/google/{model}"
    return model


@dataclass(frozen=True)
class FirebaseGoogleAIBackend:
    """Firebase AI Logic, Gemini Developer API behind it (the JS SDK's ``GoogleAIBackend``).

    Unlike the browser SDK this client can send App Check and Firebase Auth tokens as headers,
    as the iOS and Android SDKs do, so it works where App Check is enforced.
    """

    api_key: Secret = field(repr=False)
    project_id: str
    app_id: str | None = None
    app_check_token: Secret | None = field(default=None, repr=False)
    auth_token: Secret | None = field(default=None, repr=False)
    endpoint: str | None = None

    def url(self) -> str:
        return (
            _base(self.endpoint, FIREBASE_HOST)
            + "/ws/google.firebase.vertexai.v1beta.GenerativeService/BidiGenerateContent"
        )

    def headers(self) -> dict[str, str]:
        return _firebase_headers(self.api_key, self.app_id, self.app_check_token, self.auth_token)

    def model_path(self, model: str) -> str:
        name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"projects/{self.project_id}/{name}"


@dataclass(frozen=True)
class FirebaseVertexAIBackend:
    """Firebase AI Logic, Vertex AI behind it (the JS SDK's ``VertexAIBackend``)."""

    api_key: Secret = field(repr=False)
    project_id: str
    location: str = "us-central1"
    app_id: str | None = None
    app_check_token: Secret | None = field(default=None, repr=False)
    auth_token: Secret | None = field(default=None, repr=False)
    endpoint: str | None = None

    def url(self) -> str:
        return (
            _base(self.endpoint, FIREBASE_HOST)
            + "/ws/google.firebase.vertexai.v1beta.LlmBidiService/BidiGenerateContent/locations/"
            + quote(self.location, safe="")
        )

    def headers(self) -> dict[str, str]:
        return _firebase_headers(self.api_key, self.app_id, self.app_check_token, self.auth_token)

    def model_path(self, model: str) -> str:
        return f"projects/{self.project_id}/locations/{self.location}/{_vertex_model(model)}"


def _firebase_headers(
    api_key: Secret, app_id: str | None, app_check: Secret | None, auth: Secret | None
) -> dict[str, str]:
    key = _secret(api_key)
    if not key:
        raise LiveSessionError(LiveErrorCode.NO_API_KEY, "The Firebase backend needs an API key.")
    headers = {"x-goog-api-key": key, "x-goog-api-client": CLIENT_TAG}
    if app_id:
        headers["X-Firebase-AppId"] = app_id
    token = _secret(app_check)
    if token:
        headers["X-Firebase-AppCheck"] = token
    auth_token = _secret(auth)
    if auth_token:
        headers["Authorization"] = f"Firebase {auth_token}"
    return headers


@dataclass(frozen=True)
class GeminiDeveloperBackend:
    """The Gemini Developer API, with an API key or an ephemeral token (``auth_tokens/...``).

    Ephemeral tokens use the ``BidiGenerateContentConstrained`` method, served on ``v1alpha``.
    """

    api_key: Secret = field(repr=False)
    api_version: str = "v1beta"
    endpoint: str | None = None

    def _key(self) -> str:
        key = _secret(self.api_key)
        if not key:
            raise LiveSessionError(LiveErrorCode.NO_API_KEY, "The Gemini API needs an API key.")
        return key

    def url(self) -> str:
        key = self._key()
        method = "BidiGenerateContent"
        version = self.api_version
        if key.startswith("auth_tokens/"):
            method += "Constrained"
            version = "v1alpha"
        return (
            _base(self.endpoint, GEMINI_HOST)
            + f"/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}"
        )

    def headers(self) -> dict[str, str]:
        key = self._key()
        headers = {"x-goog-api-key": key, "x-goog-api-client": CLIENT_TAG}
        if key.startswith("auth_tokens/"):
            headers["Authorization"] = f"Token {key}"
        return headers

    def model_path(self, model: str) -> str:
        return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


@dataclass(frozen=True)
class VertexAIBackend:
    """Vertex AI directly, with an OAuth access token (``gcloud auth print-access-token``)."""

    access_token: Secret = field(repr=False)
    project_id: str
    location: str = "us-central1"
    api_version: str = "v1beta1"
    quota_project: str | None = None
    endpoint: str | None = None

    def url(self) -> str:
        if self.location == "global":
            host = "wss://aiplatform.googleapis.com"
        else:
            host = f"wss://{self.location}-aiplatform.googleapis.com"
        return (
            _base(self.endpoint, host)
            + f"/ws/google.cloud.aiplatform.{self.api_version}.LlmBidiService/BidiGenerateContent"
        )

    def headers(self) -> dict[str, str]:
        token = _secret(self.access_token)
        if not token:
            raise LiveSessionError(LiveErrorCode.NO_API_KEY, "Vertex AI needs an access token.")
        headers = {"Authorization": f"Bearer {token}", "x-goog-api-client": CLIENT_TAG}
        if self.quota_project:
            headers["x-goog-user-project"] = self.quota_project
        return headers

    def model_path(self, model: str) -> str:
        return f"projects/{self.project_id}/locations/{self.location}/{_vertex_model(model)}"


def format_system_instruction(value: str | Part | Content | None) -> Content | None:
    """The Firebase SDK's ``formatSystemInstruction``: strings and parts become a system turn."""
    if value is None:
        return None
    if isinstance(value, str):
        return Content(role="system", parts=[Part(text=value)])
    if isinstance(value, Part):
        return Content(role="system", parts=[value])
    if value.role is None:
        return Content(role="system", parts=value.parts)
    return value


@dataclass(frozen=True)
class ConnectOptions:
    """Transport settings for ``connect()``."""

    timeout: float = 10.0
    """Seconds for the WebSocket handshake plus ``setupComplete``."""
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    max_frame_bytes: int = 4 * 1024 * 1024
    compression: bool = False
    """permessage-deflate costs CPU on base64 audio for little gain; off by default."""
    close_timeout: float = 2.0
    ssl_context: ssl.SSLContext | None = None
    """For ``wss://``; None: the one shared context of ``agent.live.tls``."""
    probe_interval_s: float = 0.5
    """While sending, a ping goes out this often to check the link (``dead_link_after_s``)."""
    dead_link_after_s: float | None = 4.0
    """A ping unanswered this long while sending: the link is dead (a blackholing network),
    the connection is dropped. ``None``: only the keepalive (``ping_interval``) checks it."""


class LiveGenerativeModel:
    """A model to hold Live sessions with.

    ``generation_config``, ``tools`` and the other settings go into the setup message of every
    connection; they are never changed by connecting (each connect builds its own setup).
    """

    def __init__(
        self,
        *,
        backend: Backend,
        model: str,
        generation_config: LiveGenerationConfig | None = None,
        tools: Sequence[Tool | JsonDict] | Callable[[], Sequence[Tool | JsonDict]] | None = None,
        tool_config: JsonDict | None = None,
        system_instruction: str | Part | Content | None = None,
        realtime_input_config: RealtimeInputConfig | None = None,
        proactivity: JsonDict | None = None,
        options: ConnectOptions | None = None,
    ) -> None:
        if not model:
            raise LiveSessionError(
                LiveErrorCode.NO_MODEL,
                "Must provide a model name. Example: LiveGenerativeModel(model='my-model-name')",
            )
        self.backend = backend
        self.model = model
        self.generation_config = generation_config or LiveGenerationConfig()
        # A function is asked at every connection: tool lists that change (an MCP server's)
        # are declared at the next setup.
        self.tools = tools if callable(tools) else (list(tools) if tools else None)
        self.tool_config = tool_config
        self.system_instruction = format_system_instruction(system_instruction)
        self.realtime_input_config = realtime_input_config
        self.proactivity = proactivity
        self.options = options or ConnectOptions()

    def setup_message(
        self,
        session_resumption: SessionResumptionConfig | None = None,
        *,
        initial_history: bool = False,
    ) -> JsonDict:
        """The ``setup`` body for one connection, built fresh each time. ``initial_history``
        declares that the connection starts with the conversation so far as ``clientContent``
        (``historyConfig``): models such as gemini-3.1-flash-live accept ``clientContent`` only
        then, and only before the first realtime input."""
        config = self.generation_config
        hoisted = {name: getattr(config, name) for name in HOISTED_GENERATION_FIELDS}
        generation = to_wire(dataclasses.replace(config, **dict.fromkeys(hoisted)))
        setup: JsonDict = {"model": self.backend.model_path(self.model)}
        setup["generationConfig"] = generation
        if hoisted["context_window_compression"] is not None:
            setup["contextWindowCompression"] = to_wire(hoisted["context_window_compression"])
        tools = self.tools() if callable(self.tools) else self.tools
        if tools:
            setup["tools"] = [to_wire(tool) for tool in tools]
        if self.tool_config:
            setup["toolConfig"] = self.tool_config
        if self.system_instruction is not None:
            setup["systemInstruction"] = self.system_instruction.to_wire()
        for name in ("input_audio_transcription", "output_audio_transcription"):
            if hoisted[name] is not None:
                setup[camel_case(name)] = to_wire(hoisted[name])
        if self.realtime_input_config is not None:
            setup["realtimeInputConfig"] = to_wire(self.realtime_input_config)
        if self.proactivity:
            setup["proactivity"] = self.proactivity
        if session_resumption is not None:
            setup["sessionResumption"] = to_wire(session_resumption)
        if initial_history:
            setup["historyConfig"] = {"initialHistoryInClientContent": True}
        return setup

    async def connect(
        self,
        session_resumption: SessionResumptionConfig | None = None,
        *,
        bad_input: BadInput | None = None,
        initial_history: bool = False,
    ) -> LiveSession:
        """Open a connection, send the setup, and wait for ``setupComplete``.

        Raises ``LiveSessionError`` and nothing else: ``TIMEOUT`` when the server does not
        answer within ``options.timeout``; ``FETCH_ERROR`` for network errors, refused upgrades
        (``http_status`` in the message) and credential functions that raise; ``RESPONSE_ERROR``
        with the close code and reason when the server rejects the setup; a ``permanent`` error
        for an endpoint, a credential or a setup that can never work. ``bad_input`` counts the
        bad server input of the session (pass the same one to every connection of a session).
        ``initial_history``: the caller sends the history next (``LiveSession.send_history``
        with ``turn_complete=True``), before any realtime input (see ``setup_message``).
        Every ``KeptCredential`` of the backend is made ready first; a refusal of one that a
        provider can replace is marked ``credential_refused``.
        """
        kept = kept_credentials(self.backend)
        for credential in kept:
            await credential.ready()
        try:
            session = await self._connect(session_resumption, bad_input, initial_history)
        except LiveSessionError as exc:
            note_refusal(kept, exc)
            raise
        for credential in kept:
            credential.used()
        return session

    def credential_refused(self, error: LiveSessionError) -> None:
        """Mark ``error``, which ended a live connection, when it is a refusal of a credential
        a provider can replace (an ephemeral token past its ``expire_time``)."""
        note_refusal(kept_credentials(self.backend), error)

    async def _connect(
        self,
        session_resumption: SessionResumptionConfig | None,
        bad_input: BadInput | None,
        initial_history: bool = False,
    ) -> LiveSession:
        url, headers, setup = self._request(session_resumption, initial_history)
        opts = self.options
        connection: ClientConnection | None = None
        try:
            async with asyncio.timeout(opts.timeout):
                connection = await _open(url, headers, opts)
                await connection.send(setup)
                first = await connection.recv(decode=False)
            setup_complete = _setup_complete(first)
            if setup_complete is None:
                await _close_quietly(connection, 1011, "Handshake failure", opts.close_timeout)
                raise LiveSessionError(
                    LiveErrorCode.RESPONSE_ERROR,
                    "Server connection handshake failed. The server did not respond with a "
                    "setupComplete message.",
                )
        except TimeoutError:
            await _abort(connection)
            raise LiveSessionError(
                LiveErrorCode.TIMEOUT,
                f"The Live server did not complete the handshake within {opts.timeout:g} s.",
            ) from None
        except ConnectionClosed as exc:
            frame = exc.rcvd
            code = frame.code if frame else 1006
            reason = frame.reason if frame else "connection dropped without a close frame"
            raise LiveSessionError(
                LiveErrorCode.RESPONSE_ERROR,
                "Server connection handshake failed: the server closed the connection.",
                close_code=code,
                close_reason=reason,
            ) from None
        except asyncio.CancelledError:
            await _abort(connection)
            raise
        except LiveSessionError:
            await _abort(connection)
            raise
        except Exception as exc:  # anything else on the way: a classified failure, not a crash
            await _abort(connection)
            raise LiveSessionError(
                LiveErrorCode.FETCH_ERROR,
                f"Could not connect to the Live server: {type(exc).__name__}: {exc}",
            ) from None
        log.info("session.connected", url=redact_url(url), session_id=setup_complete.session_id)
        return LiveSession(
            connection,
            setup_complete,
            close_timeout=opts.close_timeout,
            probe_interval_s=opts.probe_interval_s,
            dead_link_after_s=opts.dead_link_after_s,
            bad_input=bad_input,
        )

    def _request(
        self, session_resumption: SessionResumptionConfig | None, initial_history: bool = False
    ) -> tuple[str, dict[str, str], str]:
        """The URL, the headers and the setup frame of one connection, each checked first."""
        try:
            url = self.backend.url()
            headers = self.backend.headers()
        except LiveSessionError:
            raise
        except Exception as exc:  # a credential function that failed: it may work next time
            raise LiveSessionError(
                LiveErrorCode.FETCH_ERROR,
                f"The credential could not be fetched: {type(exc).__name__}: {exc}",
            ) from None
        check_url(url)
        check_headers(headers)
        try:
            setup = protocol.setup_frame(
                self.setup_message(session_resumption, initial_history=initial_history)
            )
        except (TypeError, ValueError) as exc:
            raise LiveSessionError(
                LiveErrorCode.INVALID_CONTENT,
                f"The setup cannot be encoded as JSON: {exc}",
                permanent=True,
            ) from None
        return url, headers, setup


async def _open(url: str, headers: dict[str, str], opts: ConnectOptions) -> ClientConnection:
    kwargs: dict[str, Any] = {
        "additional_headers": headers,
        "open_timeout": None,  # the caller's asyncio.timeout bounds the whole handshake
        "ping_interval": opts.ping_interval,
        "ping_timeout": opts.ping_timeout,
        "max_size": opts.max_frame_bytes,
        "close_timeout": opts.close_timeout,
        "compression": "deflate" if opts.compression else None,
        "user_agent_header": CLIENT_TAG,
        "proxy": None,
    }
    if url.startswith("wss:"):
        kwargs["ssl"] = opts.ssl_context or client_context()
    try:
        return await websockets.connect(url, **kwargs)
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise LiveSessionError(
            LiveErrorCode.FETCH_ERROR,
            f"The Live server refused the connection with HTTP {status}.",
            http_status=status,
        ) from None
    except InvalidHeaderValue:  # its text holds the value: the credential
        raise LiveSessionError(
            LiveErrorCode.NO_API_KEY,
            "A header cannot be sent: the credential holds a character HTTP headers cannot "
            "carry. Save the credential as plain ASCII text.",
            permanent=True,
        ) from None
    except (OSError, InvalidHandshake) as exc:
        raise LiveSessionError(
            LiveErrorCode.FETCH_ERROR, f"Could not connect to the Live server: {exc}"
        ) from None


def _setup_complete(data: bytes | str) -> LiveServerSetupComplete | None:
    try:
        frame = protocol.parse_server_frame(data)
    except ProtocolError:
        return None
    for message in frame.messages:
        if isinstance(message, LiveServerSetupComplete):
            return message
    return None


async def _close_quietly(
    connection: ClientConnection, code: int, reason: str, wait_s: float
) -> None:
    try:
        async with asyncio.timeout(wait_s):
            await connection.close(code, reason)
    except (TimeoutError, ConnectionClosed, OSError):
        connection.transport.abort()


async def _abort(connection: ClientConnection | None) -> None:
    if connection is not None:
        connection.transport.abort()
