"""Sans-I/O codec for the Live API: build client frames, parse server frames. No sockets here.

Client frames are JSON text, one top-level member each, spelled the way the service documents
(camelCase). Server frames may come as text or binary (UTF-8 JSON) and may carry several
top-level members at once (``serverContent`` next to ``usageMetadata``); ``parse_server_frame``
turns each into its own message, in the order they appear.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
import pybase64

from agent.live.errors import ProtocolError
from agent.live.limits import (
    INT64_MAX,
    MAX_CANCELLED_IDS,
    MAX_FUNCTION_CALLS,
    MAX_GO_AWAY_S,
    MAX_HANDLE_CHARS,
    MAX_ID_CHARS,
    MAX_MIME_CHARS,
    MAX_NAME_CHARS,
    MAX_PARTS,
    MAX_SHORT_TEXT_CHARS,
    MAX_TEXT_CHARS,
    audio_rate_problem,
    json_problem,
)
from agent.live.types import (
    Content,
    FunctionCall,
    FunctionResponse,
    GenerativeContentBlob,
    JsonDict,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerMessage,
    LiveServerSetupComplete,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveServerVoiceActivity,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
    Part,
    Transcription,
)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# ---------------------------------------------------------------------------------------------
# Client -> server


def setup_frame(setup: Mapping[str, Any]) -> str:
    """``{"setup": {...}}``: the first message of every connection, sent exactly once."""
    return _dumps({"setup": dict(setup)})


def client_content_frame(turns: Sequence[Content], turn_complete: bool) -> str:
    """``clientContent``: turns appended to the context in order; ``turn_complete`` starts
    generation."""
    body: JsonDict = {"turns": [turn.to_wire() for turn in turns], "turnComplete": turn_complete}
    return _dumps({"clientContent": body})


def realtime_text_frame(text: str) -> str:
    """``realtimeInput.text``."""
    return _dumps({"realtimeInput": {"text": text}})


@lru_cache(maxsize=32)
def _blob_prefix(kind: str, mime_type: str) -> bytes:
    mime = orjson.dumps(mime_type)
    return b'{"realtimeInput":{"' + kind.encode() + b'":{"mimeType":' + mime + b',"data":"'


def _realtime_blob_frame(kind: str, blob: GenerativeContentBlob) -> bytes:
    # The per-chunk hot path. Base64 never needs JSON escaping, so the frame is assembled
    # around it without the JSON encoder, and as UTF-8 bytes in one join: a str would be
    # concatenated twice and encoded once more by the WebSocket (a camera frame is 100 KB+).
    data = blob.data
    b64 = pybase64.b64encode(data) if isinstance(data, bytes) else _checked_b64(data)
    return b"".join((_blob_prefix(kind, blob.mime_type), b64, b'"}}}'))


def _checked_b64(text: str) -> bytes:
    if '"' in text or "\\" in text or not text.isascii():
        raise ValueError("blob data is not base64 text")
    return text.encode("ascii")


def realtime_audio_frame(blob: GenerativeContentBlob) -> bytes:
    """``realtimeInput.audio``: one chunk of PCM (``audio/pcm;rate=16000``)."""
    return _realtime_blob_frame("audio", blob)


def realtime_video_frame(blob: GenerativeContentBlob) -> bytes:
    """``realtimeInput.video``: one image frame (``image/jpeg`` recommended)."""
    return _realtime_blob_frame("video", blob)


def media_chunk_frame(blob: GenerativeContentBlob) -> str:
    """``realtimeInput.mediaChunks`` with a single chunk: the service ignores all but the first."""
    data = blob.as_base64()
    return _dumps({"realtimeInput": {"mediaChunks": [{"mimeType": blob.mime_type, "data": data}]}})


def activity_start_frame() -> str:
    """``realtimeInput.activityStart``: the user started speaking (client-side detection)."""
    return '{"realtimeInput":{"activityStart":{}}}'


def activity_end_frame() -> str:
    """``realtimeInput.activityEnd``: the user stopped speaking (client-side activity detection)."""
    return '{"realtimeInput":{"activityEnd":{}}}'


def audio_stream_end_frame() -> str:
    """``realtimeInput.audioStreamEnd``: the microphone paused (automatic activity detection)."""
    return '{"realtimeInput":{"audioStreamEnd":true}}'


def tool_response_frame(responses: Iterable[FunctionResponse]) -> str:
    """``toolResponse``: every response in one frame.

    A response the wire encoder refuses (keys that are not strings, integers over 64 bits,
    nesting past its limit) goes as an error payload for its call, so every call is answered.
    """
    responses = list(responses)
    try:
        return _dumps({"toolResponse": {"functionResponses": [r.to_wire() for r in responses]}})
    except TypeError:  # orjson.JSONEncodeError
        wire = [encodable_response(r)[0].to_wire() for r in responses]
        return _dumps({"toolResponse": {"functionResponses": wire}})


def encodable_response(response: FunctionResponse) -> tuple[FunctionResponse, str | None]:
    """``response`` if the wire encoder takes it; otherwise the same call answered with
    ``{"error": ...}``, and why."""
    try:
        _dumps(response.to_wire())
    except TypeError as exc:  # orjson.JSONEncodeError
        reason = f"the result cannot be sent as JSON: {exc}"
        return dataclasses.replace(response, response={"error": reason}), reason
    return response, None


# ---------------------------------------------------------------------------------------------
# Server -> client


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a server frame that was dropped. ``kind`` is one of ``PROBLEM_KINDS``."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return self.detail


PROBLEM_KINDS = ("shape", "audio", "size", "range")
"""``shape``: a member that is not what the protocol says; ``audio``: a mime type or rate that
cannot be played; ``size``: more, longer or deeper than ``agent.live.limits`` allows; ``range``:
a number outside its field's range."""


