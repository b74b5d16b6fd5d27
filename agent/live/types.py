"""Wire types of the Live API, in Python names.

Client-side request types (``Part``, ``Content``, ``GenerativeContentBlob``, ``FunctionResponse``
and the setup configuration) know how to turn themselves into wire dicts (``to_wire()``).
Server messages are the ``LiveServer*`` dataclasses yielded by ``LiveSession.receive()``; each has
a ``type`` discriminator with the same value as the Firebase SDK's ``LiveResponseType``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import pybase64

JsonDict = dict[str, Any]

AUDIO_INPUT_MIME = "audio/pcm;rate=16000"
"""What the service expects for microphone audio: 16-bit little-endian mono PCM at 16 kHz."""

AUDIO_OUTPUT_RATE = 24_000
"""The sample rate of the model's speech when its mime type does not say otherwise."""


def camel_case(name: str) -> str:
    """``input_audio_transcription`` -> ``inputAudioTranscription``."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def to_wire(value: Any) -> Any:
    """Turn a request value into its JSON form: dataclasses to camelCase dicts, ``None`` omitted.

    Dicts are passed through unchanged (they are taken to be wire JSON already), so callers can
    always fall back to spelling a field exactly as the service does.
    """
    wire = getattr(value, "to_wire", None)
    if wire is not None:
        return wire()
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    return value


class _WireDataclass:
    """Mixin: ``to_wire()`` maps fields to camelCase keys, skipping ``None`` and ``extra``."""

    _wire_names: ClassVar[Mapping[str, str]] = {}

    def to_wire(self) -> JsonDict:
        out: JsonDict = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None or f.name == "extra":
                continue
            out[self._wire_names.get(f.name) or camel_case(f.name)] = to_wire(value)
        extra = getattr(self, "extra", None)
        if extra:
            out.update(extra)
        return out


# ---------------------------------------------------------------------------------------------
# Content


@dataclass(frozen=True, slots=True)
class GenerativeContentBlob:
    """Inline media: a mime type and the bytes.

    ``data`` is either the raw bytes (encoded for you on the way out) or base64 text, standard or
    URL-safe, as the Firebase SDK takes it. Received blobs keep the service's base64 text until
    ``as_bytes()`` is called, so a message that is never played costs no decoding.
    """

    mime_type: str
    data: bytes | str

    def as_bytes(self) -> bytes:
        """The decoded bytes. Raises ``ValueError`` for base64 that does not decode."""
        if isinstance(self.data, bytes):
            return self.data
        return decode_base64(self.data)

    def as_base64(self) -> str:
        """The data as standard base64 text."""
        if isinstance(self.data, bytes):
            return pybase64.b64encode_as_string(self.data)
        return self.data

    def to_wire(self) -> JsonDict:
        return {"mimeType": self.mime_type, "data": self.as_base64()}

    @property
    def sample_rate(self) -> int | None:
        """The ``rate=`` parameter of an ``audio/pcm`` mime type, if any."""
        return mime_rate(self.mime_type)


def mime_rate(mime_type: str) -> int | None:
    """``audio/pcm;rate=24000`` -> 24000; ``None`` when the mime type names no rate."""
    for param in mime_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "rate":
            value = value.strip()
            # At most 9 digits: never an int() of a hostile length, never a rate past 1 GHz.
            if value.isascii() and value.isdigit() and len(value) <= 9:
                return int(value)
            return None
    return None


def decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding.

    Raises ``ValueError`` (``binascii.Error``) on anything else.
    """
    missing = -len(text) % 4
    if missing:
        text += "=" * missing
    try:
        if "-" in text or "_" in text:
            return pybase64.b64decode(text, altchars="-_", validate=True)
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function the model asks the client to run. ``id`` is absent on some Vertex models."""

    name: str
    args: JsonDict = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionResponse(_WireDataclass):
    """The result of a ``FunctionCall``, sent back with ``send_function_responses``."""

    name: str
    response: JsonDict
    id: str | None = None
    will_continue: bool | None = None
    scheduling: str | None = None
    """``SILENT``, ``WHEN_IDLE`` or ``INTERRUPT``: for results of ``NON_BLOCKING`` functions."""


@dataclass(frozen=True, slots=True)
class Part(_WireDataclass):
    """One part of a ``Content``. Set one of the fields.

    Parts the client does not model (``executableCode``, ``codeExecutionResult``, ``fileData`` ...)
    are kept verbatim in ``extra``.
    """

    text: str | None = None
    inline_data: GenerativeContentBlob | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    thought: bool | None = None
    extra: JsonDict | None = None

    def to_wire(self) -> JsonDict:
        out = _WireDataclass.to_wire(self)
        if self.function_call is not None:
            call = self.function_call
            out["functionCall"] = {"name": call.name, "args": call.args}
            if call.id is not None:
                out["functionCall"]["id"] = call.id
        return out


@dataclass(frozen=True, slots=True)
class Content(_WireDataclass):
    """A turn: a role (``user``, ``model``, ``function``, ``system``) and its parts."""

    role: str | None
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Transcription:
    """A fragment of a transcript. Fragments arrive in order and are meant to be concatenated."""

    text: str = ""
    finished: bool = False


# ---------------------------------------------------------------------------------------------
# Setup configuration


@dataclass(frozen=True, slots=True)
class SpeechConfig:
    """The voice the model speaks with."""

    voice_name: str | None = None
    language_code: str | None = None

    def to_wire(self) -> JsonDict:
        out: JsonDict = {}
        if self.voice_name is not None:
            out["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.voice_name}}
        if self.language_code is not None:
            out["languageCode"] = self.language_code
        return out


@dataclass(frozen=True, slots=True)
class AudioTranscriptionConfig(_WireDataclass):
    """Ask for transcripts of the user's or the model's speech (``{}`` on the wire)."""

    language_codes: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ContextWindowCompression:
    """Sliding-window compression: sessions are not capped at 15 (audio) or 2 (video) minutes.

    ``target_tokens`` defaults to half of ``trigger_tokens`` on the service side.
    """

    trigger_tokens: int | None = None
    target_tokens: int | None = None

    def to_wire(self) -> JsonDict:
        window: JsonDict = {}
        if self.target_tokens is not None:
            window["targetTokens"] = self.target_tokens
        out: JsonDict = {"slidingWindow": window}
        if self.trigger_tokens is not None:
            out["triggerTokens"] = self.trigger_tokens
        return out


StartSensitivity = Literal["START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"]
EndSensitivity = Literal["END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"]
MediaResolution = Literal[
    "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH"
]


@dataclass(frozen=True, slots=True)
class AutomaticActivityDetection(_WireDataclass):
    """The service's own voice activity detection. ``disabled=True`` means the client sends
    ``activityStart`` / ``activityEnd`` itself."""

    disabled: bool | None = None
    start_of_speech_sensitivity: StartSensitivity | None = None
    end_of_speech_sensitivity: EndSensitivity | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RealtimeInputConfig(_WireDataclass):
    """How realtime input is turned into turns."""

    automatic_activity_detection: AutomaticActivityDetection | None = None
    activity_handling: Literal["START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"] | None = None
    turn_coverage: str | None = None


@dataclass(frozen=True, slots=True)
class SessionResumptionConfig(_WireDataclass):
    """``handle=None`` asks for resumption handles without resuming; a handle resumes that session.
    ``transparent`` is honoured by Vertex AI only."""

    handle: str | None = None
    transparent: bool | None = None


@dataclass(frozen=True, slots=True)
class LiveGenerationConfig(_WireDataclass):
    """Generation settings for a Live session.

    As in the Firebase SDK, the transcription and compression settings may be given here; they are
    moved to the top level of the setup message, where the service expects them.
    """

    response_modalities: list[Literal["AUDIO", "TEXT", "IMAGE"]] | None = None
    speech_config: SpeechConfig | None = None
    media_resolution: MediaResolution | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    enable_affective_dialog: bool | None = None
    thinking_config: JsonDict | None = None
    input_audio_transcription: AudioTranscriptionConfig | None = None
    output_audio_transcription: AudioTranscriptionConfig | None = None
    context_window_compression: ContextWindowCompression | None = None
    extra: JsonDict | None = None


HOISTED_GENERATION_FIELDS = (
    "input_audio_transcription",
    "output_audio_transcription",
    "context_window_compression",
)


@dataclass(frozen=True, slots=True)
class FunctionDeclaration(_WireDataclass):
    """A function the model may call. ``parameters`` is a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: JsonDict | None = None
    behavior: Literal["BLOCKING", "NON_BLOCKING"] | None = None


