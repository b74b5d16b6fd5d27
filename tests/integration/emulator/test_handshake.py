"""Routing, credentials, the setup handshake and every strictness rule, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent.emulator import Emulator, EmulatorConfig
from tests.support.emulator_client import STEP, audio_message, setup_message, tone

DEV = "/ws/google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContent"


@pytest.mark.parametrize(
    ("path", "model"),
    [
        (DEV.format(v="v1"), "models/m"),
        (DEV.format(v="v1beta"), "models/m"),
        (DEV.format(v="v1alpha") + "Constrained", "models/m"),
        ("/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent",
         "projects/p/locations/us-central1/publishers/google/models/m"),
        ("/ws/google.firebase.vertexai.v1beta.GenerativeService/BidiGenerateContent",
         "projects/p/models/m"),
        ("/ws/google.firebase.vertexai.v1beta.LlmBidiService/BidiGenerateContent/locations/"
         "us-central1", "projects/p/locations/us-central1/publishers/google/models/m"),
        ("//ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
         "models/m"),
        ("/proxy/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
         "models/m"),
    ],
)  # fmt: skip
async def test_every_backend_path_is_served(
    emulator: Emulator, open_client: Any, path: str, model: str
) -> None:
    client = await open_client(emulator, setup_message(model), path=path)
    assert client.setup_complete["setupComplete"]["sessionId"]
    assert emulator.recordings.connection(1).session_id is not None


async def test_unknown_path_is_refused_with_404(emulator: Emulator) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(emulator.url + "/ws/google.ai.generativelanguage.v2.Nope?key=k")
    assert info.value.response.status_code == 404


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?key=secret", {}),
        ("?access_token=secret", {}),
        ("", {"x-goog-api-key": "secret"}),
        ("", {"Authorization": "Token secret"}),
        ("", {"Authorization": "Bearer secret"}),
        ("", {"Authorization": "Firebase secret"}),
    ],
)
async def test_every_credential_form_is_accepted(
    open_client: Any, query: str, headers: dict[str, str]
) -> None:
    async with Emulator(EmulatorConfig(api_key="secret")) as emu:
        client = await open_client(
            emu, None, path=DEV.format(v="v1beta") + query, key=None, headers=headers
        )
        await client.send(setup_message())
        assert "setupComplete" in await client.recv()


@pytest.mark.parametrize(
    ("query", "headers", "code", "reason_start"),
    [
        ("?key=wrong", {}, 1007, "API key not valid"),
        ("", {"x-goog-api-key": "wrong"}, 1007, "API key not valid"),
        ("", {"Authorization": "Bearer wrong"}, 1008, "Request had invalid authentication"),
        ("", {}, 1008, "Method doesn't allow unregistered callers"),
    ],
)
async def test_bad_credentials_close_with_the_service_code(
    open_client: Any, query: str, headers: dict[str, str], code: int, reason_start: str
) -> None:
    async with Emulator(EmulatorConfig(api_key="secret")) as emu:
        client = await open_client(
            emu, None, path=DEV.format(v="v1beta") + query, key=None, headers=headers
        )
        await client.send(setup_message())
        got_code, reason = await client.closed()
        assert got_code == code
        assert reason is not None and reason.startswith(reason_start)


async def test_setup_complete_is_first_and_binary(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator)
    await client.send(setup_message(sessionResumption={}))
    async with asyncio.timeout(STEP):
        first = await client.ws.recv()
        second = await client.ws.recv()
    assert isinstance(first, bytes) and "setupComplete" in json.loads(first)
    assert "sessionResumptionUpdate" in json.loads(second)


async def test_text_frames_when_configured(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(binary_frames=False)) as emu:
        client = await open_client(emu)
        await client.send(setup_message())
        async with asyncio.timeout(STEP):
            first = await client.ws.recv()
        assert isinstance(first, str) and "setupComplete" in first


async def test_permessage_deflate_only_when_offered(emulator: Emulator) -> None:
    url = emulator.url + DEV.format(v="v1beta") + "?key=k"
    async with connect(url) as offered, connect(url, compression=None) as plain:
        assert "permessage-deflate" in (
            offered.response.headers.get("Sec-WebSocket-Extensions") or ""
        )
        assert plain.response.headers.get("Sec-WebSocket-Extensions") is None


async def test_unknown_model_is_not_found(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(models=("gemini-live-2.5-flash-preview",))) as emu:
        ok = await open_client(emu, setup_message("models/gemini-live-2.5-flash-preview"))
        assert ok.setup_complete is not None
        client = await open_client(emu)
        await client.send(setup_message("models/no-such-model"))
        code, reason = await client.closed()
        assert code == 1008 and reason is not None and "models/no-such-model is not found" in reason


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


INVALID = (1007, "Request contains an invalid argument.")


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        # setup must come first, and only once
        ({"realtimeInput": {"text": "hi"}}, None, INVALID),
        (setup_message(), setup_message(), INVALID),
        # a bad setup
        ({"setup": {}}, None, INVALID),
        (setup_message("gemini-without-prefix"), None, INVALID),
        (setup_message(generationConfig={"responseModalities": ["AUDIO", "TEXT"]}), None, INVALID),
        (setup_message(sessionResumption={"transparent": True}), None, INVALID),
        # exactly one member per message, and only known ones
        (setup_message(), {"realtimeInput": {"text": "a"}, "toolResponse": {}}, INVALID),
        (setup_message(), {"realtimeInput": {"text": "a", "audioStreamEnd": True}}, INVALID),
        (setup_message(), {"realtimeInput": {}}, INVALID),
        # audio: audio/pcm, valid base64, whole 16-bit samples
        (setup_message(), {"realtimeInput": {"audio": {"mimeType": "audio/wav",
                                                       "data": _b64(b"\0\0")}}}, INVALID),
        (setup_message(), {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=abc",
                                                       "data": _b64(b"\0\0")}}}, INVALID),
        (setup_message(), {"realtimeInput": {"audio": {"mimeType": "audio/pcm",
                                                       "data": "not base64!"}}}, INVALID),
        (setup_message(), {"realtimeInput": {"audio": {"mimeType": "audio/pcm",
                                                       "data": _b64(b"\0\0\0")}}}, INVALID),
        # video: an image mime type
        (setup_message(), {"realtimeInput": {"video": {"mimeType": "video/mp4",
                                                       "data": _b64(b"\xff\xd8")}}}, INVALID),
        # a function response must answer an outstanding call, and not come as clientContent
        (setup_message(), {"toolResponse": {"functionResponses": [
            {"id": "nope", "name": "f", "response": {}}]}}, INVALID),
        (setup_message(), {"clientContent": {"turns": [{"role": "function", "parts": [
            {"functionResponse": {"name": "f", "response": {}}}]}], "turnComplete": True}},
         INVALID),
        # activity signals only with automatic activity detection disabled
        (setup_message(), {"realtimeInput": {"activityStart": {}}},
         (1007, "Explicit activity control is not supported when automatic activity "
                "detection is enabled.")),
    ],
)  # fmt: skip
async def test_strictness_rules_close_with_the_service_code(
    emulator: Emulator,
    open_client: Any,
    first: dict[str, Any],
    then: dict[str, Any] | None,
    expected: tuple[int, str],
) -> None:
    client = await open_client(emulator)
    await client.send(first)
    if then is not None:
        assert "setupComplete" in await client.recv()
        await client.send(then)
    assert await client.closed() == expected
    assert emulator.stats.violations == 1


async def test_malformed_json_and_unknown_kind(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator)
    await client.ws.send('{"setup": ')
    code, reason = await client.closed()
    assert (code, reason) == (1007, "Invalid JSON payload received.")

    client = await open_client(emulator, setup_message())
    await client.send({"somethingElse": {}})
    code, reason = await client.closed()
    assert code == 1007 and reason == (
        'Invalid JSON payload received. Unknown name "somethingElse": Cannot find field.'
    )


async def test_both_casings_and_both_base64_alphabets(emulator: Emulator, open_client: Any) -> None:
    """google-genai sends snake_case keys and URL-safe base64; Firebase camelCase/standard."""
    client = await open_client(
        emulator,
        setup_message(
            realtime_input_config={"automatic_activity_detection": {"disabled": False}},
            context_window_compression={"trigger_tokens": "25600",
                                        "sliding_window": {"target_tokens": 12800}},
        ),
    )  # fmt: skip
    pcm = tone(0.1)
    raw = pcm.tobytes()
    # bytes chosen so the URL-safe alphabet shows up
    jpeg = b"\xff\xd8\xff\xe0\xfb\xff\xbf\xff\xd9"
    await client.send(audio_message(pcm, snake=True))
    await client.send(audio_message(pcm))
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    await client.send({"realtime_input": {"media_chunks": [
        {"mime_type": "audio/pcm", "data": unpadded}]}})  # fmt: skip
    await client.send({"realtime_input": {"video": {
        "mime_type": "image/jpeg", "data": base64.urlsafe_b64encode(jpeg).decode()}}})  # fmt: skip
    await client.send({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": _b64(jpeg)}}})
    await client.send({"client_content": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                                          "turn_complete": True}})  # fmt: skip
    await client.turn()
    rec = emulator.recordings.connection(1)
    assert rec.kinds() == [
        "setup",
        "realtimeInput.audio",
        "realtimeInput.audio",
        "realtimeInput.audio",
        "realtimeInput.video",
        "realtimeInput.video",
        "clientContent",
    ]
    assert [c.samples.tobytes() for c in rec.audio] == [raw, raw, raw]
    assert [v.data for v in rec.video] == [jpeg, jpeg]


async def test_audio_without_rate_is_16khz(emulator: Emulator, open_client: Any) -> None:
    """Firebase JS sends plain ``audio/pcm``."""
    client = await open_client(emulator, setup_message())
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": _b64(b"\1\0")}}}
    )
    await client.send({"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=24000",
                                                   "data": _b64(b"\2\0")}}})  # fmt: skip
    await client.send({"realtimeInput": {"text": "x"}})
    await client.turn()
    assert [(c.rate, c.samples.tolist()) for c in emulator.recordings.connection(1).audio] == [
        (16000, [1]),
        (24000, [2]),
    ]


async def test_no_setup_in_time_closes(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(setup_timeout_s=0.2)) as emu:
        client = await open_client(emu)
        code, reason = await client.closed()
        assert (code, reason) == (1011, "Deadline expired before operation could complete.")