class _Dropped(ValueError):
    """A field the parser leaves out, and why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(slots=True)
class ServerFrame:
    """What one server frame held.

    ``messages`` are the known members, in order. ``unknown`` lists top-level keys this client
    does not know (newer protocol versions add some); ``problems`` describes what was dropped:
    members with the wrong shape, and fields outside ``agent.live.limits`` (the rest of their
    member is kept). Neither stops the session.
    """

    messages: list[LiveServerMessage | LiveServerSetupComplete] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def drop(self, kind: str, detail: str) -> None:
        self.problems.append(Problem(kind, detail))


_Parser = Callable[[Any, ServerFrame], "LiveServerMessage | LiveServerSetupComplete"]


def parse_server_frame(data: str | bytes | bytearray) -> ServerFrame:
    """Parse one server frame.

    Raises ``ProtocolError`` when the frame is not UTF-8 JSON. A frame that is JSON but not an
    object is reported in ``problems`` with no messages. Never raises anything else.
    """
    obj = _loads(data)
    frame = ServerFrame()
    if not isinstance(obj, dict):
        frame.drop("shape", f"server frame is a JSON {type(obj).__name__}, not an object")
        return frame
    for key, body in obj.items():
        parse: _Parser | None = _PARSERS.get(key)
        if parse is None:
            if len(frame.unknown) < MAX_UNKNOWN_MEMBERS:
                frame.unknown.append(key[:MAX_SHORT_TEXT_CHARS])
            continue
        try:
            frame.messages.append(parse(body, frame))
        except _Dropped as exc:
            frame.drop(exc.kind, f"{key}: {exc}")
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            frame.drop("shape", f"{key}: {exc}")
    return frame


MAX_UNKNOWN_MEMBERS = 16
"""Unknown top-level keys listed per frame; more are not listed (each is logged)."""


def _loads(data: str | bytes | bytearray) -> Any:
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        if "number" not in str(exc):
            raise ProtocolError(f"server frame is not JSON: {exc}") from None
    # orjson reads numbers as 64-bit integers or doubles. A frame with a number beyond a
    # double (an integer of 400 digits in function call arguments) is still JSON: the
    # standard library reads it, with integers exact and every other number finite.
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ProtocolError(f"server frame is not JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]}... is beyond a double")
    return number


def _obj(value: Any, what: str) -> JsonDict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not an object")
    return value


def _short_text(value: Any) -> str | None:
    """A short free-text field (an id, a reason, a status); None when absent or too long."""
    if isinstance(value, str) and len(value) <= MAX_SHORT_TEXT_CHARS:
        return value
    return None


def _bounded_json(value: Any, what: str, frame: ServerFrame) -> Any | None:
    """A free-form JSON value, or None (dropped) when it is too deep or too large."""
    problem = json_problem(value)
    if problem is None:
        return value
    frame.drop("size", f"{what} is {problem}")
    return None


def _parse_setup_complete(body: Any, frame: ServerFrame) -> LiveServerSetupComplete:
    session_id = body.get("sessionId") if isinstance(body, dict) else None
    return LiveServerSetupComplete(session_id=_short_text(session_id))


def _parse_blob(inline: JsonDict) -> GenerativeContentBlob:
    mime = inline.get("mimeType", "")
    data = inline.get("data", "")
    if not isinstance(mime, str) or not isinstance(data, str):
        raise _Dropped("shape", "inlineData has a mimeType or data that is not a string")
    if len(mime) > MAX_MIME_CHARS:
        raise _Dropped("audio", f"mime type of {len(mime)} characters")
    if mime.startswith("audio/"):
        problem = audio_rate_problem(mime)
        if problem is not None:
            raise _Dropped("audio", problem)
    return GenerativeContentBlob(mime, data)


def _parse_part(raw: Any, frame: ServerFrame) -> Part | None:
    """One part; None when all it held was dropped."""
    part = _obj(raw, "part")
    inline = part.get("inlineData")
    if len(part) == 1 and isinstance(inline, dict):  # the common case: a chunk of speech
        try:
            return Part(inline_data=_parse_blob(inline))
        except _Dropped as exc:
            frame.drop(exc.kind, f"modelTurn part: {exc}")
            return None
    blob = None
    if isinstance(inline, dict):
        try:
            blob = _parse_blob(inline)
        except _Dropped as exc:
            frame.drop(exc.kind, f"modelTurn part: {exc}")
    text = part.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        frame.drop("size", f"modelTurn part: text of {len(text)} characters")
        text = None
    call = part.get("functionCall")
    extra = {
        k: v for k, v in part.items() if k not in ("text", "inlineData", "thought", "functionCall")
    }
    return Part(
        text=text if isinstance(text, str) else None,
        inline_data=blob,
        function_call=_checked_call(call, frame) if isinstance(call, dict) else None,
        thought=part.get("thought") is True or None,
        extra=_bounded_json(extra, "modelTurn part", frame) if extra else None,
    )


def _parse_content(raw: Any, frame: ServerFrame) -> Content:
    content = _obj(raw, "modelTurn")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise TypeError("modelTurn.parts is not a list")
    if len(parts) > MAX_PARTS:
        frame.drop("size", f"modelTurn has {len(parts)} parts; the first {MAX_PARTS} are kept")
        parts = parts[:MAX_PARTS]
    role = content.get("role")
    kept = [_parse_part(p, frame) for p in parts]
    return Content(role=_short_text(role), parts=[p for p in kept if p is not None])


def _parse_transcription(raw: Any, what: str, frame: ServerFrame) -> Transcription | None:
    if not isinstance(raw, dict):
        return None
    text = raw.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        frame.drop("size", f"{what} of {len(text)} characters")
        return None
    return Transcription(
        text=text if isinstance(text, str) else "", finished=raw.get("finished") is True
    )


def _parse_server_content(body: Any, frame: ServerFrame) -> LiveServerContent:
    content = _obj(body, "serverContent")
    model_turn = content.get("modelTurn")
    grounding = content.get("groundingMetadata")
    return LiveServerContent(
        model_turn=_parse_content(model_turn, frame) if model_turn is not None else None,
        turn_complete=content.get("turnComplete") is True,
        interrupted=content.get("interrupted") is True,
        generation_complete=content.get("generationComplete") is True,
        waiting_for_input=content.get("waitingForInput") is True,
        input_transcription=_parse_transcription(
            content.get("inputTranscription"), "inputTranscription", frame
        ),
        output_transcription=_parse_transcription(
            content.get("outputTranscription"), "outputTranscription", frame
        ),
        turn_complete_reason=_short_text(content.get("turnCompleteReason")),
        interaction_status=_short_text(content.get("interactionStatus")),
        grounding_metadata=_bounded_json(grounding, "groundingMetadata", frame)
        if isinstance(grounding, dict)
        else None,
    )


def _parse_function_call(raw: Any) -> FunctionCall:
    call = _obj(raw, "functionCall")
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("functionCall has no name")
    if len(name) > MAX_NAME_CHARS:
        raise _Dropped("size", f"function name of {len(name)} characters")
    args = call.get("args")
    call_id = call.get("id")
    if isinstance(call_id, str) and len(call_id) > MAX_ID_CHARS:
        raise _Dropped("size", f"function call id of {len(call_id)} characters")
    if isinstance(args, dict) and (problem := json_problem(args)) is not None:
        raise _Dropped("size", f"arguments of {name} are {problem}")
    return FunctionCall(
        name=name,
        args=args if isinstance(args, dict) else {},
        id=call_id if isinstance(call_id, str) and call_id else None,
    )


def _checked_call(raw: Any, frame: ServerFrame) -> FunctionCall | None:
    """A function call of a part or a toolCall; None (dropped) when a field is out of bounds."""
    try:
        return _parse_function_call(raw)
    except _Dropped as exc:
        frame.drop(exc.kind, f"functionCall: {exc}")
        return None


def _parse_tool_call(body: Any, frame: ServerFrame) -> LiveServerToolCall:
    calls = _obj(body, "toolCall").get("functionCalls") or []
    if not isinstance(calls, list):
        raise TypeError("toolCall.functionCalls is not a list")
    if len(calls) > MAX_FUNCTION_CALLS:
        frame.drop(
            "size", f"toolCall has {len(calls)} calls; the first {MAX_FUNCTION_CALLS} are kept"
        )
        calls = calls[:MAX_FUNCTION_CALLS]
    parsed = [_checked_call(c, frame) for c in calls]
    kept = [c for c in parsed if c is not None]
    if calls and not kept:
        raise _Dropped("size", "every function call was dropped")
    return LiveServerToolCall(function_calls=kept)


def _parse_tool_call_cancellation(body: Any, frame: ServerFrame) -> LiveServerToolCallCancellation:
    ids = _obj(body, "toolCallCancellation").get("ids") or []
    if not isinstance(ids, list):
        raise TypeError("toolCallCancellation.ids is not a list")
    if len(ids) > MAX_CANCELLED_IDS:
        frame.drop(
            "size", f"toolCallCancellation has {len(ids)} ids; the first "
            f"{MAX_CANCELLED_IDS} are kept",
        )  # fmt: skip
        ids = ids[:MAX_CANCELLED_IDS]
    kept = [
        str(i) for i in ids
        if isinstance(i, (str, int)) and not isinstance(i, bool) and len(str(i)) <= MAX_ID_CHARS
    ]  # fmt: skip
    if len(kept) < len(ids):
        frame.drop("size", "toolCallCancellation ids that are not short strings were dropped")
    return LiveServerToolCallCancellation(function_ids=kept)


def parse_duration(value: Any) -> float:
    """A protobuf Duration (``"30s"``, ``"3.000000001s"``) in seconds; 0 when it is not one.

    Numbers are taken as seconds. Never raises, never returns NaN or a negative number.
    """
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.endswith("s") and len(value) <= MAX_SHORT_TEXT_CHARS:
        try:
            seconds = float(value[:-1])
        except ValueError:
            return 0.0
    else:
        return 0.0
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return 0.0
    return seconds


def _parse_go_away(body: Any, frame: ServerFrame) -> LiveServerGoingAwayNotice:
    time_left = parse_duration(_obj(body, "goAway").get("timeLeft"))
    if time_left > MAX_GO_AWAY_S:
        frame.drop("range", f"goAway timeLeft of {time_left:g} s is taken as {MAX_GO_AWAY_S:g} s")
        time_left = MAX_GO_AWAY_S
    return LiveServerGoingAwayNotice(time_left=time_left)


def _parse_int(value: Any) -> int | None:
    """int64 fields arrive as JSON strings (``"7"``) or, from lenient servers, numbers.

    None when the value is not an integer in 0..2**63-1."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= INT64_MAX:
        return value
    return None