@dataclass(frozen=True, slots=True)
class Tool(_WireDataclass):
    """A group of tools: function declarations, or one of the service's built-in tools."""

    function_declarations: list[FunctionDeclaration] | None = None
    google_search: JsonDict | None = None
    code_execution: JsonDict | None = None
    url_context: JsonDict | None = None


# ---------------------------------------------------------------------------------------------
# Server messages


@dataclass(frozen=True, slots=True)
class LiveServerSetupComplete:
    """The first server message of a connection. Consumed by ``connect()``, never yielded."""

    session_id: str | None = None
    type: Literal["setupComplete"] = "setupComplete"


@dataclass(frozen=True, slots=True)
class LiveServerContent:
    """Content the model produced, transcripts, and turn boundaries."""

    model_turn: Content | None = None
    turn_complete: bool = False
    interrupted: bool = False
    generation_complete: bool = False
    waiting_for_input: bool = False
    input_transcription: Transcription | None = None
    output_transcription: Transcription | None = None
    turn_complete_reason: str | None = None
    interaction_status: str | None = None
    grounding_metadata: JsonDict | None = None
    type: Literal["serverContent"] = "serverContent"

    def audio_chunks(self) -> list[GenerativeContentBlob]:
        """Every audio part of the model's turn, in order (a message may carry several)."""
        if self.model_turn is None:
            return []
        return [
            part.inline_data
            for part in self.model_turn.parts
            if part.inline_data is not None and part.inline_data.mime_type.startswith("audio/")
        ]

    @property
    def text(self) -> str:
        """The non-thought text parts of the model's turn, joined."""
        if self.model_turn is None:
            return ""
        return "".join(p.text for p in self.model_turn.parts if p.text and not p.thought)


