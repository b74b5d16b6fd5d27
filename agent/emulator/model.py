"""The deterministic fake model behind one connection.

It turns client input into user turns (spoken turns found by energy in the audio, or marked
by activityStart/activityEnd; typed turns from clientContent and realtime text), answers each
with the scenario's tool calls and reply, and keeps the session's token count.

Its work per connection is bounded: at most ``max_pending_turns`` turns wait (the connection
stops reading until one is answered; while a function call waits for its response, later
turns join the last waiting one instead), a turn keeps ``max_turn_chars`` of its words, a
reply lasts ``max_reply_s`` at most and is made and sent chunk by chunk, yielding to the loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from websockets.exceptions import ConnectionClosed

from agent.emulator import wire
from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault, FaultKind, Trigger
from agent.emulator.recording import EmulatorStats
from agent.emulator.scenario import DEFAULT, Rule, Scenario
from agent.emulator.sessions import ConversationState
from agent.emulator.speech import EnergyVad, VadEvent, VadSettings, pitch_for_voice, voice_chunks

log = structlog.get_logger(__name__)

_MEDIA_TOKENS = {"MEDIA_RESOLUTION_LOW": 64, "MEDIA_RESOLUTION_MEDIUM": 256}
LOG_TEXT_CHARS = 120  # what a log line shows of a turn's words


class ModelHost(Protocol):
    """What the model needs from its connection."""

    async def send(self, message: dict[str, Any]) -> None:
        """Send one server message."""

    async def fire(self, trigger: Trigger) -> None:
        """Fire the faults armed for ``trigger``."""

    def take_tool_faults(self) -> list[Fault]:
        """Remove and return the armed tool-call faults."""

    def arm(self, fault: Fault) -> None:
        """Arm a fault on this connection (from a scenario rule)."""

    def handle_update(self) -> dict[str, Any] | None:
        """A sessionResumptionUpdate for the current state (None: not requested)."""

    def end_session(self, close: tuple[int, str]) -> None:
        """The session is over: close the connection (soon, from a task)."""


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A function call waiting for its response."""

    name: str
    future: asyncio.Future[dict[str, Any]]
    non_blocking: bool = False  # declared NON_BLOCKING: the reply goes on without it


@dataclass(frozen=True, slots=True)
class UserTurn:
    """One complete user turn."""

    text: str
    spoken: int | None
    index: int
    ended_at: float
    previous: str = ""  # the user's turn before this one, from the session's history