def _parse_resumption_update(body: Any, frame: ServerFrame) -> LiveSessionResumptionUpdate:
    update = _obj(body, "sessionResumptionUpdate")
    handle = update.get("newHandle")
    if isinstance(handle, str) and len(handle) > MAX_HANDLE_CHARS:
        raise _Dropped("size", f"a resumption handle of {len(handle)} characters")
    return LiveSessionResumptionUpdate(
        new_handle=handle if isinstance(handle, str) and handle else None,
        resumable=update.get("resumable") is True,
        last_consumed_client_message_index=_parse_int(update.get("lastConsumedClientMessageIndex")),
    )


_USAGE_COUNTS = {
    "promptTokenCount": "prompt_token_count",
    "cachedContentTokenCount": "cached_content_token_count",
    "responseTokenCount": "response_token_count",
    "candidatesTokenCount": "response_token_count",  # Vertex spelling
    "toolUsePromptTokenCount": "tool_use_prompt_token_count",
    "thoughtsTokenCount": "thoughts_token_count",
    "totalTokenCount": "total_token_count",
}


def _parse_usage(body: Any, frame: ServerFrame) -> LiveUsageMetadata:
    usage = _obj(body, "usageMetadata")
    counts: dict[str, Any] = {}
    details: JsonDict = {}
    for key, value in usage.items():
        name = _USAGE_COUNTS.get(key)
        if name is not None:
            number = _parse_int(value)
            if number is not None:
                counts[name] = number
            elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
                frame.drop("range", f"usageMetadata.{key} is not an int64 count")
        else:
            details[key] = value
    return LiveUsageMetadata(**counts, details=_bounded_json(details, "usageMetadata", frame) or {})


def _parse_voice_activity(body: Any, frame: ServerFrame) -> LiveServerVoiceActivity:
    signal = _obj(body, "voiceActivity")
    kind = signal.get("voiceActivityType") or signal.get("vadSignalType") or ""
    if not isinstance(kind, str) or len(kind) > MAX_SHORT_TEXT_CHARS:
        raise _Dropped("shape", "the voice activity type is not a short string")
    return LiveServerVoiceActivity(activity_type=kind)


_PARSERS: dict[str, _Parser] = {
    "setupComplete": _parse_setup_complete,
    "serverContent": _parse_server_content,
    "toolCall": _parse_tool_call,
    "toolCallCancellation": _parse_tool_call_cancellation,
    "goAway": _parse_go_away,
    "sessionResumptionUpdate": _parse_resumption_update,
    "usageMetadata": _parse_usage,
    "voiceActivity": _parse_voice_activity,
    "voiceActivityDetectionSignal": _parse_voice_activity,
}
