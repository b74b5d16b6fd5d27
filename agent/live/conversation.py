"""``start_audio_conversation()``: microphone -> session -> speaker, with function calls.

The Python counterpart of the Firebase SDK's audio conversation controller, for devices rather
than browsers. It meets the hardware through small interfaces (an audio source, an audio sink,
optionally a voice activity detector and a video source), so it runs the same with PyAudio,
WAV files or anything else that has their shape. Where the JS controller falls short it does
better: every audio part of a message is played, the rate in the mime type is honoured,
function calls run concurrently (one slow GPIO action does not stall the audio) and can be
cancelled by ``toolCallCancellation``, and ``stop()`` loses no message.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from agent.live.bad_input import BadInput
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.histogram import Histogram
from agent.live.protocol import encodable_response
from agent.live.types import (
    AUDIO_INPUT_MIME,
    AUDIO_OUTPUT_RATE,
    FunctionCall,
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerMessage,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveServerVoiceActivity,
    LiveUsageMetadata,
    Part,
)

log = structlog.get_logger(__name__)


class AudioSource(Protocol):
    """16 kHz mono 16-bit little-endian PCM, in chunks."""

    def chunks(self) -> AsyncIterator[bytes]: ...


class AudioSink(Protocol):
    """Plays PCM; ``flush()`` silences it at once (barge-in)."""

    def write(self, pcm: bytes, sample_rate: int = AUDIO_OUTPUT_RATE) -> None: ...

    def flush(self) -> None: ...


class VoiceActivityDetector(Protocol):
    """Decides, chunk by chunk, whether the user is speaking (with its own hangover)."""

    def is_speech(self, chunk: bytes) -> bool: ...


class WakeWord(Protocol):
    """What a wake-word detector says it heard."""

    @property
    def name(self) -> str: ...

    @property
    def probability(self) -> float: ...


class WakeWordSpotter(Protocol):
    """Listens to every chunk, while the conversation sleeps, for a wake word."""

    def detect(self, chunk: bytes) -> WakeWord | None: ...

    def reset(self) -> None: ...


class ToolDispatcher(Protocol):
    """Runs a function by name; returns the response payload, never raises for bad input."""

    async def call(
        self,
        name: str,
        args: Mapping[str, Any],
        *,
        call_id: str | None = None,
        session: str | None = None,
    ) -> dict[str, Any]: ...

    def scheduling(self, name: str) -> str | None:
        """The ``scheduling`` of a non-blocking function's responses, None for others."""
        ...


class ConversationSession(Protocol):
    """What the conversation needs of a session: ``LiveSession`` and ``ResilientSession``."""

    in_conversation: bool

    @property
    def is_closed(self) -> bool: ...

    def receive(self) -> AsyncIterator[LiveServerMessage]: ...

    async def send(self, request: str | list[str | Part], turn_complete: bool = True) -> None: ...

    async def send_audio_realtime(self, blob: GenerativeContentBlob) -> None: ...

    async def send_video_realtime(self, blob: GenerativeContentBlob) -> None: ...

    async def send_audio_stream_end(self) -> None: ...

    async def send_activity_start(self) -> None: ...

    async def send_activity_end(self) -> None: ...

    async def send_function_responses(self, function_responses: list[FunctionResponse]) -> None: ...


FunctionCallingHandler = Callable[[FunctionCall], Awaitable[FunctionResponse | dict[str, Any]]]
"""Runs one function call. Return a ``FunctionResponse`` or just the response payload."""

EventListener = Callable[[str, dict[str, Any]], None]
"""Told what happens: ``("transcript.user", {"text": ...})``, ``("tool.call", {...})`` ..."""


def dispatcher_handler(
    dispatcher: ToolDispatcher, session_name: str | None = None
) -> FunctionCallingHandler:
    """A function calling handler that runs calls through a tool registry."""

    async def handle(call: FunctionCall) -> FunctionResponse:
        payload = await dispatcher.call(call.name, call.args, call_id=call.id, session=session_name)
        scheduling = dispatcher.scheduling(call.name)
        return FunctionResponse(id=call.id, name=call.name, response=payload, scheduling=scheduling)

    return handle


