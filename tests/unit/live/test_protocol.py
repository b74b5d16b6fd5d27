"""Every client frame kind, every server message kind, and the bad input the service or a
broken proxy could send."""

from __future__ import annotations

import base64
import json

import pytest

from agent.live import protocol
from agent.live.errors import ProtocolError
from agent.live.types import (
    Content,
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerSetupComplete,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveServerVoiceActivity,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
    Part,
)

PCM = bytes(range(256)) * 5  # 1,280 bytes: 40 ms of 16 kHz mono S16


def loads(frame: str) -> dict:
    obj = json.loads(frame)
    assert isinstance(obj, dict) and len(obj) == 1, "one top-level member per client frame"
    return obj


# -- client frames -------------------------------------------------------------------------------


def test_setup_frame_wraps_body() -> None:
    assert loads(protocol.setup_frame({"model": "models/x"})) == {"setup": {"model": "models/x"}}


def test_client_content_frame() -> None:
    frame = protocol.client_content_frame(
        [Content(role="user", parts=[Part(text="Hello there")])], turn_complete=True
    )
    assert loads(frame) == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "Hello there"}]}],
            "turnComplete": True,
        }
    }


def test_realtime_audio_frame_encodes_bytes() -> None:
    frame = protocol.realtime_audio_frame(GenerativeContentBlob("audio/pcm;rate=16000", PCM))
    body = loads(frame)["realtimeInput"]["audio"]
    assert body["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(body["data"]) == PCM


def test_realtime_audio_frame_passes_base64_text_through() -> None:
    b64 = base64.b64encode(PCM).decode()
    frame = protocol.realtime_audio_frame(GenerativeContentBlob("audio/pcm", b64))
    assert loads(frame) == {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": b64}}}


def test_realtime_blob_rejects_text_that_would_break_the_json() -> None:
    with pytest.raises(ValueError):
        protocol.realtime_audio_frame(GenerativeContentBlob("audio/pcm", 'abc"}'))


def test_realtime_blob_rejects_text_that_is_not_ascii() -> None:
    with pytest.raises(ValueError, match="not base64 text"):
        protocol.realtime_video_frame(GenerativeContentBlob("image/jpeg", "ab\u00e9c"))


def test_mime_type_is_json_escaped() -> None:
    frame = protocol.realtime_video_frame(GenerativeContentBlob('image/"odd"', b"\xff\xd8"))
    assert loads(frame)["realtimeInput"]["video"]["mimeType"] == 'image/"odd"'


def test_realtime_video_frame() -> None:
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
    body = loads(protocol.realtime_video_frame(GenerativeContentBlob("image/jpeg", jpeg)))
    assert base64.b64decode(body["realtimeInput"]["video"]["data"]) == jpeg


def test_realtime_text_frame() -> None:
    assert loads(protocol.realtime_text_frame("foo")) == {"realtimeInput": {"text": "foo"}}


def test_activity_and_stream_end_frames() -> None:
    assert loads(protocol.activity_start_frame()) == {"realtimeInput": {"activityStart": {}}}
    assert loads(protocol.activity_end_frame()) == {"realtimeInput": {"activityEnd": {}}}
    assert loads(protocol.audio_stream_end_frame()) == {"realtimeInput": {"audioStreamEnd": True}}


def test_media_chunk_frame_holds_one_chunk() -> None:
    body = loads(protocol.media_chunk_frame(GenerativeContentBlob("audio/pcm", b"\x01\x00")))
    assert body == {"realtimeInput": {"mediaChunks": [{"mimeType": "audio/pcm", "data": "AQA="}]}}


def test_tool_response_frame_holds_every_response() -> None:
    frame = protocol.tool_response_frame(
        [
            FunctionResponse(
                id="function-call-1", name="function-name", response={"result": "foo"}
            ),
            FunctionResponse(name="other", response={"error": "no"}, scheduling="WHEN_IDLE"),
        ]
    )
    assert loads(frame) == {
        "toolResponse": {
            "functionResponses": [
                {"name": "function-name", "response": {"result": "foo"}, "id": "function-call-1"},
                {"name": "other", "response": {"error": "no"}, "scheduling": "WHEN_IDLE"},
            ]
        }
    }


# -- server frames -------------------------------------------------------------------------------


def parse_one(obj: object) -> object:
    frame = protocol.parse_server_frame(json.dumps(obj).encode())
    assert not frame.problems and not frame.unknown
    assert len(frame.messages) == 1
    return frame.messages[0]


def test_setup_complete_with_and_without_session_id() -> None:
    assert parse_one({"setupComplete": {}}) == LiveServerSetupComplete()
    assert parse_one({"setupComplete": {"sessionId": "abc"}}) == LiveServerSetupComplete("abc")


def test_text_and_binary_frames_parse_alike() -> None:
    raw = '{"serverContent":{"turnComplete":true}}'
    assert protocol.parse_server_frame(raw) == protocol.parse_server_frame(raw.encode())


def test_server_content_with_every_field() -> None:
    pcm = b"\x00\x01" * 2400
    msg = parse_one(
        {
            "serverContent": {
                "modelTurn": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking", "thought": True},
                        {"text": "Hi"},
                        {
                            "inlineData": {
                                "mimeType": "audio/pcm;rate=24000",
                                "data": base64.b64encode(pcm).decode(),
                            }
                        },
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    ],
                },
                "turnComplete": True,
                "interrupted": True,
                "generationComplete": True,
                "waitingForInput": True,
                "inputTranscription": {"text": "turn on", "finished": True},
                "outputTranscription": {"text": "Done"},
                "turnCompleteReason": "NEED_MORE_INPUT",
                "interactionStatus": "IDLE",
                "groundingMetadata": {"webSearchQueries": ["q"]},
                "someFutureField": 1,
            }
        }
    )
    assert isinstance(msg, LiveServerContent)
    assert msg.type == "serverContent"
    assert msg.turn_complete and msg.interrupted and msg.generation_complete
    assert msg.waiting_for_input
    assert msg.input_transcription is not None and msg.input_transcription.text == "turn on"
    assert msg.input_transcription.finished
    assert msg.output_transcription is not None and msg.output_transcription.text == "Done"
    assert msg.turn_complete_reason == "NEED_MORE_INPUT"
    assert msg.interaction_status == "IDLE"
    assert msg.grounding_metadata == {"webSearchQueries": ["q"]}
    assert msg.text == "Hi"
    [audio] = msg.audio_chunks()
    assert audio.sample_rate == 24000 and audio.as_bytes() == pcm
    assert msg.model_turn is not None
    assert msg.model_turn.parts[3].extra == {
        "executableCode": {"language": "PYTHON", "code": "print(1)"}
    }


