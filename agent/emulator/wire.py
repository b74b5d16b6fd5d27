"""Server side of the Live wire protocol: lenient parsing of client frames, server frames.

Parsing is as lenient as the service's ProtoJSON: lowerCamel and snake_case names are accepted
at every nesting level, base64 in both alphabets with optional padding. It is as strict as the
service about structure: a violation raises :class:`ProtocolViolation` carrying the close code
and reason the service uses, and the caller closes the connection with them.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

# Close codes and reasons of the service (live-protocol.md §6).
INVALID_ARGUMENT: Final = (1007, "Request contains an invalid argument.")
NOT_IMPLEMENTED: Final = (1008, "Operation is not implemented, or supported, or enabled.")
BAD_API_KEY: Final = (1007, "API key not valid. Please pass a valid API key.")
NO_CREDENTIALS: Final = (
    1008,
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
)
BAD_TOKEN: Final = (
    1008,
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential.",
)
DEADLINE_EXPIRED: Final = (1011, "Deadline expired before operation could complete.")
INTERNAL: Final = (1011, "Internal error encountered.")
UNAVAILABLE: Final = (1011, "The service is currently unavailable.")
EXPLICIT_ACTIVITY: Final = (
    1007,
    "Explicit activity control is not supported when automatic activity detection is enabled.",
)
# Models that take clientContent only as initial history (gemini-3.1-flash-live) close with
# 1007; these reasons say which rule was broken.
HISTORY_PENDING: Final = (
    1007,
    "The initial history (historyConfig) must end with turnComplete before realtimeInput or "
    "toolResponse.",
)
CLIENT_CONTENT_REFUSED: Final = (
    1007,
    "clientContent is accepted only as initial history: set "
    "historyConfig.initialHistoryInClientContent.",
)

DEFAULT_INPUT_RATE: Final = 16000
OUTPUT_RATE: Final = 24000
OUTPUT_MIME: Final = f"audio/pcm;rate={OUTPUT_RATE}"

CLIENT_KINDS: Final = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")
REALTIME_FIELDS: Final = (
    "audio",
    "video",
    "text",
    "activityStart",
    "activityEnd",
    "audioStreamEnd",
    "mediaChunks",
)
MODALITIES: Final = frozenset({"AUDIO", "TEXT", "IMAGE"})
START_SENSITIVITIES: Final = frozenset(
    {"START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"}
)
END_SENSITIVITIES: Final = frozenset(
    {"END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"}
)
ACTIVITY_HANDLING: Final = frozenset(
    {"ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"}
)
MEDIA_RESOLUTIONS: Final = frozenset(
    {
        "MEDIA_RESOLUTION_UNSPECIFIED",
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
    }
)

MAX_DEPTH: Final = 100  # protobuf's JSON parser refuses deeper nesting
MAX_DETAIL_CHARS: Final = 200  # a violation's detail (it is logged) is cut to this
INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1

_INVALID_JSON: Final = (1007, "Invalid JSON payload received.")


class ProtocolViolation(Exception):
    """A client frame the service would refuse; close the connection with ``code``/``reason``."""

    def __init__(self, close: tuple[int, str], detail: str) -> None:
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 3] + "..."
        super().__init__(f"{close[0]} {close[1]} ({detail})")
        self.code, self.reason = close
        self.detail = detail


def invalid(detail: str) -> ProtocolViolation:
    """The service's generic INVALID_ARGUMENT close, with a detail for the emulator's log."""
    return ProtocolViolation(INVALID_ARGUMENT, detail)


def brief(value: Any) -> str:
    """A short repr of a client value, whatever its size or nesting, for details and logs."""
    return reprlib.repr(value)


# --- lenient field access ----------------------------------------------------------------

_SNAKE_CACHE: dict[str, str] = {}  # keyed by the field names this module asks for, never a client's
_CAMEL_RE: Final = re.compile(r"([A-Z])")


def snake(name: str) -> str:
    """``mimeType`` -> ``mime_type`` (cached: called on the per-frame path)."""
    cached = _SNAKE_CACHE.get(name)
    if cached is None:
        cached = _SNAKE_CACHE[name] = _CAMEL_RE.sub(r"_\1", name).lower()
    return cached


def get(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Field ``name`` (lowerCamel) of a ProtoJSON object, under either casing."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name), default)


def has(obj: Mapping[str, Any], name: str) -> bool:
    """Whether field ``name`` is present under either casing."""
    return name in obj or snake(name) in obj


def obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (``None`` -> ``{}``), else a violation."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object")
    return value


def camel_key(key: str) -> str:
    """``client_content`` -> ``clientContent``."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --- base64 ------------------------------------------------------------------------------