MAX_CALLS_IN_FLIGHT = 64
"""Tool calls running at once; more are answered at once with an error (each would hold a task
and a handler until it ends)."""

TRANSCRIPT_KEEP_CHARS = 4_096
"""Characters of each transcript the stats keep (the newest); listeners get every fragment."""


class TranscriptTail:
    """The newest ``keep_chars`` characters of a transcript, and how much there was in all.

    Iterating yields the kept fragments in order, so ``"".join(tail)`` is the kept text.
    """

    def __init__(self, keep_chars: int = TRANSCRIPT_KEEP_CHARS) -> None:
        self.keep_chars = keep_chars
        self.fragments = 0
        self.chars = 0
        self._kept: deque[str] = deque()
        self._kept_chars = 0

    def append(self, text: str) -> None:
        self.fragments += 1
        self.chars += len(text)
        text = text[-self.keep_chars :]
        self._kept.append(text)
        self._kept_chars += len(text)
        while self._kept_chars > self.keep_chars:
            oldest = self._kept.popleft()
            excess = self._kept_chars - self.keep_chars
            self._kept_chars -= len(oldest)
            if len(oldest) > excess:  # keep its newest end
                self._kept.appendleft(oldest[excess:])
                self._kept_chars += len(oldest) - excess

    @property
    def text(self) -> str:
        return "".join(self._kept)

    def __iter__(self) -> Iterator[str]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)


@dataclass
class ConversationStats:
    chunks_sent: int = 0
    chunks_gated: int = 0
    audio_chunks_played: int = 0
    bad_audio_chunks: int = 0
    sink_errors: int = 0
    failed_messages: int = 0
    unencodable_tool_results: int = 0
    interruptions: int = 0
    tool_calls: int = 0
    tool_cancellations: int = 0
    tool_calls_refused: int = 0
    frames_sent: int = 0
    frames_held: int = 0
    wakes: int = 0
    usage: LiveUsageMetadata | None = None
    voice_latency: Histogram = field(default_factory=Histogram)
    """Seconds from the end of the user's speech to the first audio of the reply reaching the
    speaker."""
    tool_latency: Histogram = field(default_factory=Histogram)
    """Seconds from a tool call's arrival to its response being sent."""
    user_transcript: TranscriptTail = field(default_factory=TranscriptTail)
    model_transcript: TranscriptTail = field(default_factory=TranscriptTail)