def test_several_audio_parts_in_one_message_are_all_kept() -> None:
    parts = [{"inlineData": {"mimeType": "audio/pcm", "data": "AAA="}}] * 3
    msg = parse_one({"serverContent": {"modelTurn": {"parts": parts}}})
    assert isinstance(msg, LiveServerContent) and len(msg.audio_chunks()) == 3


def test_url_safe_and_unpadded_base64_decode() -> None:
    jpeg = bytes.fromhex("ffd8ffe0") + b"jpeg" + bytes.fromhex("ffd9")
    url_safe = base64.urlsafe_b64encode(jpeg).decode().rstrip("=")
    assert "_" in url_safe
    blob = GenerativeContentBlob("image/jpeg", url_safe)
    assert blob.as_bytes() == jpeg


def test_invalid_base64_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        GenerativeContentBlob("audio/pcm", "not base64!").as_bytes()


def test_tool_call() -> None:
    msg = parse_one(
        {
            "toolCall": {
                "functionCalls": [
                    {"id": "c1", "name": "set_lamp", "args": {"on": True}},
                    {"name": "no_id"},
                ]
            }
        }
    )
    assert isinstance(msg, LiveServerToolCall)
    assert [(c.id, c.name, c.args) for c in msg.function_calls] == [
        ("c1", "set_lamp", {"on": True}),
        (None, "no_id", {}),
    ]


def test_tool_call_cancellation_reads_ids() -> None:
    msg = parse_one({"toolCallCancellation": {"ids": ["c1", "c2"]}})
    assert msg == LiveServerToolCallCancellation(function_ids=["c1", "c2"])


@pytest.mark.parametrize(
    ("wire", "seconds"),
    [
        ("30s", 30.0),
        ("3.000000001s", 3.000000001),
        ("9.5s", 9.5),
        ("0s", 0.0),
        ("invalid", 0.0),
        ("xs", 0.0),
        ("-5s", 0.0),
        ("nans", 0.0),
        (None, 0.0),
        (12, 12.0),
        (True, 0.0),
        ({"seconds": 3}, 0.0),
    ],
)
def test_go_away_durations(wire: object, seconds: float) -> None:
    msg = parse_one({"goAway": {"timeLeft": wire}})
    assert msg == LiveServerGoingAwayNotice(time_left=seconds)


