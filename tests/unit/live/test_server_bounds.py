"""Every server field is bounded where it is parsed: what is out of bounds is dropped with a
problem of its kind, the rest of the message is kept, and nothing raises."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest

from agent.live import protocol
from agent.live.errors import ProtocolError
from agent.live.limits import (
    MAX_CANCELLED_IDS,
    MAX_FUNCTION_CALLS,
    MAX_GO_AWAY_S,
    MAX_PARTS,
    MAX_TEXT_CHARS,
    audio_rate_problem,
    json_problem,
)
from agent.live.types import (
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
    mime_rate,
)

SPEECH = base64.b64encode(bytes(480)).decode()


def parse(obj: Any) -> protocol.ServerFrame:
    return protocol.parse_server_frame(json.dumps(obj))


def audio(mime: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": SPEECH}}


def content(frame: protocol.ServerFrame) -> LiveServerContent:
    [message] = frame.messages
    assert isinstance(message, LiveServerContent)
    return message


@pytest.mark.parametrize(
    "mime",
    [
        "audio/pcm;rate=-1",
        "audio/pcm;rate=0",
        "audio/pcm;rate=1",
        "audio/pcm;rate=7999",
        "audio/pcm;rate=48001",
        f"audio/pcm;rate={2**64}",
        "audio/pcm;rate=" + "9" * 4000,
        "audio/pcm;rate=NaN",
        "audio/pcm;rate=24000.5",
        "audio/pcm;rate=",
        "audio/pcm; RATE = ²⁴",
        "audio/pcm;x=" + "y" * 200,
    ],
)
def test_unplayable_audio_parts_are_dropped_and_the_rest_of_the_message_kept(mime: str) -> None:
    frame = parse({"serverContent": {
        "modelTurn": {"parts": [audio(mime), audio("audio/pcm;rate=16000")]},
        "turnComplete": True,
    }})  # fmt: skip
    message = content(frame)
    assert message.turn_complete, "the turn boundary is not lost with the bad part"
    assert [b.mime_type for b in message.audio_chunks()] == ["audio/pcm;rate=16000"]
    assert [p.kind for p in frame.problems] == ["audio"]


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_every_speech_rate_is_played(rate: int) -> None:
    message = content(parse({"serverContent": {"modelTurn": {"parts": [
        audio(f"audio/pcm;rate={rate}")]}}}))  # fmt: skip
    [blob] = message.audio_chunks()
    assert blob.sample_rate == rate


def test_mime_rate_never_converts_a_hostile_length() -> None:
    assert mime_rate("audio/pcm;rate=" + "9" * 4000) is None
    assert mime_rate("audio/pcm;rate=24000") == 24000


def test_audio_rate_problem_names_what_is_wrong() -> None:
    assert audio_rate_problem("audio/pcm") is None
    assert audio_rate_problem("audio/pcm;rate=24000") is None
    assert "outside" in (audio_rate_problem("audio/pcm;rate=1") or "")
    assert "not a number" in (audio_rate_problem("audio/pcm;rate=x") or "")


def test_inline_data_that_is_not_text_is_dropped() -> None:
    frame = parse({"serverContent": {"modelTurn": {"parts": [
        {"inlineData": {"mimeType": "audio/pcm", "data": [1, 2]}}]}}})  # fmt: skip
    assert content(frame).audio_chunks() == []
    assert [p.kind for p in frame.problems] == ["shape"]


def test_parts_beyond_the_limit_are_dropped() -> None:
    parts = [audio("audio/pcm")] * (MAX_PARTS * 100)
    frame = parse({"serverContent": {"modelTurn": {"parts": parts}}})
    assert len(content(frame).audio_chunks()) == MAX_PARTS
    assert [p.kind for p in frame.problems] == ["size"]


def test_text_and_transcripts_beyond_the_limit_are_dropped() -> None:
    long = "x" * (MAX_TEXT_CHARS + 1)
    frame = parse({"serverContent": {
        "modelTurn": {"parts": [{"text": long}, {"text": "kept"}]},
        "inputTranscription": {"text": long},
        "outputTranscription": {"text": "also kept"},
    }})  # fmt: skip
    message = content(frame)
    assert message.text == "kept"
    assert message.input_transcription is None
    assert message.output_transcription is not None
    assert message.output_transcription.text == "also kept"
    assert [p.kind for p in frame.problems] == ["size", "size"]


def test_function_calls_beyond_the_limit_are_dropped() -> None:
    calls = [{"name": "f", "id": f"c{n}", "args": {}} for n in range(MAX_FUNCTION_CALLS * 10)]
    frame = parse({"toolCall": {"functionCalls": calls}})
    [message] = frame.messages
    assert isinstance(message, LiveServerToolCall)
    assert [c.id for c in message.function_calls] == [f"c{n}" for n in range(MAX_FUNCTION_CALLS)]
    assert [p.kind for p in frame.problems] == ["size"]


@pytest.mark.parametrize(
    "call",
    [
        {"name": "f" * 1000, "id": "a"},
        {"name": "f", "id": "i" * 100_000},
        {"name": "f", "id": "a", "args": {"x": "y" * 100_000}},
        {"name": "f", "id": "a", "args": {"x": list(range(100_000))}},
    ],
)
def test_a_call_with_an_oversized_field_is_dropped_and_the_others_kept(call: dict) -> None:
    frame = parse({"toolCall": {"functionCalls": [call, {"name": "ok", "id": "b"}]}})
    [message] = frame.messages
    assert isinstance(message, LiveServerToolCall)
    assert [c.name for c in message.function_calls] == ["ok"]
    assert [p.kind for p in frame.problems] == ["size"]


def test_arguments_nested_too_deep_drop_the_call() -> None:
    raw = ('{"toolCall":{"functionCalls":[{"name":"f","id":"a","args":{"x":'
           + "[" * 1000 + "]" * 1000 + "}}]}}")  # fmt: skip
    frame = protocol.parse_server_frame(raw)
    assert frame.messages == []
    assert {p.kind for p in frame.problems} == {"size"}


def test_integers_over_64_bits_in_arguments_parse_exactly() -> None:
    raw = '{"toolCall":{"functionCalls":[{"name":"f","id":"a","args":{"n":1' + "0" * 400 + "}}]}}"
    [message] = protocol.parse_server_frame(raw).messages
    assert isinstance(message, LiveServerToolCall)
    assert message.function_calls[0].args == {"n": 10**400}


@pytest.mark.parametrize(
    "raw",
    [
        '{"goAway":{"timeLeft":1e400}}',
        '{"toolCall":{"functionCalls":[{"name":"f","args":{"n":NaN, "m":1' + "0" * 30 + "}}]}}",
        '{"a":1' + "0" * 5000 + "}",
        "[" * 5000 + "1" + "0" * 30 + "]" * 5000,
    ],
)
def test_numbers_no_parser_can_hold_make_the_frame_unreadable(raw: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_server_frame(raw)


def test_cancellations_beyond_the_limit_and_of_the_wrong_type_are_dropped() -> None:
    ids = [f"c{n}" for n in range(MAX_CANCELLED_IDS * 10)]
    frame = parse({"toolCallCancellation": {"ids": ids}})
    [message] = frame.messages
    assert isinstance(message, LiveServerToolCallCancellation)
    assert message.function_ids == ids[:MAX_CANCELLED_IDS]
    frame = parse({"toolCallCancellation": {"ids": ["ok", {"a": [1] * 100}, "x" * 1000, 7]}})
    [message] = frame.messages
    assert isinstance(message, LiveServerToolCallCancellation)
    assert message.function_ids == ["ok", "7"]
    assert [p.kind for p in frame.problems] == ["size"]


@pytest.mark.parametrize(("wire", "seconds"), [("1e300s", MAX_GO_AWAY_S), (1e308, MAX_GO_AWAY_S),
                                                ("99999999999s", MAX_GO_AWAY_S)])
def test_an_absurdly_distant_go_away_is_taken_as_the_longest_a_connection_lives(
    wire: object, seconds: float
) -> None:
    frame = parse({"goAway": {"timeLeft": wire}})
    assert frame.messages == [LiveServerGoingAwayNotice(seconds)]
    assert [p.kind for p in frame.problems] == ["range"]


@pytest.mark.parametrize("body", [[], 5, "soon"])
def test_a_go_away_that_is_not_an_object_is_dropped(body: object) -> None:
    frame = parse({"goAway": body})
    assert frame.messages == [] and [p.kind for p in frame.problems] == ["shape"]


def test_a_huge_resumption_handle_is_dropped() -> None:
    frame = parse({"sessionResumptionUpdate": {"newHandle": "h" * 100_000, "resumable": True}})
    assert frame.messages == [] and [p.kind for p in frame.problems] == ["size"]


def test_usage_counts_outside_int64_are_dropped_and_the_rest_kept() -> None:
    frame = parse({"usageMetadata": {"totalTokenCount": 10**30, "promptTokenCount": "9" * 40,
                                     "responseTokenCount": 5}})  # fmt: skip
    [message] = frame.messages
    assert isinstance(message, LiveUsageMetadata)
    assert (message.total_token_count, message.prompt_token_count) == (0, 0)
    assert message.response_token_count == 5
    assert [p.kind for p in frame.problems] == ["range", "range"]


def test_free_form_objects_beyond_the_limits_are_dropped() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    frame = parse({"serverContent": {"groundingMetadata": {"x": deep}, "turnComplete": True}})
    message = content(frame)
    assert message.turn_complete and message.grounding_metadata is None
    assert [p.kind for p in frame.problems] == ["size"]


def test_short_text_fields_that_are_long_are_left_out() -> None:
    frame = parse({"setupComplete": {"sessionId": "s" * 10_000}})
    assert frame.messages[0] == protocol.LiveServerSetupComplete(None)
    frame = parse({"sessionResumptionUpdate": {"newHandle": "h", "resumable": True,
                                               "lastConsumedClientMessageIndex": "9" * 30}})
    assert frame.messages == [LiveSessionResumptionUpdate("h", True, None)]


def test_unknown_members_are_listed_up_to_a_limit() -> None:
    frame = protocol.parse_server_frame(orjson.dumps({f"k{n}": 1 for n in range(10_000)}))
    assert len(frame.unknown) == protocol.MAX_UNKNOWN_MEMBERS


def test_json_problem_walks_no_further_than_its_bound() -> None:
    assert json_problem({"a": [1, {"b": "c"}]}) is None
    assert "deeper" in (json_problem({"a": [[[[1]]]]}, max_depth=3) or "")
    assert "larger" in (json_problem(list(range(10**6)), max_size=100) or "")
    assert "larger" in (json_problem({"k" * 1000: 1}, max_size=100) or "")


# -- responses the wire encoder refuses --------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {1: "non-string key"},
        {"n": 2**64},
        {"n": -(2**63) - 1},
        {"deep": json.loads("[" * 300 + "]" * 300)},
        {"thing": object()},
    ],
)
def test_a_result_the_wire_encoder_refuses_is_answered_with_an_error(payload: dict) -> None:
    json.dumps(payload, default=str)  # the standard library would have taken most of these
    good = FunctionResponse(id="a", name="f", response={"ok": True})
    bad = FunctionResponse(id="b", name="g", response=payload)
    sent = json.loads(protocol.tool_response_frame([good, bad]))
    [first, second] = sent["toolResponse"]["functionResponses"]
    assert first == {"id": "a", "name": "f", "response": {"ok": True}}
    assert second["id"] == "b" and second["name"] == "g"
    assert set(second["response"]) == {"error"}
    fixed, reason = protocol.encodable_response(bad)
    assert reason is not None and fixed.response == {"error": reason}
    assert protocol.encodable_response(good) == (good, None)


def test_nan_in_a_result_is_sent_as_null() -> None:
    frame = protocol.tool_response_frame([FunctionResponse("f", {"x": float("nan")}, id="a")])
    assert json.loads(frame)["toolResponse"]["functionResponses"][0]["response"] == {"x": None}


def test_a_received_blob_is_never_decoded_before_it_is_played() -> None:
    blob = GenerativeContentBlob("audio/pcm", "A" * 8)
    assert blob.as_bytes() == bytes(6)
