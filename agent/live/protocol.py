"""Sans-I/O codec for the Live API: build client frames, parse server frames. No sockets here.

Client frames are JSON text, one top-level member each, spelled the way the service documents
(camelCase). Server frames may come as text or binary (UTF-8 JSON) and may carry several
top-level members at once (``serverContent`` next to ``usageMetadata``); ``parse_server_frame``
turns each into its own message, in the order they appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
import pybase64

from agent.live.errors import ProtocolError
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
def _blob_prefix(kind: str, mime_type: str) -> str:
    return '{"realtimeInput":{"' + kind + '":{"mimeType":' + _dumps(mime_type) + ',"data":"'


def _realtime_blob_frame(kind: str, blob: GenerativeContentBlob) -> str:
    # Base64 text never needs JSON escaping, so the frame is assembled around it without
    # running the payload through the JSON encoder: this is the per-chunk hot path.
    data = blob.data
    b64 = pybase64.b64encode_as_string(data) if isinstance(data, bytes) else _checked_b64(data)
    return _blob_prefix(kind, blob.mime_type) + b64 + '"}}}'


def _checked_b64(text: str) -> str:
    if '"' in text or "\\" in text:
        raise ValueError("blob data is not base64 text")
    return text


def realtime_audio_frame(blob: GenerativeContentBlob) -> str:
    """``realtimeInput.audio``: one chunk of PCM (``audio/pcm;rate=16000``)."""
    return _realtime_blob_frame("audio", blob)


def realtime_video_frame(blob: GenerativeContentBlob) -> str:
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
    """``toolResponse``: every response in one frame."""
    return _dumps({"toolResponse": {"functionResponses": [r.to_wire() for r in responses]}})


# ---------------------------------------------------------------------------------------------
# Server -> client


@dataclass(slots=True)
class ServerFrame:
    """What one server frame held.

    ``messages`` are the known members, in order. ``unknown`` lists top-level keys this client
    does not know (newer protocol versions add some); ``problems`` describes members that had
    the wrong shape and were skipped. Neither stops the session.
    """

    messages: list[LiveServerMessage | LiveServerSetupComplete] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_server_frame(data: str | bytes | bytearray) -> ServerFrame:
    """Parse one server frame.

    Raises ``ProtocolError`` when the frame is not UTF-8 JSON. A frame that is JSON but not an
    object is reported in ``problems`` with no messages.
    """
    try:
        obj = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(f"server frame is not JSON: {exc}") from None
    frame = ServerFrame()
    if not isinstance(obj, dict):
        frame.problems.append(f"server frame is a JSON {type(obj).__name__}, not an object")
        return frame
    for key, body in obj.items():
        parse: Callable[[Any], LiveServerMessage | LiveServerSetupComplete] | None
        parse = _PARSERS.get(key)
        if parse is None:
            frame.unknown.append(key)
            continue
        try:
            frame.messages.append(parse(body))
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            frame.problems.append(f"{key}: {exc}")
    return frame


def _obj(value: Any, what: str) -> JsonDict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not an object")
    return value


def _parse_setup_complete(body: Any) -> LiveServerSetupComplete:
    session_id = body.get("sessionId") if isinstance(body, dict) else None
    return LiveServerSetupComplete(session_id=session_id if isinstance(session_id, str) else None)


def _parse_blob(inline: JsonDict) -> GenerativeContentBlob:
    return GenerativeContentBlob(str(inline.get("mimeType", "")), str(inline.get("data", "")))


def _parse_part(raw: Any) -> Part:
    part = _obj(raw, "part")
    inline = part.get("inlineData")
    if len(part) == 1 and isinstance(inline, dict):  # the common case: a chunk of speech
        return Part(inline_data=_parse_blob(inline))
    text = part.get("text")
    blob = _parse_blob(inline) if isinstance(inline, dict) else None
    call = part.get("functionCall")
    extra = {
        k: v for k, v in part.items() if k not in ("text", "inlineData", "thought", "functionCall")
    }
    return Part(
        text=text if isinstance(text, str) else None,
        inline_data=blob,
        function_call=_parse_function_call(call) if isinstance(call, dict) else None,
        thought=part.get("thought") is True or None,
        extra=extra or None,
    )


def _parse_content(raw: Any) -> Content:
    content = _obj(raw, "modelTurn")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise TypeError("modelTurn.parts is not a list")
    role = content.get("role")
    return Content(
        role=role if isinstance(role, str) else None, parts=[_parse_part(p) for p in parts]
    )


def _parse_transcription(raw: Any) -> Transcription | None:
    if not isinstance(raw, dict):
        return None
    text = raw.get("text")
    return Transcription(
        text=text if isinstance(text, str) else "", finished=raw.get("finished") is True
    )


def _parse_server_content(body: Any) -> LiveServerContent:
    content = _obj(body, "serverContent")
    model_turn = content.get("modelTurn")
    reason = content.get("turnCompleteReason")
    status = content.get("interactionStatus")
    grounding = content.get("groundingMetadata")
    return LiveServerContent(
        model_turn=_parse_content(model_turn) if model_turn is not None else None,
        turn_complete=content.get("turnComplete") is True,
        interrupted=content.get("interrupted") is True,
        generation_complete=content.get("generationComplete") is True,
        waiting_for_input=content.get("waitingForInput") is True,
        input_transcription=_parse_transcription(content.get("inputTranscription")),
        output_transcription=_parse_transcription(content.get("outputTranscription")),
        turn_complete_reason=reason if isinstance(reason, str) else None,
        interaction_status=status if isinstance(status, str) else None,
        grounding_metadata=grounding if isinstance(grounding, dict) else None,
    )


def _parse_function_call(raw: Any) -> FunctionCall:
    call = _obj(raw, "functionCall")
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("functionCall has no name")
    args = call.get("args")
    call_id = call.get("id")
    return FunctionCall(
        name=name,
        args=args if isinstance(args, dict) else {},
        id=call_id if isinstance(call_id, str) and call_id else None,
    )


def _parse_tool_call(body: Any) -> LiveServerToolCall:
    calls = _obj(body, "toolCall").get("functionCalls") or []
    if not isinstance(calls, list):
        raise TypeError("toolCall.functionCalls is not a list")
    return LiveServerToolCall(function_calls=[_parse_function_call(c) for c in calls])


def _parse_tool_call_cancellation(body: Any) -> LiveServerToolCallCancellation:
    ids = _obj(body, "toolCallCancellation").get("ids") or []
    if not isinstance(ids, list):
        raise TypeError("toolCallCancellation.ids is not a list")
    return LiveServerToolCallCancellation(function_ids=[str(i) for i in ids])


def parse_duration(value: Any) -> float:
    """A protobuf Duration (``"30s"``, ``"3.000000001s"``) in seconds; 0 when it is not one.

    Numbers are taken as seconds. Never raises, never returns NaN or a negative number.
    """
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return 0.0
    else:
        return 0.0
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return 0.0
    return seconds


def _parse_go_away(body: Any) -> LiveServerGoingAwayNotice:
    time_left = body.get("timeLeft") if isinstance(body, dict) else None
    return LiveServerGoingAwayNotice(time_left=parse_duration(time_left))


def _parse_int(value: Any) -> int | None:
    """int64 fields arrive as JSON strings (``"7"``) or, from lenient servers, numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _parse_resumption_update(body: Any) -> LiveSessionResumptionUpdate:
    update = _obj(body, "sessionResumptionUpdate")
    handle = update.get("newHandle")
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


def _parse_usage(body: Any) -> LiveUsageMetadata:
    usage = _obj(body, "usageMetadata")
    counts: dict[str, Any] = {}
    details: JsonDict = {}
    for key, value in usage.items():
        name = _USAGE_COUNTS.get(key)
        if name is not None:
            number = _parse_int(value)
            if number is not None:
                counts[name] = number
        else:
            details[key] = value
    return LiveUsageMetadata(**counts, details=details)


def _parse_voice_activity(body: Any) -> LiveServerVoiceActivity:
    signal = _obj(body, "voiceActivity")
    kind = signal.get("voiceActivityType") or signal.get("vadSignalType") or ""
    return LiveServerVoiceActivity(activity_type=str(kind))


_PARSERS: dict[str, Callable[[Any], LiveServerMessage | LiveServerSetupComplete]] = {
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