def test_go_away_null_and_missing() -> None:
    assert parse_one({"goAway": None}) == LiveServerGoingAwayNotice(time_left=0.0)
    assert parse_one({"goAway": {}}) == LiveServerGoingAwayNotice(time_left=0.0)


def test_resumption_update_index_as_string() -> None:
    msg = parse_one(
        {
            "sessionResumptionUpdate": {
                "newHandle": "h-1",
                "resumable": True,
                "lastConsumedClientMessageIndex": "7",
            }
        }
    )
    assert msg == LiveSessionResumptionUpdate("h-1", True, 7)


def test_resumption_update_not_resumable_without_handle() -> None:
    msg = parse_one({"sessionResumptionUpdate": {"resumable": False, "newHandle": ""}})
    assert msg == LiveSessionResumptionUpdate(None, False, None)


def test_usage_metadata_developer_api_spelling() -> None:
    msg = parse_one(
        {
            "usageMetadata": {
                "promptTokenCount": 10,
                "responseTokenCount": 5,
                "totalTokenCount": "15",
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 10}],
            }
        }
    )
    assert isinstance(msg, LiveUsageMetadata)
    assert (msg.prompt_token_count, msg.response_token_count, msg.total_token_count) == (10, 5, 15)
    assert msg.details == {"promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 10}]}


def test_usage_metadata_vertex_spelling() -> None:
    msg = parse_one({"usageMetadata": {"candidatesTokenCount": 8, "totalTokenCount": 9}})
    assert isinstance(msg, LiveUsageMetadata) and msg.response_token_count == 8


def test_voice_activity_signals() -> None:
    assert parse_one({"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}}) == (
        LiveServerVoiceActivity("ACTIVITY_START")
    )
    assert parse_one(
        {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_EOS"}}
    ) == (LiveServerVoiceActivity("VAD_SIGNAL_TYPE_EOS"))


def test_several_members_in_one_frame_keep_their_order() -> None:
    frame = protocol.parse_server_frame(
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"totalTokenCount":3}}'
    )
    assert [m.type for m in frame.messages] == ["serverContent", "usageMetadata"]


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", "[1,"])
def test_malformed_json_is_a_protocol_error(raw: bytes | str) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_server_frame(raw)


@pytest.mark.parametrize("raw", ["null", "5", '"text"', "[1, 2]"])
def test_json_that_is_not_an_object_is_a_problem_not_a_crash(raw: str) -> None:
    frame = protocol.parse_server_frame(raw)
    assert frame.messages == [] and len(frame.problems) == 1


def test_unknown_members_are_reported_and_known_ones_kept() -> None:
    frame = protocol.parse_server_frame('{"somethingNew":{},"goAway":{"timeLeft":"1s"}}')
    assert frame.unknown == ["somethingNew"]
    assert frame.messages == [LiveServerGoingAwayNotice(1.0)]


@pytest.mark.parametrize(
    "obj",
    [
        {"serverContent": 5},
        {"serverContent": {"modelTurn": {"parts": "nope"}}},
        {"serverContent": {"modelTurn": {"parts": [7]}}},
        {"toolCall": {"functionCalls": {"name": "x"}}},
        {"toolCall": {"functionCalls": [{"args": {}}]}},
        {"toolCallCancellation": {"ids": "c1"}},
        {"sessionResumptionUpdate": []},
        {"usageMetadata": "lots"},
    ],
)
def test_wrongly_shaped_members_are_problems(obj: dict) -> None:
    frame = protocol.parse_server_frame(json.dumps(obj))
    assert frame.messages == [] and len(frame.problems) == 1


def test_wrongly_typed_optional_fields_are_ignored() -> None:
    msg = parse_one(
        {
            "serverContent": {
                "turnComplete": "yes",
                "inputTranscription": "hi",
                "modelTurn": {"role": 5, "parts": [{"text": 5}]},
            }
        }
    )
    assert isinstance(msg, LiveServerContent)
    assert not msg.turn_complete and msg.input_transcription is None
    assert msg.model_turn is not None and msg.model_turn.parts[0].text is None
