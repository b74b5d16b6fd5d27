"""``LiveSession``: the Firebase AI Logic ``LiveSession`` API over one WebSocket connection.

Create one with ``LiveGenerativeModel.connect()``. Differences from the JavaScript SDK, each on
purpose: ``is_closed`` turns true when the server or the network closes the connection; the close
code and reason reach the caller (``close_code``, ``close_reason`` and ``LiveConnectionClosed``);
``usageMetadata`` is yielded; breaking out of ``receive()`` loses nothing and ``receive()`` can be
entered again; a frame with several members yields each of them; sends wait for the socket
(backpressure) instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import warnings
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from agent.live import protocol
from agent.live.bad_input import BadInput
from agent.live.errors import LiveConnectionClosed, LiveErrorCode, LiveSessionError, ProtocolError
from agent.live.link_probe import LinkProbe
from agent.live.types import (
    Content,
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerMessage,
    LiveServerSetupComplete,
    Part,
)

log = structlog.get_logger(__name__)

CLOSED_MESSAGE = "This LiveSession has been closed and cannot be used."
CLOSED_RECEIVE_MESSAGE = (
    "Cannot read from a Live session that is closed. Try starting a new Live session."
)
CLIENT_CLOSE_REASON = "Client closed session."


class LiveSession:
    """A real-time, bidirectional conversation with the model over one connection.

    Only ``LiveGenerativeModel.connect()`` creates these. Every ``send_*`` method may be called
    from several tasks at once: frames are never interleaved, and a sender waits while the socket
    cannot keep up. ``receive()`` has one consumer at a time.
    """

    def __init__(
        self,
        connection: ClientConnection,
        setup_complete: LiveServerSetupComplete,
        *,
        close_timeout: float = 2.0,
        probe_interval_s: float = 0.5,
        dead_link_after_s: float | None = 4.0,
        bad_input: BadInput | None = None,
    ) -> None:
        self._ws = connection
        self._close_timeout = close_timeout
        self.bad_input = bad_input or BadInput()
        """Bad server input, counted by kind (shared by the connections of a session)."""
        self._probe = (
            LinkProbe(
                connection,
                interval_s=probe_interval_s,
                dead_after_s=dead_link_after_s,
                on_dead=self._link_dead,
            )
            if dead_link_after_s is not None
            else None
        )
        self._send_lock = asyncio.Lock()
        self._pending: deque[LiveServerMessage] = deque()
        self._receiving = False
        self._closed_by_client = False
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self.session_id = setup_complete.session_id
        self.in_conversation = False
        """True while an audio conversation (``start_audio_conversation``) drives this session."""

    # -- state ----------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once ``close()`` was called or the connection ended for any reason."""
        return self._closed_by_client or self._close_code is not None

    @property
    def close_code(self) -> int | None:
        """The close code once the connection has ended (1006: dropped without a close frame)."""
        return self._close_code

    @property
    def close_reason(self) -> str | None:
        """The reason text of the close frame, once the connection has ended."""
        return self._close_reason

    @property
    def closed_by_client(self) -> bool:
        """True when this side ended the session with ``close()``."""
        return self._closed_by_client

    def _link_dead(self, unanswered_s: float) -> None:
        if self._close_code is not None:
            return
        self._close_code = 1006
        self._close_reason = f"no answer to a ping for {unanswered_s:.1f} s: the link is dead"
        log.warning("session.link_dead", unanswered_s=round(unanswered_s, 3))
        self._ws.transport.abort()

    def _note_closed(self, exc: ConnectionClosed) -> LiveConnectionClosed:
        frame = exc.rcvd
        if self._probe is not None:
            self._probe.stop()
        if self._close_code is None:
            if frame is not None:
                self._close_code, self._close_reason = frame.code, frame.reason
            else:
                self._close_code, self._close_reason = (
                    1006,
                    "connection dropped without a close frame",
                )
            log.info(
                "session.closed_by_peer", close_code=self._close_code, reason=self._close_reason
            )
        return LiveConnectionClosed(
            self._close_code, self._close_reason or "", by_server=frame is not None
        )

    def _closed_error(self) -> LiveSessionError:
        return LiveSessionError(
            LiveErrorCode.REQUEST_ERROR,
            CLOSED_MESSAGE,
            close_code=self._close_code,
            close_reason=self._close_reason,
        )

    # -- sending --------------------------------------------------------------------------------

    async def _send(self, frame: str | bytes) -> None:
        """Send a text frame; ``bytes`` are UTF-8 JSON, sent as they are."""
        if self.is_closed:
            raise self._closed_error()
        async with self._send_lock:
            if self.is_closed:
                raise self._closed_error()
            if self._probe is not None:
                self._probe.note_sent()
            try:
                await self._ws.send(frame, text=True)
            except ConnectionClosed as exc:
                raise self._note_closed(exc) from None

    async def send(self, request: str | Sequence[str | Part], turn_complete: bool = True) -> None:
        """Send content as a turn (``clientContent``).

        ``turn_complete`` defaults to True, as the Firebase SDK's code does (its documentation
        says False). Function responses belong in ``send_function_responses``.
        """
        await self._send(protocol.client_content_frame([_format_content(request)], turn_complete))

    async def send_history(self, turns: Sequence[Content], turn_complete: bool = False) -> None:
        """Add earlier turns (``user`` and ``model``) to the context without asking for a
        reply: ``clientContent`` with ``turnComplete: false``, or, on a connection made with
        ``initial_history``, the whole initial history in one frame with ``turnComplete:
        true`` (``turn_complete=True``), which ends it."""
        await self._send(protocol.client_content_frame(list(turns), turn_complete))

    async def send_text_realtime(self, text: str) -> None:
        """Send text as realtime input."""
        await self._send(protocol.realtime_text_frame(text))

    async def send_audio_realtime(self, blob: GenerativeContentBlob) -> None:
        """Send a chunk of audio: 16-bit little-endian mono PCM, ``audio/pcm;rate=16000``."""
        _check_blob(blob, "audio/")
        await self._send(protocol.realtime_audio_frame(blob))

    async def send_video_realtime(self, blob: GenerativeContentBlob) -> None:
        """Send one video frame as an image (``image/jpeg`` recommended), about once a second."""
        _check_blob(blob, "image/")
        await self._send(protocol.realtime_video_frame(blob))

    async def send_activity_start(self) -> None:
        """Mark the start of user speech (only when automatic activity detection is disabled)."""
        await self._send(protocol.activity_start_frame())

    async def send_activity_end(self) -> None:
        """Mark the end of user speech (only when automatic activity detection is disabled)."""
        await self._send(protocol.activity_end_frame())

    async def send_audio_stream_end(self) -> None:
        """Tell the service the microphone paused, so it can close the user's turn."""
        await self._send(protocol.audio_stream_end_frame())

    async def send_function_responses(self, function_responses: Sequence[FunctionResponse]) -> None:
        """Send the results of function calls, all in one ``toolResponse`` frame."""
        await self._send(protocol.tool_response_frame(function_responses))

    async def send_media_chunks(self, media_chunks: Sequence[GenerativeContentBlob]) -> None:
        """Deprecated: use ``send_audio_realtime``, ``send_video_realtime`` or
        ``send_text_realtime``. Sends one frame per chunk."""
        warnings.warn(
            "send_media_chunks() is deprecated: use send_audio_realtime(), send_video_realtime() "
            "or send_text_realtime()",
            DeprecationWarning,
            stacklevel=2,
        )
        await self._send_media_chunks(media_chunks)

    async def _send_media_chunks(self, media_chunks: Sequence[GenerativeContentBlob]) -> None:
        for chunk in media_chunks:
            await self._send(protocol.media_chunk_frame(chunk))

    async def send_media_stream(
        self, media_chunk_stream: AsyncIterable[GenerativeContentBlob]
    ) -> None:
        """Deprecated: send every chunk of an async iterable, as ``send_media_chunks`` does."""
        warnings.warn(
            "send_media_stream() is deprecated: use send_audio_realtime(), send_video_realtime() "
            "or send_text_realtime()",
            DeprecationWarning,
            stacklevel=2,
        )
        iterator = aiter(media_chunk_stream)
        try:
            async for chunk in iterator:
                if chunk is None:
                    raise LiveSessionError(
                        LiveErrorCode.REQUEST_ERROR, "Missing chunk in media stream."
                    )
                await self._send_media_chunks([chunk])
        except LiveSessionError:
            raise
        except Exception as exc:
            raise LiveSessionError(
                LiveErrorCode.REQUEST_ERROR, str(exc) or "Error processing media stream."
            ) from exc
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()

    # -- receiving ------------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[LiveServerMessage]:
        """Yield messages from the server as they arrive.

        Does not stop at ``turnComplete``: it ends when this side closes the session (after the
        messages that were already on their way), or the server closes it with 1000. Any other
        close raises ``LiveConnectionClosed`` with the code and reason. Breaking out of the loop
        loses nothing; call ``receive()`` again to go on. One consumer at a time: a second task
        waiting at once gets a ``REQUEST_ERROR``.
        """
        if self.is_closed and not self._pending:
            raise LiveSessionError(
                LiveErrorCode.SESSION_CLOSED,
                CLOSED_RECEIVE_MESSAGE,
                close_code=self._close_code,
                close_reason=self._close_reason,
            )
        while True:
            while self._pending:
                yield self._pending.popleft()
            # After close() this goes on reading what the server sent before the close, then
            # ends: messages already on their way are not thrown away.
            if self._receiving:
                raise LiveSessionError(
                    LiveErrorCode.REQUEST_ERROR,
                    "receive() can only be used by one consumer at a time.",
                )
            self._receiving = True
            try:
                data = await self._ws.recv(decode=False)
            except ConnectionClosed as exc:
                if self._closed_by_client:
                    return
                closed = self._note_closed(exc)
                if isinstance(exc, ConnectionClosedOK) and self._close_code == 1000:
                    return
                raise closed from None
            finally:
                self._receiving = False
            self._pending.extend(self._parse(data))

    def _parse(self, data: bytes | str) -> list[LiveServerMessage]:
        try:
            frame = protocol.parse_server_frame(data)
        except ProtocolError as exc:
            raise LiveSessionError(LiveErrorCode.PARSE_FAILED, str(exc)) from None
        for problem in frame.problems:
            self.bad_input.note("session.message_invalid", problem.kind, problem=problem.detail)
        for key in frame.unknown:
            self.bad_input.note("session.message_unknown", "unknown", key=key)
        messages: list[LiveServerMessage] = []
        for message in frame.messages:
            if isinstance(message, LiveServerSetupComplete):
                log.warning("session.message_unexpected", key="setupComplete")
            else:
                messages.append(message)
        return messages

    # -- closing --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session (code 1000). Idempotent; every method raises once this returns."""
        if self._closed_by_client:
            return
        self._closed_by_client = True
        if self._probe is not None:
            self._probe.stop()
        if self._close_code is None:
            self._close_code, self._close_reason = 1000, CLIENT_CLOSE_REASON
        try:
            async with asyncio.timeout(self._close_timeout):
                await self._ws.close(1000, CLIENT_CLOSE_REASON)
        except TimeoutError:
            self._ws.transport.abort()
        log.info("session.closed")

    async def __aenter__(self) -> LiveSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _format_content(request: str | Sequence[str | Part]) -> Content:
    """The Firebase SDK's ``formatNewContent``: strings become text parts; role ``function`` when
    the parts are function responses, which may not be mixed with other parts."""
    items: Sequence[Any] = [request] if isinstance(request, str) else request
    parts = [Part(text=item) if isinstance(item, str) else item for item in items]
    if not parts:
        raise LiveSessionError(
            LiveErrorCode.INVALID_CONTENT, "No Content is provided for sending chat message."
        )
    for part in parts:
        if not isinstance(part, Part):
            raise LiveSessionError(
                LiveErrorCode.INVALID_CONTENT, f"Expected str or Part, got {type(part).__name__}."
            )
    responses = sum(1 for part in parts if part.function_response is not None)
    if responses and responses != len(parts):
        raise LiveSessionError(
            LiveErrorCode.INVALID_CONTENT,
            "Within a single message, FunctionResponse cannot be mixed with other type of Part "
            "in the request for sending chat message.",
        )
    return Content(role="function" if responses else "user", parts=parts)


def _check_blob(blob: GenerativeContentBlob, prefix: str) -> None:
    if not isinstance(blob, GenerativeContentBlob):
        raise LiveSessionError(
            LiveErrorCode.INVALID_CONTENT,
            f"Expected a GenerativeContentBlob, got {type(blob).__name__}.",
        )
    if not blob.mime_type.startswith(prefix):
        raise LiveSessionError(
            LiveErrorCode.INVALID_CONTENT,
            f"Expected a {prefix}* mime type, got {blob.mime_type!r}.",
        )