@dataclass(frozen=True, slots=True)
class LiveServerToolCall:
    """The model asks the client to run one or more functions."""

    function_calls: list[FunctionCall]
    type: Literal["toolCall"] = "toolCall"


@dataclass(frozen=True, slots=True)
class LiveServerToolCallCancellation:
    """Earlier function calls the client should cancel; no response is expected for them.

    The service sends these as ``ids``; the Firebase SDK's type calls them ``functionIds``.
    """

    function_ids: list[str]
    type: Literal["toolCallCancellation"] = "toolCallCancellation"


@dataclass(frozen=True, slots=True)
class LiveServerGoingAwayNotice:
    """The connection will be closed in ``time_left`` seconds; resume on a new one before then."""

    time_left: float
    type: Literal["goingAwayNotice"] = "goingAwayNotice"


@dataclass(frozen=True, slots=True)
class LiveSessionResumptionUpdate:
    """A new handle to resume the session with. Only ``resumable`` handles are worth keeping."""

    new_handle: str | None = None
    resumable: bool = False
    last_consumed_client_message_index: int | None = None
    type: Literal["sessionResumptionUpdate"] = "sessionResumptionUpdate"


@dataclass(frozen=True, slots=True)
class LiveUsageMetadata:
    """Token accounting for the session so far. Vertex's ``candidatesTokenCount`` spelling is
    read into ``response_token_count``."""

    prompt_token_count: int = 0
    cached_content_token_count: int = 0
    response_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    thoughts_token_count: int = 0
    total_token_count: int = 0
    details: JsonDict = field(default_factory=dict)
    type: Literal["usageMetadata"] = "usageMetadata"


@dataclass(frozen=True, slots=True)
class LiveServerVoiceActivity:
    """The service's voice activity signal (``ACTIVITY_START`` / ``ACTIVITY_END``, or the
    allow-listed ``VAD_SIGNAL_TYPE_SOS`` / ``VAD_SIGNAL_TYPE_EOS``)."""

    activity_type: str
    type: Literal["voiceActivity"] = "voiceActivity"


LiveServerMessage = (
    LiveServerContent
    | LiveServerToolCall
    | LiveServerToolCallCancellation
    | LiveServerGoingAwayNotice
    | LiveSessionResumptionUpdate
    | LiveUsageMetadata
    | LiveServerVoiceActivity
)
"""Everything ``LiveSession.receive()`` yields."""