class FakeModel:
    """Answers user turns on one connection; the state belongs to the session."""

    def __init__(
        self,
        setup: wire.Setup,
        config: EmulatorConfig,
        state: ConversationState,
        host: ModelHost,
        *,
        stats: EmulatorStats | None = None,
        vertex: bool = False,
        resumable: bool = False,
    ) -> None:
        self.setup, self.config, self.state, self.host = setup, config, state, host
        self.limits = config.limits
        self.stats = stats if stats is not None else EmulatorStats()
        self.scenario: Scenario = config.scenario or DEFAULT
        self.vertex, self.resumable = vertex, resumable
        activity = setup.activity
        self.vad = EnergyVad(
            VadSettings.for_setup(
                config.speech_threshold_dbfs,
                config.speech_start_ms,
                config.silence_duration_ms,
                activity.start_sensitivity,
                activity.end_sensitivity,
                activity.prefix_padding_ms,
                activity.silence_duration_ms,
            )
        )
        self.in_activity = False  # between activityStart and activityEnd
        self.activity_text = ""
        self.pending_text = ""  # the user's words given as context since the model last spoke
        # declared initial history: clientContent is context until one ends it (turnComplete)
        self.history_open = setup.initial_history
        self.outstanding: dict[str, PendingCall] = {}
        self.cancelled: dict[str, None] = {}  # the newest cancelled call ids, oldest first
        self.turns: deque[UserTurn] = deque()
        self._reply: asyncio.Task[None] | None = None
        self._speaking = False  # a reply is being generated
        self._awaiting_calls = False  # the reply waits for function responses
        self._space = asyncio.Event()  # the connection may read on (see wait_for_space)
        self._space.set()
        self.image_tokens = _MEDIA_TOKENS.get(setup.media_resolution or "", config.image_tokens)
        self.pitch = pitch_for_voice(setup.voice_name, config.reply_pitch_hz)

    # --- input -------------------------------------------------------------------------

    def admit(self, message: wire.ClientMessage) -> None:
        """Refuse realtime input and function responses before the declared initial history
        has ended, as the service does. On the per-frame path: one test when it has."""
        if self.history_open and not isinstance(message, wire.ClientContent | wire.ContextUpdate):
            raise wire.ProtocolViolation(
                wire.HISTORY_PENDING, f"{type(message).__name__} before the initial history ended"
            )

    async def handle(self, message: wire.ClientMessage) -> None:
        """Consume one client message (never ``Setup``)."""
        if isinstance(message, wire.Audio):
            await self.on_speech_events(self.feed_audio(message))
        elif isinstance(message, wire.Video):
            self._add_tokens("IMAGE", self.image_tokens)
        elif isinstance(message, wire.RealtimeText):
            self._add_tokens("TEXT", self._text_tokens(message.text))
            if self.in_activity:
                self.activity_text = self._joined(self.activity_text, message.text)
            else:
                await self._user_turn(message.text, spoken=False)
        elif isinstance(message, wire.ClientContent):
            await self._client_content(message)
        elif isinstance(message, wire.ToolResponse):
            await self._tool_response(message)
        elif isinstance(message, wire.ActivityStart | wire.ActivityEnd):
            await self._activity(message)
        elif (
            isinstance(message, wire.AudioStreamEnd)
            and not self.setup.activity.disabled
            and self.vad.force_end()
        ):
            await self._user_turn(None, spoken=True)

    def feed_audio(self, audio: wire.Audio) -> list[VadEvent]:
        """The per-frame path: count tokens and run speech detection; no I/O, no awaits."""
        self._add_tokens("AUDIO", audio.samples.size / audio.rate * self.config.audio_tokens_per_s)
        if self.setup.activity.disabled:
            return []
        return self.vad.feed(audio.samples, audio.rate)

    async def on_speech_events(self, events: list[VadEvent]) -> None:
        """Act on detected speech: barge-in at its start, a user turn at its end."""
        for event in events:
            if event is VadEvent.START:
                log.debug("emulator.speech.start")
                if self.setup.activity.interrupts:
                    await self.interrupt()
            else:
                log.debug("emulator.speech.end", samples=self.vad.speech_samples)
                await self._user_turn(None, spoken=True)

    async def _activity(self, message: wire.ActivityStart | wire.ActivityEnd) -> None:
        if not self.setup.activity.disabled:
            raise wire.ProtocolViolation(wire.EXPLICIT_ACTIVITY, "activity signal with AAD on")
        if isinstance(message, wire.ActivityStart):
            if self.in_activity:
                raise wire.invalid("activityStart while an activity is open")
            self.in_activity, self.activity_text = True, ""
            if self.setup.activity.interrupts:
                await self.interrupt()
            return
        if not self.in_activity:
            raise wire.invalid("activityEnd without activityStart")
        self.in_activity = False
        await self._user_turn(self.activity_text or None, spoken=True)

    async def _client_content(self, content: wire.ClientContent) -> None:
        if not self.history_open and self.config.client_content == "initial_history_only":
            raise wire.ProtocolViolation(
                wire.CLIENT_CONTENT_REFUSED,
                "clientContent after the initial history"
                if self.setup.initial_history
                else "clientContent without historyConfig.initialHistoryInClientContent",
            )
        text_tokens = sum(
            self._text_tokens(json.dumps(t, separators=(",", ":"))) for t in content.turns
        )
        self._add_tokens("TEXT", text_tokens)
        if content.images:
            self._add_tokens("IMAGE", self.image_tokens * len(content.images))
        if self.history_open:  # initial history: context, and no reply even when it ends
            self._add_context(content.turns)
            if content.turn_complete:
                self.history_open = False
                log.info("emulator.initial_history", turns=self.state.context_turns)
            return
        if content.turn_complete:
            if content.text:
                self.pending_text = self._joined(self.pending_text, content.text)
            text, self.pending_text = self.pending_text, ""
            await self._user_turn(text, spoken=False)
            return
        self._add_context(content.turns)

    def _add_context(self, turns: tuple[dict[str, Any], ...]) -> None:
        for turn in turns:  # context: each turn goes to the history, with its role
            role = str(wire.get(turn, "role", "user"))[:16]
            words = " ".join(str(wire.get(part, "text")) for part in wire.get(turn, "parts", [])
                             if isinstance(part, dict) and wire.get(part, "text") is not None)
            self.state.remember(role, words, self.limits.max_history)
            self.state.context_turns += 1
            # the user's words since the model last spoke begin the next user turn
            if role == "model":
                self.pending_text = ""
            elif role == "user" and words:
                self.pending_text = self._joined(self.pending_text, words)
        log.info("emulator.context", turns=len(turns))

    async def _tool_response(self, response: wire.ToolResponse) -> None:
        for item in response.responses:
            call_id = item.id
            if call_id is None:  # Vertex may omit ids: match the only open call of that name
                named = [cid for cid, call in self.outstanding.items() if call.name == item.name]
                if len(named) != 1:
                    raise wire.invalid(f"function response {item.name!r} matches no single call")
                call_id = named[0]
            if call_id in self.cancelled:
                log.info("emulator.tool.late_response", id=call_id)
                continue
            call = self.outstanding.pop(call_id, None)
            if call is None:
                raise wire.invalid(f"function response for unknown call id {call_id!r}")
            if call.name != item.name:
                raise wire.invalid(f"function response name {item.name!r} does not match its call")
            self._add_tokens("TEXT", self._text_tokens(json.dumps(item.response)))
            if call.non_blocking:
                if item.will_continue:  # a generator: the call stays open for more
                    self.outstanding[call_id] = call
                await self._scheduled_result(call.name, item.scheduling)
            if not call.future.done():
                call.future.set_result(item.response)

    async def _scheduled_result(self, name: str, scheduling: str | None) -> None:
        """A non-blocking function's result, taken as its ``scheduling`` says: spoken about at
        once, cutting the reply short (``INTERRUPT``), after the reply (``WHEN_IDLE``, also
        the default), or not at all (``SILENT``). The spoken turn's words are ``result of
        NAME``, which a scenario's ``text`` rule can match."""
        kind = scheduling or "SCHEDULING_UNSPECIFIED"
        counts = self.stats.scheduled_responses
        counts[kind] = counts.get(kind, 0) + 1
        log.info("emulator.tool.scheduled_result", name=name, scheduling=kind)
        if kind == "SILENT":
            return
        if kind == "INTERRUPT":
            await self.interrupt(cancel_calls=False)
        if len(self.turns) < self.limits.max_pending_turns:
            self.turns.append(UserTurn(f"result of {name}", None, 0, time.monotonic()))
            self._update_space()
        if self._reply is None or self._reply.done():
            self._reply = self._start_reply()

    # --- turns -------------------------------------------------------------------------

    def _joined(self, held: str, text: str) -> str:
        """``text`` added to the words held for a turn, within ``max_turn_chars``."""
        joined = f"{held} {text}" if held else text
        limit = self.limits.max_turn_chars
        if len(joined) > limit:
            if len(held) < limit:  # count each turn once, when it first overflows
                self.stats.truncated_turns += 1
            joined = joined[:limit]
        return joined

    async def _user_turn(self, text: str | None, *, spoken: bool) -> None:
        self.state.user_turns += 1
        spoken_index = None
        if spoken:
            self.state.spoken_turns += 1
            spoken_index = self.state.spoken_turns
            if text is None:
                text = self.scenario.transcript(spoken_index)
        text = self._joined("", text or "")
        turn = UserTurn(text, spoken_index, self.state.user_turns, time.monotonic(),
                        self.state.previous_user_text())
        self.state.remember("user", turn.text, self.limits.max_history)
        log.info(
            "emulator.turn", index=turn.index, spoken=spoken_index, text=turn.text[:LOG_TEXT_CHARS]
        )
        if self._speaking and self.setup.activity.interrupts and not spoken:
            await self.interrupt()  # typed input barges in like speech does
        if len(self.turns) >= self.limits.max_pending_turns:
            # only while a call waits (otherwise the connection waits for space): the
            # responses may be behind these turns, so they cannot wait; they join the last one
            last = self.turns[-1]
            merged = UserTurn(self._joined(last.text, turn.text), last.spoken, last.index,
                              turn.ended_at)  # fmt: skip
            self.turns[-1] = merged
            self.stats.merged_turns += 1
        else:
            self.turns.append(turn)
        self._update_space()
        if self._reply is None or self._reply.done():
            self._reply = self._start_reply()

    def _update_space(self) -> None:
        if len(self.turns) < self.limits.max_pending_turns or self._awaiting_calls:
            self._space.set()
        else:
            self._space.clear()

    async def wait_for_space(self) -> bool:
        """Wait until the model can take another turn (or waits for function responses, which
        the connection must read); True if it had to wait."""
        if self._space.is_set():
            return False
        await self._space.wait()
        return True

    async def interrupt(self, *, cancel_calls: bool = True) -> None:
        """Barge-in: stop the reply being generated; ``interrupted`` then ``turnComplete``.
        Open function calls are cancelled unless ``cancel_calls`` is False (a non-blocking
        result that interrupts the model leaves the other calls running)."""
        if not self._speaking or self._reply is None:
            return
        task, self._reply = self._reply, None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._speaking = False
        open_calls = [cid for cid in self.outstanding if cid not in self.cancelled]
        if not cancel_calls:
            open_calls = []
        await self.host.send(wire.server_content(interrupted=True))
        if open_calls:
            await self.host.send(wire.tool_call_cancellation(open_calls))
            self._cancel_calls(open_calls)
        await self.host.send(wire.server_content(turnComplete=True))
        self.stats.interruptions += 1
        log.info("emulator.interrupted")
        if self.turns:
            self._reply = self._start_reply()

    def _start_reply(self) -> asyncio.Task[None]:
        task = asyncio.create_task(self._drain(), name="emulator-reply")
        task.add_done_callback(_log_failure)
        return task

    async def _drain(self) -> None:
        try:
            while self.turns:
                turn = self.turns.popleft()
                self._update_space()
                self._speaking = True
                await self._respond(turn)
                self._speaking = False
        except ConnectionClosed:
            pass
        finally:
            self._speaking = False

    async def _respond(self, turn: UserTurn) -> None:
        rule = self.scenario.match(turn.text, turn.spoken, turn.index)
        if rule is not None and rule.fault is not None:
            self.host.arm(rule.fault)
        if turn.spoken is not None and self.setup.input_transcription:
            for fragment in self._fragments(turn.text):
                await self.host.send(wire.server_content(inputTranscription={"text": fragment}))
        if self.config.reply_delay_s > 0:
            await asyncio.sleep(self.config.scaled(self.config.reply_delay_s))
        if rule is not None and rule.calls:
            await self._call_tools(rule)
        reply = self.scenario.reply_text(rule, turn.text, turn.previous)
        response_tokens = await self._generate(reply, rule)
        await self.host.send(wire.server_content(generationComplete=True))
        usage = wire.usage_metadata(
            {m: round(n) for m, n in self.state.tokens.items()}, response_tokens, vertex=self.vertex
        )
        for modality, n in response_tokens.items():
            self._add_tokens(modality, n)
        self.state.remember("model", reply, self.limits.max_history)
        message = wire.server_content(turnComplete=True)
        message["usageMetadata"] = usage
        await self.host.send(message)
        self.stats.replies += 1
        update = self.host.handle_update()
        if update is not None:
            await self.host.send(update)

    async def _call_tools(self, rule: Rule) -> None:
        loop = asyncio.get_running_loop()
        calls: list[dict[str, Any]] = []
        futures: list[asyncio.Future[dict[str, Any]]] = []
        excess = len(self.outstanding) + len(rule.calls) - self.limits.max_outstanding_calls
        if excess > 0:  # the client left calls unanswered: the oldest are given up
            given_up = list(self.outstanding)[:excess]
            await self.host.send(wire.tool_call_cancellation(given_up))
            self._cancel_calls(given_up)
        for spec in rule.calls:
            self.state.calls_made += 1
            call_id = f"function-call-{self.state.calls_made}"
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            non_blocking = spec.name in self.setup.non_blocking
            self.outstanding[call_id] = PendingCall(spec.name, future, non_blocking)
            if non_blocking:
                self.stats.non_blocking_calls += 1
            else:  # the reply waits only for blocking functions
                futures.append(future)
            calls.append({"id": call_id, "name": spec.name, "args": spec.args})
            if self.setup.function_names and spec.name not in self.setup.function_names:
                log.warning("emulator.tool.undeclared", name=spec.name)
        if self.resumable:
            await self.host.send(wire.resumption_update(None, resumable=False))
        await self.host.send(wire.tool_call(calls))
        self.stats.tool_calls += len(calls)
        log.info("emulator.tool.call", names=[c["name"] for c in calls])
        ids = [str(c["id"]) for c in calls]
        for fault in self.host.take_tool_faults():
            if fault.kind is FaultKind.REPEAT_TOOL_CALL:
                await self.host.send(wire.tool_call(calls))
            elif fault.kind is FaultKind.CANCEL_TOOL_CALL:
                await asyncio.sleep(self.config.scaled(fault.seconds or 0.0))
                await self.host.send(wire.tool_call_cancellation(ids))
                self._cancel_calls(ids)
        await self.host.fire(Trigger.TOOL_CALL)
        if rule.wait and futures:
            self._awaiting_calls = True
            self._update_space()
            try:
                await asyncio.gather(*futures, return_exceptions=True)
            finally:
                self._awaiting_calls = False
                self._update_space()

    def _cancel_calls(self, ids: list[str]) -> None:
        for call_id in ids:
            self.cancelled[call_id] = None
            call = self.outstanding.pop(call_id, None)
            if call is not None:
                call.future.cancel()
        # a late response to a call cancelled long ago is refused like an unknown one
        excess = len(self.cancelled) - 4 * self.limits.max_outstanding_calls
        for old in list(self.cancelled)[: max(0, excess)]:
            del self.cancelled[old]

    async def _generate(self, reply: str, rule: Rule | None) -> dict[str, int]:
        """Send the reply as audio or text; return the response tokens by modality."""
        cfg = self.config
        if "TEXT" in self.setup.modalities:
            pieces = self._fragments(reply)
            start = time.monotonic()
            for i, piece in enumerate(pieces):
                await self._pace(start, i * 0.05)
                await self.host.send(wire.model_turn({"text": piece}))
                if i == 0:
                    await self.host.fire(Trigger.REPLY)
            return {"TEXT": self._text_tokens(reply)}
        seconds = rule.audio_s if rule is not None and rule.audio_s else None
        if seconds is None:
            seconds = max(cfg.reply_min_s, len(reply) * cfg.reply_ms_per_char / 1000)
        seconds = min(seconds, self.limits.max_reply_s)
        samples = round(seconds * wire.OUTPUT_RATE)
        step = round(wire.OUTPUT_RATE * cfg.reply_chunk_ms / 1000)
        count = -(-samples // step)
        # the transcript spread over the audio: fragment k goes with chunk k*count/len
        words: dict[int, list[str]] = {}
        if self.setup.output_transcription:
            fragments = self._fragments(reply)
            for k, fragment in enumerate(fragments):
                words.setdefault(k * count // len(fragments), []).append(fragment)
        chunks = voice_chunks(samples, wire.OUTPUT_RATE, self.pitch, cfg.reply_amplitude, step)
        start = time.monotonic()
        for i, chunk in enumerate(chunks):
            await self._pace(start, i * cfg.reply_chunk_ms / 1000)
            await self.host.send(wire.model_turn(wire.audio_part(chunk)))
            for fragment in words.get(i, ()):
                await self.host.send(wire.server_content(outputTranscription={"text": fragment}))
            if i == 0:
                await self.host.fire(Trigger.REPLY)
        return {"AUDIO": math.ceil(seconds * cfg.audio_tokens_per_s)}

    async def _pace(self, start: float, at_s: float) -> None:
        # always through the loop: a fast clock must not let one reply hold it
        await asyncio.sleep(max(0.0, start + self.config.scaled(at_s) - time.monotonic()))

    # --- tokens ------------------------------------------------------------------------

    def _text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / self.config.text_chars_per_token)

    def _add_tokens(self, modality: str, n: float) -> None:
        tokens = self.state.tokens
        tokens[modality] = tokens.get(modality, 0.0) + n
        total = tokens["AUDIO"] + tokens["TEXT"] + tokens["IMAGE"]
        compression = self.setup.compression
        budget = self.config.session_token_budget
        if compression is not None:
            trigger = compression.trigger_tokens or int(budget * 0.8)
            if total > trigger:
                target = compression.target_tokens or trigger // 2
                for key in tokens:
                    tokens[key] *= target / total
                self.state.compressions += 1
                log.info("emulator.context.compressed", before=round(total), after=target)
        elif total > budget:
            log.info("emulator.context.full", tokens=round(total), budget=budget)
            self.host.end_session(wire.INVALID_ARGUMENT)

    def _fragments(self, text: str) -> list[str]:
        """Split into fragments of ``transcript_words_per_fragment`` words (more for a long
        text: at most ``max_transcript_fragments``) that concatenate back to ``text``."""
        words = text.split(" ")
        n = max(
            1,
            self.config.transcript_words_per_fragment,
            -(-len(words) // max(1, self.limits.max_transcript_fragments)),
        )
        out = [" ".join(words[i : i + n]) for i in range(0, len(words), n)]
        return [f if i == 0 else " " + f for i, f in enumerate(out)] if text else []

    # --- lifecycle -----------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel the reply in progress (the connection is going away)."""
        task, self._reply = self._reply, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for call in self.outstanding.values():
            call.future.cancel()
        self.outstanding.clear()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("emulator.reply_failed", error=repr(task.exception()))