_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def decode_base64(text: Any, where: str) -> bytes:
    """Decode standard or URL-safe base64, padding optional; anything else is a violation."""
    if not isinstance(text, str):
        raise invalid(f"{where} must be a base64 string")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise invalid(f"{where} is not base64") from None
    raw = raw.translate(_URLSAFE)
    missing = -len(raw) % 4
    if missing == 3:
        raise invalid(f"{where} is not base64 (bad length)")
    try:
        return binascii.a2b_base64(raw + b"=" * missing, strict_mode=True)
    except binascii.Error:
        raise invalid(f"{where} is not base64") from None


def encode_base64(data: bytes) -> str:
    """Standard base64, as the service sends it."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# --- client messages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityDetection:
    """``realtimeInputConfig`` as far as the fake model uses it."""

    disabled: bool = False
    start_sensitivity: str = "START_SENSITIVITY_UNSPECIFIED"
    end_sensitivity: str = "END_SENSITIVITY_UNSPECIFIED"
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    interrupts: bool = True


@dataclass(frozen=True, slots=True)
class Compression:
    """``contextWindowCompression`` with a sliding window."""

    trigger_tokens: int | None
    target_tokens: int | None


@dataclass(frozen=True, slots=True)
class Resumption:
    """``sessionResumption``: ``handle`` is ``None`` for a new session that wants handles."""

    handle: str | None
    transparent: bool


@dataclass(frozen=True, slots=True)
class Setup:
    """A parsed ``setup`` message."""

    model: str
    modalities: tuple[str, ...]
    voice_name: str | None
    media_resolution: str | None
    activity: ActivityDetection
    input_transcription: bool
    output_transcription: bool
    resumption: Resumption | None
    compression: Compression | None
    function_names: tuple[str, ...]
    system_instruction: str
    non_blocking: frozenset[str] = frozenset()  # functions declared behavior = NON_BLOCKING
    initial_history: bool = False  # historyConfig.initialHistoryInClientContent


@dataclass(frozen=True, slots=True)
class Audio:
    """One realtime audio chunk: 16-bit little-endian mono samples at ``rate``."""

    rate: int
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Video:
    """One realtime image frame."""

    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RealtimeText:
    """``realtimeInput.text``."""

    text: str


@dataclass(frozen=True, slots=True)
class ActivityStart:
    """``realtimeInput.activityStart``."""


@dataclass(frozen=True, slots=True)
class ActivityEnd:
    """``realtimeInput.activityEnd``."""


@dataclass(frozen=True, slots=True)
class AudioStreamEnd:
    """``realtimeInput.audioStreamEnd``."""


@dataclass(frozen=True, slots=True)
class ClientContent:
    """``clientContent``: ``text`` joins the user's text parts of all turns."""

    turns: tuple[dict[str, Any], ...]
    turn_complete: bool
    text: str
    images: tuple[Video, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """One entry of ``toolResponse.functionResponses``."""

    id: str | None
    name: str
    response: dict[str, Any]
    scheduling: str | None = None  # for NON_BLOCKING functions: INTERRUPT, WHEN_IDLE, SILENT
    will_continue: bool = False  # more responses to the same call follow


SCHEDULINGS: Final = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")
BEHAVIORS: Final = ("UNSPECIFIED", "BLOCKING", "NON_BLOCKING")


@dataclass(frozen=True, slots=True)
class ToolResponse:
    """``toolResponse``."""

    responses: tuple[FunctionResponse, ...]


@dataclass(frozen=True, slots=True)
class ContextUpdate:
    """``contextUpdate`` (preview): accepted, kept as sent."""

    body: dict[str, Any] = field(default_factory=dict)


ClientMessage = (
    Setup
    | ClientContent
    | Audio
    | Video
    | RealtimeText
    | ActivityStart
    | ActivityEnd
    | AudioStreamEnd
    | ToolResponse
    | ContextUpdate
)


def load_json(frame: str | bytes) -> dict[str, Any]:
    """Decode one frame; the service answers bad JSON, and JSON nested deeper than
    :data:`MAX_DEPTH`, with 1007."""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(_INVALID_JSON, f"bad JSON: {exc}") from None
    except RecursionError:
        raise ProtocolViolation(_INVALID_JSON, "JSON nested too deep") from None
    if not isinstance(message, dict):
        raise ProtocolViolation(_INVALID_JSON, "not a JSON object")
    if _brackets(frame) > MAX_DEPTH and _depth_over(message, MAX_DEPTH):
        raise ProtocolViolation(_INVALID_JSON, f"JSON nested deeper than {MAX_DEPTH}")
    return message


def _brackets(frame: str | bytes) -> int:
    """How many containers a frame opens at most (a cheap bound on its depth)."""
    if isinstance(frame, bytes):
        return frame.count(b"{") + frame.count(b"[")
    return frame.count("{") + frame.count("[")


def _depth_over(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (no recursion: the input chooses depth)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _keys(body: Mapping[str, Any]) -> str:
    """The first few member names of an object, for a detail."""
    return brief(list(body)[:8])


def message_kind(message: Mapping[str, Any]) -> tuple[str, Any]:
    """The single top-level member of a client message as (camelCase kind, body)."""
    if len(message) != 1:
        raise invalid(f"expected exactly one top-level member, got {_keys(message)}")
    ((key, body),) = message.items()
    kind = camel_key(key)
    if kind not in CLIENT_KINDS:
        raise ProtocolViolation(
            (1007, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'),
            f"unknown message kind {key!r}",
        )
    return kind, body


def parse_client_message(
    message: Mapping[str, Any], *, developer_api: bool = True
) -> ClientMessage:
    """Parse one decoded client message into a typed value, or raise ProtocolViolation."""
    kind, body = message_kind(message)
    if kind == "realtimeInput":
        return parse_realtime_input(obj(body, "realtimeInput"))
    if kind == "setup":
        return parse_setup(obj(body, "setup"), developer_api=developer_api)
    if kind == "clientContent":
        return parse_client_content(obj(body, "clientContent"))
    if kind == "toolResponse":
        return parse_tool_response(obj(body, "toolResponse"))
    return ContextUpdate(obj(body, "contextUpdate"))


def parse_realtime_input(body: Mapping[str, Any]) -> ClientMessage:
    """Exactly one field per ``realtimeInput`` (the service and google-genai both insist)."""
    present = [name for name in REALTIME_FIELDS if has(body, name)]
    if len(present) != 1:
        raise invalid(f"realtimeInput needs exactly one field, got {present or _keys(body)}")
    name = present[0]
    value = get(body, name)
    if name == "audio":
        return parse_audio(obj(value, "realtimeInput.audio"))
    if name == "video":
        return parse_video(obj(value, "realtimeInput.video"))
    if name == "text":
        if not isinstance(value, str):
            raise invalid("realtimeInput.text must be a string")
        return RealtimeText(value)
    if name == "activityStart":
        obj(value, "activityStart")
        return ActivityStart()
    if name == "activityEnd":
        obj(value, "activityEnd")
        return ActivityEnd()
    if name == "audioStreamEnd":
        if not isinstance(value, bool):
            raise invalid("audioStreamEnd must be a boolean")
        return AudioStreamEnd()
    # mediaChunks (deprecated): the service uses the first chunk and ignores the rest.
    if not isinstance(value, list) or not value:
        raise invalid("mediaChunks must be a non-empty list")
    chunk = obj(value[0], "mediaChunks[0]")
    mime = get(chunk, "mimeType")
    if isinstance(mime, str) and mime.startswith("image/"):
        return parse_video(chunk)
    return parse_audio(chunk)


def audio_rate(mime: Any) -> int:
    """The sample rate of an ``audio/pcm[;rate=N]`` mime type (16 kHz when not declared)."""
    if not isinstance(mime, str):
        raise invalid("audio blob needs a mimeType")
    base, _, params = mime.partition(";")
    if base.strip().lower() != "audio/pcm":
        raise invalid(f"unsupported audio mime type {brief(mime)}")
    rate = DEFAULT_INPUT_RATE
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate":
            try:
                rate = int(value.strip())
            except ValueError:
                raise invalid(f"bad audio rate in {brief(mime)}") from None
    if not 8000 <= rate <= 48000:
        raise invalid(f"audio rate {rate} out of range")
    return rate


def parse_audio(blob: Mapping[str, Any]) -> Audio:
    """An ``audio/pcm`` blob with whole 16-bit samples."""
    rate = audio_rate(get(blob, "mimeType"))
    data = decode_base64(get(blob, "data"), "audio.data")
    if len(data) % 2:
        raise invalid(f"audio has an odd number of bytes ({len(data)})")
    return Audio(rate, np.frombuffer(data, dtype="<i2"))


def parse_video(blob: Mapping[str, Any]) -> Video:
    """An image blob (``image/*``)."""
    mime = get(blob, "mimeType")
    if not isinstance(mime, str) or not mime.startswith("image/"):
        raise invalid(f"video needs an image mime type, got {brief(mime)}")
    data = decode_base64(get(blob, "data"), "video.data")
    if not data:
        raise invalid("empty video frame")
    return Video(mime, data)


def parse_client_content(body: Mapping[str, Any]) -> ClientContent:
    """Turns appended to the context; function responses here are refused (firebase #9264)."""
    turns = get(body, "turns", [])
    if isinstance(turns, dict):
        turns = [turns]
    if not isinstance(turns, list):
        raise invalid("clientContent.turns must be a list")
    texts: list[str] = []
    images: list[Video] = []
    for i, turn in enumerate(turns):
        content = obj(turn, f"turns[{i}]")
        parts = get(content, "parts", [])
        if not isinstance(parts, list):
            raise invalid(f"turns[{i}].parts must be a list")
        for j, part in enumerate(parts):
            part = obj(part, f"turns[{i}].parts[{j}]")
            if has(part, "functionResponse"):
                raise invalid("function responses must be sent as toolResponse")
            text = get(part, "text")
            if text is not None:
                if not isinstance(text, str):
                    raise invalid("text part must be a string")
                if get(content, "role", "user") == "user":
                    texts.append(text)
            inline = get(part, "inlineData")
            if inline is not None:
                images.append(parse_video(obj(inline, "inlineData")))
    complete = get(body, "turnComplete", False)
    if not isinstance(complete, bool):
        raise invalid("turnComplete must be a boolean")
    return ClientContent(tuple(turns), complete, " ".join(texts), tuple(images))


def parse_tool_response(body: Mapping[str, Any]) -> ToolResponse:
    """``functionResponses``: a list of objects with a name and an optional id."""
    items = get(body, "functionResponses")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise invalid("toolResponse.functionResponses must be a non-empty list")
    responses = []
    for i, item in enumerate(items):
        entry = obj(item, f"functionResponses[{i}]")
        call_id = get(entry, "id")
        name = get(entry, "name")
        if call_id is not None and not isinstance(call_id, str):
            raise invalid("functionResponse.id must be a string")
        if not isinstance(name, str) or not name:
            raise invalid("functionResponse needs a name")
        scheduling = get(entry, "scheduling")
        if scheduling is not None and scheduling not in SCHEDULINGS:
            raise invalid(f"functionResponse.scheduling must be one of {', '.join(SCHEDULINGS)}")
        will_continue = get(entry, "willContinue")
        if will_continue is not None and not isinstance(will_continue, bool):
            raise invalid("functionResponse.willContinue must be true or false")
        responses.append(FunctionResponse(
            call_id, name, obj(get(entry, "response"), "response"), scheduling,
            bool(will_continue),
        ))  # fmt: skip
    return ToolResponse(tuple(responses))


def _int(value: Any, where: str, maximum: int = INT32_MAX) -> int | None:
    """A count or duration: a whole number from 0 to ``maximum`` (int32 by default), as a
    JSON number or, as ProtoJSON writes int64, a string of digits."""
    if value is None:
        return None
    whole = (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
        or (isinstance(value, str) and 0 < len(value) <= 20 and value.strip().isdecimal())
    )
    number = int(value) if whole else None
    if number is None or not 0 <= number <= maximum:
        raise invalid(f"{where} must be an integer from 0 to {maximum}, got {brief(value)}")
    return number


def _enum(value: Any, allowed: frozenset[str], default: str, where: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise invalid(f"{where}: unknown value {brief(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    """A repeated field: a JSON array (absent or null: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"{where} must be a list")
    return value


def parse_setup(body: Mapping[str, Any], *, developer_api: bool = True) -> Setup:
    """Validate a ``setup`` the way the service does and keep what the fake model needs."""
    model = get(body, "model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("setup.model is required")
    gen = obj(get(body, "generationConfig"), "generationConfig")
    modalities_raw = get(gen, "responseModalities") or ["AUDIO"]
    if not isinstance(modalities_raw, list) or not all(
        isinstance(m, str) and m in MODALITIES for m in modalities_raw
    ):
        raise invalid(f"bad responseModalities {brief(modalities_raw)}")
    if len(set(modalities_raw)) > 1:
        raise invalid("only one response modality is supported")
    speech = obj(get(gen, "speechConfig"), "speechConfig")
    voice = obj(get(obj(get(speech, "voiceConfig"), "voiceConfig"), "prebuiltVoiceConfig"), "pv")
    voice_name = get(voice, "voiceName")
    media_resolution = get(gen, "mediaResolution")
    if media_resolution is not None:
        _enum(media_resolution, MEDIA_RESOLUTIONS, "", "mediaResolution")

    rtc = obj(get(body, "realtimeInputConfig"), "realtimeInputConfig")
    aad = obj(get(rtc, "automaticActivityDetection"), "automaticActivityDetection")
    handling = _enum(
        get(rtc, "activityHandling"),
        ACTIVITY_HANDLING,
        "ACTIVITY_HANDLING_UNSPECIFIED",
        "activityHandling",
    )
    activity = ActivityDetection(
        disabled=bool(get(aad, "disabled", False)),
        start_sensitivity=_enum(
            get(aad, "startOfSpeechSensitivity"),
            START_SENSITIVITIES,
            "START_SENSITIVITY_UNSPECIFIED",
            "startOfSpeechSensitivity",
        ),
        end_sensitivity=_enum(
            get(aad, "endOfSpeechSensitivity"),
            END_SENSITIVITIES,
            "END_SENSITIVITY_UNSPECIFIED",
            "endOfSpeechSensitivity",
        ),
        prefix_padding_ms=_int(get(aad, "prefixPaddingMs"), "prefixPaddingMs"),
        silence_duration_ms=_int(get(aad, "silenceDurationMs"), "silenceDurationMs"),
        interrupts=handling != "NO_INTERRUPTION",
    )

    resumption = None
    if has(body, "sessionResumption"):
        sr = obj(get(body, "sessionResumption"), "sessionResumption")
        handle = get(sr, "handle")
        if handle is not None and not isinstance(handle, str):
            raise invalid("sessionResumption.handle must be a string")
        transparent = bool(get(sr, "transparent", False))
        if transparent and developer_api:
            raise invalid("sessionResumption.transparent is not supported on this API")
        resumption = Resumption(handle or None, transparent)

    compression = None
    # Firebase JS hoists it to the top level; accept it inside generationConfig as well.
    cwc_raw = get(body, "contextWindowCompression", get(gen, "contextWindowCompression"))
    if cwc_raw is not None:
        cwc = obj(cwc_raw, "contextWindowCompression")
        window = obj(get(cwc, "slidingWindow"), "slidingWindow")
        compression = Compression(
            _int(get(cwc, "triggerTokens"), "triggerTokens", INT64_MAX),
            _int(get(window, "targetTokens"), "targetTokens", INT64_MAX),
        )

    names: list[str] = []
    non_blocking: list[str] = []
    for tool in _list(get(body, "tools"), "tools"):
        declarations = get(obj(tool, "tool"), "functionDeclarations")
        for decl in _list(declarations, "functionDeclarations"):
            declaration = obj(decl, "functionDeclaration")
            name = get(declaration, "name")
            if not isinstance(name, str) or not name:
                raise invalid("function declaration needs a name")
            names.append(name)
            behavior = get(declaration, "behavior")
            if behavior is not None and behavior not in BEHAVIORS:
                raise invalid(f"functionDeclaration.behavior must be one of {', '.join(BEHAVIORS)}")
            if behavior == "NON_BLOCKING":
                non_blocking.append(name)

    history = obj(get(body, "historyConfig"), "historyConfig")
    initial_history = get(history, "initialHistoryInClientContent", False)
    if not isinstance(initial_history, bool):
        raise invalid("historyConfig.initialHistoryInClientContent must be true or false")

    system = obj(get(body, "systemInstruction"), "systemInstruction")
    system_texts: list[str] = []
    for part in _list(get(system, "parts"), "systemInstruction.parts"):
        text = get(obj(part, "systemInstruction.parts[]"), "text")
        if text is not None and not isinstance(text, str):
            raise invalid("systemInstruction text must be a string")
        system_texts.append(text or "")
    system_text = " ".join(system_texts)
    return Setup(
        model=model.strip(),
        modalities=tuple(modalities_raw),
        voice_name=voice_name if isinstance(voice_name, str) else None,
        media_resolution=media_resolution,
        activity=activity,
        input_transcription=has(body, "inputAudioTranscription")
        or has(gen, "inputAudioTranscription"),
        output_transcription=has(body, "outputAudioTranscription")
        or has(gen, "outputAudioTranscription"),
        resumption=resumption,
        compression=compression,
        function_names=tuple(names),
        system_instruction=system_text,
        non_blocking=frozenset(non_blocking),
        initial_history=initial_history,
    )


# --- model names ------------------------------------------------------------------------

_MODEL_FORMS: Final = (
    re.compile(r"^models/(?P<id>[^/]+)$"),
    re.compile(r"^projects/[^/]+/models/(?P<id>[^/]+)$"),
    re.compile(r"^publishers/google/models/(?P<id>[^/]+)$"),
    re.compile(r"^projects/[^/]+/locations/[^/]+/publishers/google/models/(?P<id>[^/]+)$"),
)


def model_id(name: str) -> str | None:
    """The bare model id of any accepted model-name form (live-protocol.md §1.4), or None."""
    for form in _MODEL_FORMS:
        match = form.match(name)
        if match:
            return match.group("id")
    return None


# --- server messages ---------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON for one server frame."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def duration(seconds: float) -> str:
    """A protobuf Duration string (``"9.5s"``)."""
    return f"{round(seconds, 3):g}s"


def setup_complete(session_id: str | None = None) -> dict[str, Any]:
    """The first server message."""
    return {"setupComplete": {"sessionId": session_id} if session_id else {}}


def server_content(**fields: Any) -> dict[str, Any]:
    """``serverContent`` with the given (camelCase) fields."""
    return {"serverContent": fields}


def audio_part(pcm: bytes) -> dict[str, Any]:
    """A ``modelTurn`` part carrying 24 kHz PCM."""
    return {"inlineData": {"mimeType": OUTPUT_MIME, "data": encode_base64(pcm)}}


def model_turn(*parts: dict[str, Any]) -> dict[str, Any]:
    """A ``serverContent.modelTurn`` message."""
    return server_content(modelTurn={"role": "model", "parts": list(parts)})


def tool_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """``toolCall`` with ``[{id, name, args}]``."""
    return {"toolCall": {"functionCalls": calls}}


def tool_call_cancellation(ids: list[str]) -> dict[str, Any]:
    """``toolCallCancellation``."""
    return {"toolCallCancellation": {"ids": ids}}


def go_away(time_left_s: float) -> dict[str, Any]:
    """``goAway`` with the time left as a Duration string."""
    return {"goAway": {"timeLeft": duration(time_left_s)}}


def resumption_update(
    handle: str | None, *, resumable: bool = True, last_consumed: int | None = None
) -> dict[str, Any]:
    """``sessionResumptionUpdate``; the int64 index travels as a string."""
    body: dict[str, Any] = {"resumable": resumable}
    if handle:
        body["newHandle"] = handle
    if last_consumed is not None:
        body["lastConsumedClientMessageIndex"] = str(last_consumed)
    return {"sessionResumptionUpdate": body}


def usage_metadata(
    prompt: dict[str, int], response: dict[str, int], *, vertex: bool = False
) -> dict[str, Any]:
    """``usageMetadata``; Vertex names the response side ``candidates*``."""
    prompt_total, response_total = sum(prompt.values()), sum(response.values())
    resp = "candidates" if vertex else "response"
    return {
        "promptTokenCount": prompt_total,
        f"{resp}TokenCount": response_total,
        "totalTokenCount": prompt_total + response_total,
        "promptTokensDetails": [{"modality": m, "tokenCount": n} for m, n in prompt.items() if n],
        f"{resp}TokensDetails": [
            {"modality": m, "tokenCount": n} for m, n in response.items() if n
        ],
    }
