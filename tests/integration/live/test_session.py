"""LiveSession over real WebSockets on 127.0.0.1: the Firebase SDK's own test list, ported, and
the places where this client deliberately does better."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from collections.abc import AsyncIterator

import pytest
import structlog
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from agent.live.errors import LiveConnectionClosed, LiveErrorCode, LiveSessionError
from agent.live.model import ConnectOptions, GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.types import (
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
    Part,
    SessionResumptionConfig,
)

from .conftest import ScriptedServer

T = 5.0


async def take(session, n: int) -> list:  # type: ignore[no-untyped-def]
    out = []
    async with asyncio.timeout(T):
        async for message in session.receive():
            out.append(message)
            if len(out) == n:
                break
    return out


# -- connect (LiveGenerativeModel tests) -------------------------------------------------------


async def test_connect_sends_setup_and_consumes_setup_complete(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect(model="my-model")
    assert conn.setup == {"model": "models/my-model", "generationConfig": {}}  # type: ignore[attr-defined]
    assert (
        conn.path == "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    assert conn.headers["x-goog-api-key"] == "test-key"
    assert not session.is_closed
    await conn.send({"serverContent": {"turnComplete": True}})
    [first] = await take(session, 1)
    assert isinstance(first, LiveServerContent), "setupComplete must not be yielded"
    await session.close()


async def test_session_id_from_setup_complete(live_server: ScriptedServer) -> None:
    task = asyncio.create_task(live_server.model().connect())
    conn = await live_server.accept()
    await conn.handshake(sessionId="abc")
    session = await task
    assert session.session_id == "abc"
    await session.close()


async def test_connect_fails_when_first_message_is_not_setup_complete(
    live_server: ScriptedServer,
) -> None:
    task = asyncio.create_task(live_server.model().connect())
    conn = await live_server.accept()
    await conn.expect()
    await conn.send({"error": "handshake failed"})
    with pytest.raises(LiveSessionError, match="Server connection handshake failed") as info:
        await task
    assert info.value.code == LiveErrorCode.RESPONSE_ERROR
    async with asyncio.timeout(T):
        await conn.ws.wait_closed()
    assert conn.ws.close_code == 1011 and conn.ws.close_reason == "Handshake failure"


async def test_connect_surfaces_close_code_and_reason_of_a_rejected_setup(
    live_server: ScriptedServer,
) -> None:
    task = asyncio.create_task(live_server.model().connect())
    conn = await live_server.accept()
    await conn.expect()
    await conn.close(1007, "Request contains an invalid argument.")
    with pytest.raises(LiveSessionError) as info:
        await task
    assert info.value.code == LiveErrorCode.RESPONSE_ERROR
    assert info.value.close_code == 1007
    assert info.value.close_reason == "Request contains an invalid argument."


async def test_connect_times_out_when_the_server_never_answers(live_server: ScriptedServer) -> None:
    model = live_server.model(options=ConnectOptions(timeout=0.3))
    task = asyncio.create_task(model.connect())
    conn = await live_server.accept()
    await conn.expect()  # setup arrives; no setupComplete follows
    with pytest.raises(LiveSessionError) as info:
        await task
    assert info.value.code == LiveErrorCode.TIMEOUT


async def test_connect_passes_through_connection_errors() -> None:
    backend = GeminiDeveloperBackend(api_key="k", endpoint="ws://127.0.0.1:9")  # discard port
    with pytest.raises(LiveSessionError) as info:
        await LiveGenerativeModel(backend=backend, model="m").connect()
    assert info.value.code == LiveErrorCode.FETCH_ERROR


async def test_connect_reports_the_http_status_of_a_refused_upgrade() -> None:
    def refuse(connection, request):  # type: ignore[no-untyped-def]
        return Response(403, "Forbidden", Headers(), b"API key not valid")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as srv:
        port = srv.sockets[0].getsockname()[1]
        backend = GeminiDeveloperBackend(api_key="bad", endpoint=f"ws://127.0.0.1:{port}")
        with pytest.raises(LiveSessionError) as info:
            await LiveGenerativeModel(backend=backend, model="m").connect()
    assert info.value.code == LiveErrorCode.FETCH_ERROR
    assert info.value.http_status == 403


async def test_connect_with_resumption_handle(live_server: ScriptedServer) -> None:
    model = live_server.model()
    task = asyncio.create_task(model.connect(SessionResumptionConfig(handle="testHandle")))
    conn = await live_server.accept()
    setup = await conn.handshake()
    session = await task
    assert setup["sessionResumption"] == {"handle": "testHandle"}
    assert "sessionResumption" not in model.setup_message()
    await session.close()


# -- sending --------------------------------------------------------------------------------------


async def test_send_formats_text(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await session.send("Hello there")
    assert await conn.expect() == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "Hello there"}]}],
            "turnComplete": True,
        }
    }
    await session.send(["a", Part(text="b")], turn_complete=False)
    assert await conn.expect() == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}],
            "turnComplete": False,
        }
    }
    await session.close()


async def test_send_rejects_empty_and_mixed_content(live_server: ScriptedServer) -> None:
    session, _ = await live_server.connect()
    with pytest.raises(LiveSessionError) as empty:
        await session.send([])
    assert empty.value.code == LiveErrorCode.INVALID_CONTENT
    response = Part(function_response=FunctionResponse(name="f", response={}))
    with pytest.raises(LiveSessionError) as mixed:
        await session.send([response, "text"])
    assert mixed.value.code == LiveErrorCode.INVALID_CONTENT
    await session.close()


async def test_realtime_sends(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    pcm = b"\x01\x00" * 640
    await session.send_text_realtime("foo")
    await session.send_audio_realtime(GenerativeContentBlob("audio/pcm;rate=16000", pcm))
    await session.send_video_realtime(GenerativeContentBlob("image/jpeg", "/9j/4AAQ"))
    await session.send_activity_start()
    await session.send_activity_end()
    await session.send_audio_stream_end()
    assert await conn.expect() == {"realtimeInput": {"text": "foo"}}
    audio = (await conn.expect())["realtimeInput"]["audio"]
    assert audio["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(audio["data"]) == pcm
    assert await conn.expect() == {
        "realtimeInput": {"video": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    }
    assert await conn.expect() == {"realtimeInput": {"activityStart": {}}}
    assert await conn.expect() == {"realtimeInput": {"activityEnd": {}}}
    assert await conn.expect() == {"realtimeInput": {"audioStreamEnd": True}}
    await session.close()


async def test_realtime_sends_check_the_blob(live_server: ScriptedServer) -> None:
    session, _ = await live_server.connect()
    with pytest.raises(LiveSessionError) as info:
        await session.send_audio_realtime(GenerativeContentBlob("image/jpeg", b"x"))
    assert info.value.code == LiveErrorCode.INVALID_CONTENT
    with pytest.raises(LiveSessionError):
        await session.send_video_realtime(b"raw bytes")  # type: ignore[arg-type]
    await session.close()


async def test_send_function_responses_in_one_frame(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await session.send_function_responses(
        [
            FunctionResponse(
                id="function-call-1", name="function-name", response={"result": "foo"}
            ),
            FunctionResponse(
                id="function-call-2", name="function-name-2", response={"result": "bar"}
            ),
        ]
    )
    frame = await conn.expect()
    assert [r["id"] for r in frame["toolResponse"]["functionResponses"]] == [
        "function-call-1",
        "function-call-2",
    ]
    await session.close()


async def test_send_media_chunks_is_deprecated_and_sends_one_frame_each(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    chunks = [
        GenerativeContentBlob("audio/pcm", b"\x01\x00"),
        GenerativeContentBlob("audio/pcm", b"\x02\x00"),
    ]
    with pytest.warns(DeprecationWarning):
        await session.send_media_chunks(chunks)
    for chunk in chunks:
        frame = await conn.expect()
        assert frame["realtimeInput"]["mediaChunks"] == [chunk.to_wire()]
    with pytest.warns(DeprecationWarning):
        await session.send_media_chunks([])
    await session.close()


async def test_send_media_stream_sends_every_chunk(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()

    async def stream() -> AsyncIterator[GenerativeContentBlob]:
        for i in range(3):
            yield GenerativeContentBlob("audio/pcm", bytes([i, 0]))

    with pytest.warns(DeprecationWarning):
        await session.send_media_stream(stream())
    for i in range(3):
        frame = await conn.expect()
        assert (
            frame["realtimeInput"]["mediaChunks"][0]["data"]
            == base64.b64encode(bytes([i, 0])).decode()
        )
    await session.close()


async def test_send_media_stream_rethrows_once_and_closes_the_stream(
    live_server: ScriptedServer,
) -> None:
    session, _ = await live_server.connect()
    closed = asyncio.Event()

    async def failing() -> AsyncIterator[GenerativeContentBlob]:
        try:
            yield GenerativeContentBlob("audio/pcm", b"\x00\x00")
            raise LiveSessionError(LiveErrorCode.REQUEST_ERROR, "reader broke")
        finally:
            closed.set()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(LiveSessionError) as info:
            await session.send_media_stream(failing())
    assert info.value.message == "reader broke", "the error is passed on, not wrapped again"
    assert closed.is_set()
    await session.close()


async def test_concurrent_senders_never_interleave_and_keep_their_order(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    per_task = 50

    async def sender(tag: int) -> None:
        for i in range(per_task):
            payload = bytes([tag]) * 3000 + i.to_bytes(2, "little")
            await session.send_audio_realtime(GenerativeContentBlob("audio/pcm", payload))

    async with asyncio.timeout(T):
        await asyncio.gather(*(sender(tag) for tag in range(4)))
        seen: dict[int, list[int]] = {tag: [] for tag in range(4)}
        for _ in range(4 * per_task):
            data = base64.b64decode((await conn.expect())["realtimeInput"]["audio"]["data"])
            tag = data[0]
            assert data[:3000] == bytes([tag]) * 3000
            seen[tag].append(int.from_bytes(data[3000:], "little"))
    assert all(order == list(range(per_task)) for order in seen.values())
    await session.close()


async def test_a_stalled_server_makes_senders_wait_instead_of_buffering(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    sent = 0
    frame = GenerativeContentBlob("audio/pcm", b"\x00" * 65536)

    async def flood() -> None:
        nonlocal sent
        for _ in range(2000):  # 2000 x 87 kB of base64 would be 175 MB if buffered
            await session.send_audio_realtime(frame)
            sent += 1

    task = asyncio.create_task(flood())
    await asyncio.sleep(1.0)  # the server reads nothing meanwhile
    assert not task.done(), "sending must block while the peer does not read"
    assert sent < 2000
    blocked_at = sent
    conn.drop()
    with pytest.raises(LiveConnectionClosed):
        async with asyncio.timeout(T):
            await task
    assert sent == blocked_at
    assert session.is_closed


# -- receiving ------------------------------------------------------------------------------------


async def test_receive_parses_all_message_types(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await conn.send({"serverContent": {"modelTurn": {"parts": [{"text": "hi"}]}}})
    await conn.send({"toolCall": {"functionCalls": [{"id": "1", "name": "f", "args": {}}]}})
    await conn.send({"toolCallCancellation": {"ids": ["1"]}})
    await conn.send({"goAway": {"timeLeft": "30s"}})
    await conn.send(
        {
            "sessionResumptionUpdate": {
                "newHandle": "test",
                "resumable": True,
                "lastConsumedClientMessageIndex": 5,
            }
        }
    )
    await conn.send({"serverContent": {"turnComplete": True}}, binary=False)
    messages = await take(session, 6)
    assert [type(m) for m in messages] == [
        LiveServerContent,
        LiveServerToolCall,
        LiveServerToolCallCancellation,
        LiveServerGoingAwayNotice,
        LiveSessionResumptionUpdate,
        LiveServerContent,
    ]
    assert messages[3] == LiveServerGoingAwayNotice(time_left=30.0)
    assert messages[4] == LiveSessionResumptionUpdate("test", True, 5)
    await session.close()


async def test_receive_does_not_stop_at_turn_complete(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    for _ in range(3):
        await conn.send({"serverContent": {"turnComplete": True}})
    messages = await take(session, 3)
    assert all(isinstance(m, LiveServerContent) and m.turn_complete for m in messages)
    await session.close()


async def test_usage_metadata_next_to_server_content_is_yielded(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    await conn.send(
        {"serverContent": {"turnComplete": True}, "usageMetadata": {"totalTokenCount": 42}}
    )
    content, usage = await take(session, 2)
    assert isinstance(content, LiveServerContent) and content.turn_complete
    assert isinstance(usage, LiveUsageMetadata) and usage.total_token_count == 42
    await session.close()


async def test_breaking_out_of_receive_loses_nothing(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await conn.send(
        {"serverContent": {"turnComplete": True}, "usageMetadata": {"totalTokenCount": 1}}
    )
    await conn.send({"goAway": {"timeLeft": "1s"}})
    [first] = await take(session, 1)
    [second] = await take(session, 1)
    [third] = await take(session, 1)
    assert (first.type, second.type, third.type) == (
        "serverContent",
        "usageMetadata",
        "goingAwayNotice",
    )
    await session.close()


async def test_messages_that_arrive_before_the_consumer_are_kept(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    for i in range(5):
        await conn.send({"serverContent": {"outputTranscription": {"text": str(i)}}})
    await asyncio.sleep(0.1)
    messages = await take(session, 5)
    assert [m.output_transcription.text for m in messages] == ["0", "1", "2", "3", "4"]
    await session.close()


async def test_receive_has_one_consumer_at_a_time(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    first = asyncio.create_task(take(session, 1))
    await asyncio.sleep(0.05)
    with pytest.raises(LiveSessionError, match="one consumer"):
        await take(session, 1)
    await conn.send({"serverContent": {"turnComplete": True}})
    assert len(await first) == 1
    await session.close()


async def test_non_objects_and_unknown_messages_are_logged_and_skipped(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    with structlog.testing.capture_logs() as logs:
        await conn.send_raw("null")
        await conn.send_raw('"a string"')
        await conn.send({"somethingNew": {}})
        await conn.send({"goAway": {"timeLeft": "2s"}})
        [message] = await take(session, 1)
    assert message == LiveServerGoingAwayNotice(2.0)
    events = [entry["event"] for entry in logs]
    assert events.count("session.message_invalid") == 2
    assert events.count("session.message_unknown") == 1
    await session.close()


async def test_malformed_json_raises_parse_failed_and_the_session_goes_on(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    await conn.send_raw(b"{broken")
    with pytest.raises(LiveSessionError) as info:
        await take(session, 1)
    assert info.value.code == LiveErrorCode.PARSE_FAILED
    await conn.send({"serverContent": {"turnComplete": True}})
    [message] = await take(session, 1)
    assert isinstance(message, LiveServerContent)
    await session.close()


# -- closing ------------------------------------------------------------------------------------


async def test_close_sets_is_closed_and_is_idempotent(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await session.close()
    assert session.is_closed and session.closed_by_client
    await session.close()
    async with asyncio.timeout(T):
        await conn.ws.wait_closed()
    assert conn.ws.close_code == 1000
    assert conn.ws.close_reason == "Client closed session."


async def test_close_terminates_an_active_receive(live_server: ScriptedServer) -> None:
    session, _ = await live_server.connect()
    received: list[object] = []

    async def consume() -> None:
        async for message in session.receive():
            received.append(message)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await session.close()
    async with asyncio.timeout(T):
        await task
    assert received == []


async def test_methods_raise_after_close(live_server: ScriptedServer) -> None:
    session, _ = await live_server.connect()
    await session.close()
    blob = GenerativeContentBlob("audio/pcm", b"\x00\x00")
    for call in (
        session.send("x"),
        session.send_text_realtime("x"),
        session.send_audio_realtime(blob),
        session.send_video_realtime(GenerativeContentBlob("image/jpeg", b"x")),
        session.send_function_responses([]),
    ):
        with pytest.raises(LiveSessionError, match="has been closed") as info:
            await call
        assert info.value.code == LiveErrorCode.REQUEST_ERROR
    with pytest.raises(LiveSessionError) as receive_error:
        await take(session, 1)
    assert receive_error.value.code == LiveErrorCode.SESSION_CLOSED


async def test_server_close_sets_is_closed_and_reports_code_and_reason(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    await conn.close(1011, "Internal error encountered.")
    with pytest.raises(LiveConnectionClosed) as info:
        await take(session, 1)
    assert (info.value.close_code, info.value.close_reason) == (1011, "Internal error encountered.")
    assert session.is_closed and not session.closed_by_client
    assert (session.close_code, session.close_reason) == (1011, "Internal error encountered.")
    with pytest.raises(LiveSessionError, match="has been closed") as send_error:
        await session.send_text_realtime("x")
    assert send_error.value.close_code == 1011


async def test_server_close_1000_ends_receive_normally(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    await conn.send({"serverContent": {"turnComplete": True}})
    await conn.close(1000, "The operation was cancelled.")
    messages = await take(session, 99)
    assert len(messages) == 1
    assert session.is_closed and session.close_code == 1000


async def test_dropped_connection_is_1006(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    conn.drop()
    with pytest.raises(LiveConnectionClosed) as info:
        await take(session, 1)
    assert info.value.close_code == 1006 and not info.value.by_server
    assert session.is_closed


async def test_async_context_manager_closes(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()
    async with session as s:
        await s.send_text_realtime("hi")
    assert session.is_closed
    assert json.loads(json.dumps(await conn.expect())) == {"realtimeInput": {"text": "hi"}}
