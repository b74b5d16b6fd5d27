"""The emulator's server-side codec: lenient parsing, strict structure, server frames."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from agent.emulator import wire
from tests.support.hostile_setups import HOSTILE_SETUPS, MODEL, nested


def test_field_access_takes_either_casing() -> None:
    assert wire.get({"mimeType": "a"}, "mimeType") == "a"
    assert wire.get({"mime_type": "b"}, "mimeType") == "b"
    assert wire.get({}, "mimeType", "d") == "d"
    assert wire.has({"turn_complete": True}, "turnComplete")
    assert wire.camel_key("realtime_input") == "realtimeInput"
    assert wire.camel_key("setup") == "setup"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("strip", [False, True])
def test_base64_both_alphabets_padding_optional(encode: object, strip: bool) -> None:
    data = bytes(range(256))[::-1] + b"\xfb\xff"
    text = encode(data).decode()  # type: ignore[operator]
    if strip:
        text = text.rstrip("=")
    assert wire.decode_base64(text, "x") == data


@pytest.mark.parametrize("text", ["a", "ab!c", "é", "A===", 5, None])
def test_bad_base64_is_invalid_argument(text: object) -> None:
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.decode_base64(text, "x")
    assert (info.value.code, info.value.reason) == wire.INVALID_ARGUMENT


def test_audio_is_parsed_into_samples_with_its_rate() -> None:
    pcm = np.array([1, -2, 32767, -32768], dtype="<i2")
    msg = {"realtime_input": {"audio": {"data": base64.urlsafe_b64encode(pcm.tobytes()).decode(),
                                        "mime_type": "audio/pcm;rate=24000"}}}  # fmt: skip
    parsed = wire.parse_client_message(msg)
    assert isinstance(parsed, wire.Audio)
    assert parsed.rate == 24000 and parsed.samples.tolist() == pcm.tolist()
    assert wire.audio_rate("audio/pcm") == 16000
    assert wire.audio_rate("Audio/PCM; rate=8000") == 8000


@pytest.mark.parametrize("mime", ["audio/wav", "audio/pcm;rate=x", "audio/pcm;rate=1000", None])
def test_bad_audio_mime_types(mime: str | None) -> None:
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_audio({"mimeType": mime, "data": "AAAA"})


def test_media_chunks_use_the_first_chunk_and_route_by_mime() -> None:
    jpeg = base64.b64encode(b"\xff\xd8").decode()
    chunks = [{"mimeType": "image/jpeg", "data": jpeg}, {"mimeType": "audio/pcm", "data": "AAA="}]
    parsed = wire.parse_client_message({"realtimeInput": {"mediaChunks": chunks}})
    assert parsed == wire.Video("image/jpeg", b"\xff\xd8")


def test_one_member_per_message() -> None:
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_client_message({"setup": {"model": "models/x"}, "clientContent": {}})
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.parse_client_message({"bogus": {}})
    assert 'Unknown name "bogus"' in info.value.reason


def test_setup_in_google_genai_mixed_casing() -> None:
    frame = {"setup": {"model": "models/gemini-live-2.5-flash-preview",
        "generationConfig": {"responseModalities": ["AUDIO"],
            "speechConfig": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}}},
        "tools": [{"functionDeclarations": [{"name": "get_weather"}]}],
        "sessionResumption": {"handle": "prev-handle"},
        "inputAudioTranscription": {}, "outputAudioTranscription": {},
        "realtimeInputConfig": {"automatic_activity_detection": {"disabled": False,
            "start_of_speech_sensitivity": "START_SENSITIVITY_LOW", "silence_duration_ms": 100},
            "activity_handling": "NO_INTERRUPTION"},
        "contextWindowCompression": {"trigger_tokens": "25600",
                                     "sliding_window": {"target_tokens": 12800}}}}  # fmt: skip
    setup = wire.parse_client_message(frame)
    assert isinstance(setup, wire.Setup)
    assert setup.voice_name == "Puck" and setup.function_names == ("get_weather",)
    assert setup.resumption == wire.Resumption("prev-handle", False)
    assert setup.input_transcription and setup.output_transcription
    assert setup.activity.start_sensitivity == "START_SENSITIVITY_LOW"
    assert setup.activity.silence_duration_ms == 100 and not setup.activity.interrupts
    assert setup.compression == wire.Compression(25600, 12800)


def test_setup_from_firebase_js() -> None:
    system = {"role": "system", "parts": [{"text": "Be brief"}]}
    frame = {"setup": {"model": "projects/p/models/m", "generationConfig": {},
        "contextWindowCompression": {"triggerTokens": 1000}, "systemInstruction": system,
        "sessionResumption": {}}}  # fmt: skip
    setup = wire.parse_client_message(frame)
    assert isinstance(setup, wire.Setup)
    assert setup.modalities == ("AUDIO",) and setup.system_instruction == "Be brief"
    assert setup.resumption == wire.Resumption(None, False)
    assert setup.compression == wire.Compression(1000, None)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"model": ""},
        {"model": "models/x", "generationConfig": {"responseModalities": ["VIDEO"]}},
        {"model": "models/x", "realtimeInputConfig": {"activityHandling": "SOMETIMES"}},
        {"model": "models/x", "contextWindowCompression": {"triggerTokens": "many"}},
        {"model": "models/x", "tools": [{"functionDeclarations": [{"description": "no name"}]}]},
        {"model": "models/x", "generationConfig": "audio"},
    ],
)
def test_bad_setups(body: dict[str, object]) -> None:
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_setup(body)


@pytest.mark.parametrize(("history", "initial"), [
    (None, False),
    ({}, False),
    ({"initialHistoryInClientContent": True}, True),
    ({"initial_history_in_client_content": True}, True),  # google-genai's casing
    ({"initialHistoryInClientContent": False}, False),
])
def test_history_config(history: object, initial: bool) -> None:
    body: dict[str, object] = {"model": "models/x"}
    if history is not None:
        body["historyConfig"] = history
    assert wire.parse_setup(body).initial_history is initial


@pytest.mark.parametrize("history", [
    "yes", [], 1,
    {"initialHistoryInClientContent": "true"},
    {"initialHistoryInClientContent": 1},
    {"initialHistoryInClientContent": {}},
])
def test_a_malformed_history_config_is_invalid_argument(history: object) -> None:
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.parse_setup({"model": "models/x", "historyConfig": history})
    assert (info.value.code, info.value.reason) == wire.INVALID_ARGUMENT
    assert "historyConfig" in info.value.detail


def test_transparent_resumption_is_vertex_only() -> None:
    body = {"model": "m", "sessionResumption": {"transparent": True}}
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_setup(body, developer_api=True)
    assert wire.parse_setup(body, developer_api=False).resumption == wire.Resumption(None, True)


def test_client_content_text_and_refusals() -> None:
    parsed = wire.parse_client_content({"turns": [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "ignored"}]}], "turn_complete": True})  # fmt: skip
    assert parsed.text == "a b" and parsed.turn_complete
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_client_content({"turns": [{"parts": [{"functionResponse": {}}]}]})
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_client_content({"turns": "hello"})


def test_tool_response() -> None:
    parsed = wire.parse_tool_response(
        {"function_responses": [{"id": "c1", "name": "f", "response": {"ok": 1}}, {"name": "g"}]}
    )
    assert parsed.responses == (
        wire.FunctionResponse("c1", "f", {"ok": 1}),
        wire.FunctionResponse(None, "g", {}),
    )
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_tool_response({"functionResponses": [{"id": "c1"}]})


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("models/x", "x"),
        ("projects/p/models/x", "x"),
        ("publishers/google/models/x", "x"),
        ("projects/p/locations/l/publishers/google/models/x", "x"),
        ("x", None),
        ("models/models/x", None),
    ],
)
def test_model_names(name: str, model_id: str | None) -> None:
    assert wire.model_id(name) == model_id


def test_server_frames() -> None:
    assert wire.duration(9.5) == "9.5s" and wire.duration(50) == "50s"
    assert wire.go_away(0.2) == {"goAway": {"timeLeft": "0.2s"}}
    assert wire.resumption_update("h", last_consumed=7) == {
        "sessionResumptionUpdate": {"resumable": True, "newHandle": "h",
                                    "lastConsumedClientMessageIndex": "7"}}  # fmt: skip
    assert wire.resumption_update(None, resumable=False) == {
        "sessionResumptionUpdate": {"resumable": False}
    }
    part = wire.audio_part(b"\x01\x00")
    assert part["inlineData"] == {"mimeType": "audio/pcm;rate=24000", "data": "AQA="}
    usage = wire.usage_metadata({"AUDIO": 10, "TEXT": 0}, {"AUDIO": 5}, vertex=True)
    assert usage["candidatesTokenCount"] == 5 and usage["totalTokenCount"] == 15
    assert usage["promptTokensDetails"] == [{"modality": "AUDIO", "tokenCount": 10}]
    assert json.loads(wire.encode(wire.setup_complete("s"))) == {
        "setupComplete": {"sessionId": "s"}
    }
    assert wire.setup_complete() == {"setupComplete": {}}


def test_bad_json() -> None:
    for frame in ("{", "[]", b"\xff"):
        with pytest.raises(wire.ProtocolViolation) as info:
            wire.load_json(frame)
        assert info.value.reason == "Invalid JSON payload received."


@pytest.mark.parametrize("name", sorted(HOSTILE_SETUPS))
def test_hostile_setups_are_invalid_arguments(name: str) -> None:
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.parse_client_message(wire.load_json(HOSTILE_SETUPS[name]))
    assert info.value.code == 1007 and info.value.reason


def test_nesting_up_to_the_limit_is_accepted() -> None:
    frame = json.dumps({"toolResponse": {"functionResponses": [
        {"id": "c", "name": "f", "response": {"deep": nested(wire.MAX_DEPTH - 5)}}]}})  # fmt: skip
    assert isinstance(wire.parse_client_message(wire.load_json(frame)), wire.ToolResponse)


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), ("250", 250), (300.0, 300), (2**31 - 1, 2**31 - 1)]
)
def test_integer_fields_take_numbers_and_strings(value: object, expected: int) -> None:
    detection = {"automaticActivityDetection": {"silenceDurationMs": value}}
    setup = wire.parse_setup({"model": MODEL, "realtimeInputConfig": detection})
    assert setup.activity.silence_duration_ms == expected


def test_a_violation_detail_is_short_whatever_the_input() -> None:
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.parse_setup({"model": MODEL, "generationConfig": {"mediaResolution": "x" * 10**5}})
    assert len(info.value.detail) <= wire.MAX_DETAIL_CHARS
    with pytest.raises(wire.ProtocolViolation) as info:
        wire.load_json("{" + "x" * 100_000)
    assert len(info.value.detail) <= wire.MAX_DETAIL_CHARS
    assert len(wire.invalid("y" * 100_000).detail) <= wire.MAX_DETAIL_CHARS
