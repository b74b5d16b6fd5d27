"""The Live client's codec against hostile server frames and hostile tool results.

``parse_server_frame`` either returns a frame whose every field is within
``agent.live.limits`` or raises ``ProtocolError``; what the client does next with a parsed
message (decode and resample audio, read a call's arguments) raises nothing but the documented
``ValueError`` of undecodable audio. ``tool_response_frame`` always answers, with valid JSON.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agent.live import limits
from agent.live.errors import ProtocolError
from agent.live.protocol import parse_server_frame, tool_response_frame
from agent.live.types import (
    FunctionResponse,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
)
from agent.media.audio.convert import RateAdapters

KEYS = st.sampled_from([
    "setupComplete", "serverContent", "toolCall", "toolCallCancellation", "goAway",
    "sessionResumptionUpdate", "usageMetadata", "voiceActivity", "modelTurn", "parts",
    "inlineData", "mimeType", "data", "text", "functionCall", "functionCalls", "name", "args",
    "id", "ids", "timeLeft", "newHandle", "resumable", "inputTranscription",
    "outputTranscription", "turnComplete", "interrupted", "totalTokenCount", "role",
])  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1, 2**63, 2**64, 10**30]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=40))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=40,
)

RATES = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["", "NaN", "inf", "1e5", "24000.5", " 24000", "0x5dc0", "²⁴", "9" * 400]),
    st.text(max_size=12),
)
MIMES = st.one_of(
    RATES.map(lambda rate: f"audio/pcm;rate={rate}"),
    st.text(max_size=60).map(lambda tail: "audio/" + tail),
    st.text(max_size=60),
)
SPEECH = base64.b64encode(bytes(960)).decode()


def valid_frames() -> list[dict[str, Any]]:
    return [
        {"setupComplete": {"sessionId": "s1"}},
        {"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": SPEECH}}]}}},
        {"serverContent": {"outputTranscription": {"text": "hello"}, "turnComplete": True}},
        {"toolCall": {"functionCalls": [{"name": "set_lamp", "id": "c1", "args": {"on": True}}]}},
        {"toolCallCancellation": {"ids": ["c1"]}},
        {"goAway": {"timeLeft": "30s"}},
        {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}},
        {"usageMetadata": {"totalTokenCount": 12, "promptTokenCount": "7"}},
        {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}},
    ]  # fmt: skip


def mutate(value: Any, path: list[int], replacement: Any) -> Any:
    """``value`` with the subtree that ``path`` picks (index by index, modulo) replaced."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return replacement
    if isinstance(value, dict):
        keys = list(value)
        key = keys[path[0] % len(keys)]
        return {**value, key: mutate(value[key], path[1:], replacement)}
    at = path[0] % len(value)
    return [*value[:at], mutate(value[at], path[1:], replacement), *value[at + 1 :]]


def check(raw: str | bytes) -> None:
    """Parse ``raw`` and use every message as the client does; only clean outcomes pass."""
    try:
        frame = parse_server_frame(raw)
    except ProtocolError:
        return
    adapters = RateAdapters(24_000)
    for message in frame.messages:
        if isinstance(message, LiveServerContent):
            for blob in message.audio_chunks():
                rate = blob.sample_rate or 24_000
                assert limits.MIN_AUDIO_RATE <= rate <= limits.MAX_AUDIO_RATE
                try:
                    pcm = blob.as_bytes()
                except ValueError:
                    continue
                pcm = pcm[: len(pcm) - len(pcm) % 2]
                assert sum(map(len, adapters.pieces(pcm, rate))) <= len(pcm) * 3 + 64
            parts = message.model_turn.parts if message.model_turn else []
            assert len(parts) <= limits.MAX_PARTS
            for part in parts:
                assert part.text is None or len(part.text) <= limits.MAX_TEXT_CHARS
            for transcript in (message.input_transcription, message.output_transcription):
                assert transcript is None or len(transcript.text) <= limits.MAX_TEXT_CHARS
        elif isinstance(message, LiveServerToolCall):
            assert len(message.function_calls) <= limits.MAX_FUNCTION_CALLS
            for call in message.function_calls:
                assert len(call.name) <= limits.MAX_NAME_CHARS
                assert limits.json_problem(call.args) is None
                json.dumps(call.args)  # what the audit log renders
        elif isinstance(message, LiveServerToolCallCancellation):
            assert len(message.function_ids) <= limits.MAX_CANCELLED_IDS
        elif isinstance(message, LiveServerGoingAwayNotice):
            assert 0.0 <= message.time_left <= limits.MAX_GO_AWAY_S
        elif isinstance(message, LiveSessionResumptionUpdate):
            assert message.new_handle is None or len(message.new_handle) <= limits.MAX_HANDLE_CHARS
        elif isinstance(message, LiveUsageMetadata):
            assert (message.total_token_count or 0) <= limits.INT64_MAX
    assert len(frame.unknown) <= 16


@given(JSON)
def test_any_json_value_parses_cleanly(value: Any) -> None:
    check(json.dumps(value))


@given(st.sampled_from(valid_frames()), st.lists(st.integers(0, 50), max_size=6), JSON)
def test_mutated_valid_frames_parse_cleanly(frame: Any, path: list[int], replacement: Any) -> None:
    check(json.dumps(mutate(frame, path, replacement)))


@given(st.sampled_from(valid_frames()), st.integers(0, 400), st.binary(max_size=8))
def test_frames_with_bytes_spliced_in_parse_cleanly(frame: Any, at: int, junk: bytes) -> None:
    raw = json.dumps(frame).encode()
    at %= len(raw) + 1
    check(raw[:at] + junk + raw[at + len(junk) :])


@given(st.lists(MIMES, min_size=1, max_size=8), st.binary(max_size=200))
def test_hostile_mime_types_never_reach_a_resampler(mimes: list[str], pcm: bytes) -> None:
    data = base64.b64encode(pcm).decode()
    parts = [{"inlineData": {"mimeType": mime, "data": data}} for mime in mimes]
    check(json.dumps({"serverContent": {"modelTurn": {"parts": parts}}}))


KEYS_ANY_TYPE = st.one_of(st.text(max_size=6), st.integers(), st.none())
RESULTS = st.recursive(
    st.one_of(SCALARS, st.sampled_from([math.nan, math.inf, -math.inf, 2**64, -(2**100)])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(KEYS_ANY_TYPE, inner, max_size=4),
    ),
    max_leaves=20,
)


@given(st.lists(st.dictionaries(st.text(max_size=6), RESULTS, max_size=4), max_size=4))
def test_every_tool_result_gets_an_answer_on_the_wire(results: list[dict[str, Any]]) -> None:
    responses = [
        FunctionResponse(id=f"c{n}", name="tool", response=result)
        for n, result in enumerate(results)
    ]
    sent = orjson.loads(tool_response_frame(responses))
    answered = sent["toolResponse"]["functionResponses"]
    assert [r["id"] for r in answered] == [r.id for r in responses]