class AudioConversationController:
    """Returned by ``start_audio_conversation``; ``stop()`` ends the conversation (the session
    stays open, as in the Firebase SDK)."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner

    @property
    def stats(self) -> ConversationStats:
        return self._runner.stats

    @property
    def muted(self) -> bool:
        """While muted, no microphone audio leaves the device."""
        return self._runner.muted

    def set_muted(self, muted: bool) -> None:
        self._runner.set_muted(muted)

    @property
    def awake(self) -> bool:
        """Whether microphone audio may leave the device now: always, unless the conversation
        listens for a wake word and none has been heard since it last went to sleep."""
        return self._runner.awake

    @property
    def listening_for_wake_word(self) -> bool:
        """Whether the conversation sleeps until a wake word."""
        return self._runner.wake is not None

    async def stop(self) -> None:
        """Stop listening and playing, cancel running function calls. Idempotent."""
        await self._runner.stop()

    async def wait(self) -> None:
        """Wait until the conversation ends (the session ended, or ``stop()``); raises the
        error that ended it, if any."""
        await self._runner.wait()


async def start_audio_conversation(
    session: ConversationSession,
    *,
    source: AudioSource,
    sink: AudioSink,
    function_calling_handler: FunctionCallingHandler | None = None,
    vad: VoiceActivityDetector | None = None,
    client_activity_detection: bool = False,
    pre_roll_ms: int = 300,
    chunk_ms: int = 40,
    video: AsyncIterable[bytes] | None = None,
    video_mime_type: str = "image/jpeg",
    on_event: EventListener | None = None,
    wake: WakeWordSpotter | None = None,
    conversation_timeout_s: float = 10.0,
    video_while_asleep: bool = False,
    chime: bytes | None = None,
    speaker_busy: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_usage: Callable[[LiveUsageMetadata], None] | None = None,
) -> AudioConversationController:
    """Start a two-way audio conversation on ``session``.

    - ``vad``: send speech only (with ``pre_roll_ms`` of audio before it), and tell the service
      when the user stopped: ``audioStreamEnd``, or with ``client_activity_detection`` (the
      service's automatic activity detection disabled) ``activityStart``/``activityEnd``.
    - ``wake``: send nothing until it hears a wake word; then the ``pre_roll_ms`` of audio
      before the detection and everything after (through ``vad``, if given), until nobody has
      spoken for ``conversation_timeout_s`` since the model's last turn ended and
      ``speaker_busy()`` is false: the conversation sleeps again (``audioStreamEnd``). Video
      frames are dropped while it sleeps unless ``video_while_asleep``; ``chime`` (24 kHz PCM)
      plays at each wake; muting ends the conversation and cuts the model off.
    - ``video``: JPEG frames to send as they come (pace them at the source).
    - ``function_calling_handler``: runs each function call in its own task.
    - ``on_usage``: hears every ``usageMetadata`` the service sends (its tokens per turn).
    """
    if session.is_closed:
        raise LiveSessionError(
            LiveErrorCode.SESSION_CLOSED, "Cannot start audio conversation on a closed LiveSession."
        )
    if session.in_conversation:
        raise LiveSessionError(
            LiveErrorCode.REQUEST_ERROR,
            "An audio conversation is already in progress for this session.",
        )
    if client_activity_detection and vad is None:
        raise ValueError("client_activity_detection needs a voice activity detector (vad=...)")
    runner = _Runner(
        session,
        source,
        sink,
        function_calling_handler,
        vad,
        client_activity_detection,
        max(0, pre_roll_ms // max(chunk_ms, 1)),
        video,
        video_mime_type,
        on_event,
    )
    runner.on_usage = on_usage
    if wake is not None:
        runner.listen_for(wake, _WakePolicy(conversation_timeout_s, video_while_asleep, chime,
                                            speaker_busy, clock))
    runner.start()
    return AudioConversationController(runner)


@dataclass(frozen=True)
class _WakePolicy:
    timeout_s: float
    video_while_asleep: bool
    chime: bytes | None
    speaker_busy: Callable[[], bool] | None
    clock: Callable[[], float]


class _Runner:
    def __init__(
        self,
        session: ConversationSession,
        source: AudioSource,
        sink: AudioSink,
        handler: FunctionCallingHandler | None,
        vad: VoiceActivityDetector | None,
        client_activity: bool,
        pre_roll_chunks: int,
        video: AsyncIterable[bytes] | None,
        video_mime_type: str,
        on_event: EventListener | None,
    ) -> None:
        self.session = session
        self.source = source
        self.sink = sink
        self.handler = handler
        self.vad = vad
        self.client_activity = client_activity
        self.pre_roll: deque[bytes] = deque(maxlen=pre_roll_chunks or None)
        self.pre_roll_chunks = pre_roll_chunks
        self.video = video
        self.video_mime_type = video_mime_type
        self.on_event = on_event
        self.on_usage: Callable[[LiveUsageMetadata], None] | None = None
        self.stats = ConversationStats()
        self.bad_input = BadInput()
        self.muted = False
        self.wake: WakeWordSpotter | None = None
        self.policy: _WakePolicy | None = None
        self.awake = True
        self._model_turn_open = False
        self._cut_off = False  # the rest of the model's turn is not played
        self._last_activity = 0.0
        self._speaking = False
        self._speech_ended_at: float | None = None  # waiting for the reply's first audio
        self._replying = False  # reply audio came since the model's last turn ended
        self._stream_open = False
        self._calls: dict[str, asyncio.Task[None]] = {}  # by id, for cancellations
        self._running: set[asyncio.Task[None]] = set()  # every call being run
        self._refusals: set[asyncio.Task[None]] = set()  # answers to calls over the limit
        self._task: asyncio.Task[None] | None = None
        self._cleaned = False

    def listen_for(self, wake: WakeWordSpotter, policy: _WakePolicy) -> None:
        """Sleep until ``wake`` hears a wake word (before ``start()``)."""
        self.wake, self.policy, self.awake = wake, policy, False

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.session.in_conversation = True
        self._task = asyncio.create_task(self._run(), name="audio-conversation")

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._microphone(), name="conversation-mic")
                group.create_task(self._speaker(), name="conversation-receive")
                if self.video is not None:
                    group.create_task(self._camera(self.video), name="conversation-video")
        except* _SessionEnded:
            log.info("conversation.ended", reason="session ended")
        finally:
            await self._cleanup()

    async def stop(self, wait_s: float = 2.0) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait neither raises the task's error nor swallows our own cancellation.
            done, _ = await asyncio.wait({task}, timeout=wait_s)
            if not done:
                log.warning("conversation.stop_timeout", waited_s=wait_s)
        if task is not None and task.done() and not task.cancelled() and task.exception():
            log.info("conversation.ended_with_error", error=str(task.exception()))
        # A task cancelled before its first step never ran its own cleanup.
        await self._cleanup()

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        calls = [*self._running, *self._refusals]
        for task in calls:
            task.cancel()
        if calls:
            await asyncio.gather(*calls, return_exceptions=True)
        self.sink.flush()
        self.session.in_conversation = False

    def set_muted(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            log.info("conversation.mute", muted=muted)
            self._emit("mute", muted=muted)
            if muted and self.wake is not None:
                # The button cuts the model off; the microphone loop puts it to sleep.
                self._cut_off = self._model_turn_open
                self.sink.flush()

    def _emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event, fields)
            except Exception:
                log.exception("conversation.listener_failed", event_name=event)

    # -- microphone -------------------------------------------------------------------------------

    async def _microphone(self) -> None:
        async for chunk in self.source.chunks():
            if self.muted:
                await self._end_speech()
                await self._pause_stream()
                if self.awake and self.wake is not None:
                    await self._fall_asleep("muted")
                continue
            if self.wake is not None:
                if self.awake and self._idle_too_long():
                    await self._fall_asleep("timeout")
                if not self.awake and not await self._heard_wake_word(chunk):
                    continue
            if self.vad is None:
                await self._send_chunk(chunk)
                continue
            if self.vad.is_speech(chunk):
                if not self._speaking:
                    await self._start_speech()
                await self._send_chunk(chunk)
            else:
                await self._end_speech()
                if self.pre_roll_chunks:
                    self.pre_roll.append(chunk)
                self.stats.chunks_gated += 1
        await self._end_speech()
        await self._pause_stream()  # the source ended (a file, an unplugged device)

    # -- wake word --------------------------------------------------------------------------------

    async def _heard_wake_word(self, chunk: bytes) -> bool:
        """Listen to one chunk while asleep; on a wake word, wake up and send the pre-roll."""
        assert self.wake is not None and self.policy is not None
        heard = self.wake.detect(chunk)
        if heard is None:
            if self.pre_roll_chunks:
                self.pre_roll.append(chunk)
            self.stats.chunks_gated += 1
            return False
        self.awake = True
        self.stats.wakes += 1
        self._last_activity = self.policy.clock()
        log.info("conversation.wake", wake_word=heard.name, probability=heard.probability,
                 pre_roll_chunks=len(self.pre_roll))
        self._emit("listen.wake", wake_word=heard.name, probability=heard.probability)
        if self.policy.chime is not None:
            try:
                self.sink.write(self.policy.chime, AUDIO_OUTPUT_RATE)
            except Exception as exc:
                log.warning("conversation.chime_failed", error=f"{type(exc).__name__}: {exc}")
        if self.vad is None:  # with a speech gate, its onset sends the pre-roll
            while self.pre_roll:
                self.stats.chunks_gated -= 1
                await self._send_chunk(self.pre_roll.popleft())
        return True

    def _idle_too_long(self) -> bool:
        """Nobody has spoken since the model's last turn ended, for the timeout."""
        assert self.policy is not None
        now = self.policy.clock()
        busy = self.policy.speaker_busy
        if self._model_turn_open or self._speaking or (busy is not None and busy()):
            self._last_activity = now
            return False
        return now - self._last_activity > self.policy.timeout_s

    async def _fall_asleep(self, reason: str) -> None:
        assert self.wake is not None
        self.awake = False
        await self._end_speech()
        await self._pause_stream()
        self.wake.reset()
        self.pre_roll.clear()
        log.info("conversation.sleep", reason=reason)
        self._emit("listen.sleep", reason=reason)

    def _note_activity(self) -> None:
        if self.policy is not None:
            self._last_activity = self.policy.clock()

    async def _pause_stream(self) -> None:
        """Tell the service the audio stream paused, so it does not wait for more of a turn."""
        if self._stream_open and not self.client_activity:
            self._stream_open = False
            await self.session.send_audio_stream_end()

    async def _send_chunk(self, chunk: bytes) -> None:
        await self.session.send_audio_realtime(GenerativeContentBlob(AUDIO_INPUT_MIME, chunk))
        self.stats.chunks_sent += 1
        self._stream_open = True

    async def _start_speech(self) -> None:
        self._speaking = True
        self._emit("user.speech_start")
        if self.client_activity:
            await self.session.send_activity_start()
        while self.pre_roll:
            self.stats.chunks_gated -= 1
            await self._send_chunk(self.pre_roll.popleft())

    async def _end_speech(self) -> None:
        if not self._speaking:
            return
        self._speaking = False
        self._mark_speech_end()
        self._emit("user.speech_end")
        if self.client_activity:
            await self.session.send_activity_end()
        else:
            await self._pause_stream()

    # -- camera -----------------------------------------------------------------------------------

    async def _camera(self, frames: AsyncIterable[bytes]) -> None:
        async for jpeg in frames:
            if not self.awake and self.policy is not None and not self.policy.video_while_asleep:
                self.stats.frames_held += 1
                continue
            await self.session.send_video_realtime(
                GenerativeContentBlob(self.video_mime_type, jpeg)
            )
            self.stats.frames_sent += 1

    # -- server messages --------------------------------------------------------------------------

    async def _speaker(self) -> None:
        async for message in self.session.receive():
            try:
                self._on_message(message)
            except Exception as exc:  # one message's failure never ends the conversation
                self.stats.failed_messages += 1
                self.bad_input.note(
                    "conversation.message_failed",
                    message.type,
                    error=f"{type(exc).__name__}: {exc}",
                )
        raise _SessionEnded

    def _on_message(self, message: LiveServerMessage) -> None:
        if isinstance(message, LiveServerContent):
            self._on_content(message)
        elif isinstance(message, LiveServerToolCall):
            self._on_tool_call(message)
        elif isinstance(message, LiveServerToolCallCancellation):
            self._on_cancellation(message)
        elif isinstance(message, LiveUsageMetadata):
            self.stats.usage = message
            if self.on_usage is not None:
                self.on_usage(message)
        elif (isinstance(message, LiveServerVoiceActivity)
              and message.activity_type in ("ACTIVITY_END", "VAD_SIGNAL_TYPE_EOS")
              and self._speech_ended_at is None):
            # Without a speech gate of its own, the device learns the end of speech from the
            # service's activity detection.
            self._mark_speech_end()

    def _mark_speech_end(self) -> None:
        """Time the reply to this speech; speech over a reply still playing is not timed (the
        next audio is the old reply's)."""
        if not self._replying:
            self._speech_ended_at = time.monotonic()

    def _on_content(self, message: LiveServerContent) -> None:
        ended = bool(message.turn_complete or message.interrupted)
        if self.policy is not None:
            self._note_activity()
            if ended:
                self._model_turn_open = self._cut_off = False
            elif message.audio_chunks() or message.text or message.output_transcription:
                self._model_turn_open = True
        if message.interrupted:
            self.sink.flush()  # barge-in: drop what is queued at once
            self.stats.interruptions += 1
            self._emit("model.interrupted")
        for blob in message.audio_chunks() if not self._cut_off else ():
            try:
                pcm = blob.as_bytes()
                if len(pcm) % 2:
                    raise ValueError(f"odd byte count {len(pcm)} for 16-bit PCM")
            except ValueError as exc:
                self.stats.bad_audio_chunks += 1
                self.bad_input.note("conversation.bad_audio", "audio", error=str(exc))
                continue
            try:
                self.sink.write(pcm, blob.sample_rate or AUDIO_OUTPUT_RATE)
            except Exception as exc:  # the speaker refused it: skip it, play the rest
                self.stats.sink_errors += 1
                self.bad_input.note(
                    "conversation.sink_failed", "sink", error=f"{type(exc).__name__}: {exc}"
                )
                continue
            self.stats.audio_chunks_played += 1
            self._replying = True
            if self._speech_ended_at is not None:
                self.stats.voice_latency.observe(time.monotonic() - self._speech_ended_at)
                self._speech_ended_at = None
        if ended:
            self._replying = False
        if message.input_transcription and message.input_transcription.text:
            self.stats.user_transcript.append(message.input_transcription.text)
            self._emit("transcript.user", text=message.input_transcription.text)
        if message.output_transcription and message.output_transcription.text:
            self.stats.model_transcript.append(message.output_transcription.text)
            self._emit("transcript.model", text=message.output_transcription.text)
        if message.text:
            self._emit("model.text", text=message.text)
        if message.turn_complete:
            self._emit("model.turn_complete")

    def _on_tool_call(self, message: LiveServerToolCall) -> None:
        if self.handler is None:
            log.warning(
                "conversation.tool_call_ignored",
                reason="no function calling handler",
                names=[c.name for c in message.function_calls],
            )
            return
        refused: list[FunctionCall] = []
        for call in message.function_calls:
            self.stats.tool_calls += 1
            if len(self._running) >= MAX_CALLS_IN_FLIGHT:
                self.stats.tool_calls_refused += 1
                self.bad_input.note(
                    "conversation.tool_call_refused", "calls", name=call.name, id=call.id,
                    in_flight=MAX_CALLS_IN_FLIGHT,
                )  # fmt: skip
                refused.append(call)
                continue
            self._emit("tool.call", name=call.name, args=call.args, id=call.id)
            task = _track(self._running, self._run_call(call), f"tool-{call.name}")
            if call.id is not None:
                self._calls[call.id] = task
                task.add_done_callback(self._forget_call(call.id))
        if refused:
            _track(self._refusals, self._refuse(refused), "tool-refusals")

    async def _refuse(self, calls: list[FunctionCall]) -> None:
        error = f"{MAX_CALLS_IN_FLIGHT} tool calls are running already; call again later"
        for call in calls:
            response = FunctionResponse(id=call.id, name=call.name, response={"error": error})
            await self._answer(call, response)

    def _forget_call(self, call_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            if self._calls.get(call_id) is task:
                del self._calls[call_id]

        return forget

    async def _run_call(self, call: FunctionCall) -> None:
        assert self.handler is not None
        started = time.monotonic()
        try:
            result = await self.handler(call)
        except asyncio.CancelledError:
            log.info("conversation.tool_cancelled", name=call.name, id=call.id)
            raise
        except Exception as exc:
            log.exception("conversation.tool_failed", name=call.name, id=call.id)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        response = (
            result
            if isinstance(result, FunctionResponse)
            else FunctionResponse(id=call.id, name=call.name, response=result)
        )
        response, unencodable = encodable_response(response)
        if unencodable is not None:
            self.stats.unencodable_tool_results += 1
            log.warning(
                "conversation.tool_result_unencodable", name=call.name, id=call.id,
                error=unencodable,
            )  # fmt: skip
        self._emit("tool.response", name=call.name, id=call.id, response=response.response)
        await self._answer(call, response)
        self.stats.tool_latency.observe(time.monotonic() - started)

    async def _answer(self, call: FunctionCall, response: FunctionResponse) -> None:
        try:
            await self.session.send_function_responses([response])
        except LiveSessionError as exc:
            log.warning(
                "conversation.tool_response_lost", name=call.name, id=call.id, error=str(exc)
            )
        except Exception as exc:  # never an unretrieved task error
            log.warning(
                "conversation.tool_response_lost", name=call.name, id=call.id,
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip

    def _on_cancellation(self, message: LiveServerToolCallCancellation) -> None:
        for call_id in message.function_ids:
            task = self._calls.pop(call_id, None)
            if task is not None:
                task.cancel()
                self.stats.tool_cancellations += 1
                self._emit("tool.cancelled", id=call_id)


class _SessionEnded(Exception):
    """The session's ``receive()`` finished: the conversation is over."""


def _track(
    tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """Run ``work`` as a task held in ``tasks`` until it ends."""
    task = asyncio.create_task(work, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task
