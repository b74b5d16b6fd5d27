"""The daemon: runs what the builder made from the config, on one event loop, under systemd.

`agent.build.Builder` makes the parts (GPIO, speaker, microphone, camera, Live session); the
daemon joins them in a conversation and watches over them. ``READY=1`` goes to systemd once the
parts are built; ``WATCHDOG=1`` comes from a task on the loop, so a stalled loop trips systemd's
watchdog; ``STATUS=`` shows the session's state and counters. SIGTERM and SIGINT stop everything
within a few seconds (session closed with 1000, pins safe, logs flushed); SIGHUP reloads the
config, and the builder rebuilds only the parts whose config changed, resuming the Live session
where it can (a reload that fails leaves the agent running as it was).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent.build import Builder, Parts, ReloadFailed
from agent.build.memory import open_memory
from agent.config import AgentConfig, ConfigError, diff_sections, load_config
from agent.live.conversation import (
    AudioConversationController,
    ConversationStats,
    EventListener,
    dispatcher_handler,
    start_audio_conversation,
)
from agent.live.errors import LiveSessionError
from agent.live.resilient import SessionState, SessionStats
from agent.logs import configure_logging, flush_logs
from agent.systemd import Notifier, default_notifier, watchdog_task
from agent.tools import PinChange
from agent.usage import BudgetLevel, UsageKeeper, UsageReport, degraded
from agent.usage.ledger import local_today

if TYPE_CHECKING:  # the emulator and metrics are imported only when the config asks for them
    from agent.emulator.config import EmulatorConfig
    from agent.metrics import MetricsService

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1  # systemd restarts the service (Restart=on-failure)
EXIT_FATAL = 78  # EX_CONFIG: bad key, permission, model; retrying will not help
CONFIRMED_TEXT_CHARS = 500  # of a confirmed tool's result told to the model


class Daemon:
    """``edge-agent run``: one agent, from one config file, until stopped.

    ``api_key`` is the credential the caller already loaded (None: the builder loads it).
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        api_key: str | None = None,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        on_event: EventListener | None = None,
        emulator_config: EmulatorConfig | None = None,
        today: Callable[[], date] = local_today,
    ) -> None:
        self.config = config
        self.config_path = config_path or config.source
        self.notifier = notifier or default_notifier()
        self.on_event = on_event
        self.memory = open_memory(config)  # read at start: [memory] changes need a restart
        self.builder = Builder(api_key=api_key, on_session_state=self._on_session_state,
                               on_pin_change=self._on_pin_change,
                               emulator_config=emulator_config, memory=self.memory)
        self.parts: Parts | None = None
        self.controller: AudioConversationController | None = None
        self.exit_code = EXIT_OK
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._status: asyncio.Task[None] | None = None
        self.metrics: MetricsService | None = None
        self._forget_confirmations: Callable[[], None] | None = None
        self._confirmations: set[asyncio.Task[None]] = set()
        self.usage = UsageKeeper(config, on_level=self._on_budget_level, today=today)
        self._rebudget = asyncio.Event()
        self._usage_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``stop()``); returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        started = time.monotonic()
        self.usage.load()
        try:
            parts = await self.builder.build(degraded(self.config, self.usage.level.steps))
        except Exception as exc:  # a device that cannot be opened, a port in use ...
            log.error("daemon.start_failed", error=str(exc) or type(exc).__name__)
            flush_logs()
            return EXIT_FAILURE
        try:
            await self._run_parts(parts)
            await self._start_metrics(self.config)
        except Exception as exc:
            log.error("daemon.start_failed", error=str(exc) or type(exc).__name__)
            await self._stop_running()
            await self.builder.tear_down(parts)
            flush_logs()
            return EXIT_FAILURE
        self.notifier.ready(status=self._status_line())
        log.info("daemon.ready", seconds=round(time.monotonic() - started, 3))
        watchdog = (
            asyncio.create_task(watchdog_task(self.notifier), name="watchdog")
            if self.config.health.watchdog
            else None
        )
        self._usage_task = asyncio.create_task(self.usage.run(), name="usage")
        try:
            await self._supervise()
        finally:
            self.notifier.stopping()
            if watchdog is not None:
                watchdog.cancel()
            self._usage_task.cancel()
            self.usage.save()
            await self._stop_metrics()
            await self._stop_running()
            if self.parts is not None:
                await self.builder.tear_down(self.parts)
            if self.memory is not None:  # the session has ended: its last handle is kept
                await self.memory.aclose()
            log.info("daemon.stopped", exit_code=self.exit_code)
            flush_logs()
        return self.exit_code

    def stop(self) -> None:
        self._stop.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        if os.environ.get("EDGE_AGENT_TEST_HOOKS") == "1":
            # For system tests: SIGUSR2 blocks the loop, as a hung handler would.
            loop.add_signal_handler(signal.SIGUSR2, self._stall_loop)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        log.info("daemon.signal", signal=sig.name)
        self._stop.set()

    def _stall_loop(self) -> None:
        log.warning("daemon.test_stall", seconds=120)
        time.sleep(120)

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            assert self.parts is not None
            waiters: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(self._stop.wait()),
                asyncio.ensure_future(self._reload.wait()),
                asyncio.ensure_future(self._rebudget.wait()),
            ]
            controller = self.controller
            if controller is not None:
                waiters.append(asyncio.ensure_future(controller.wait()))
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            if self._stop.is_set():
                return
            if self._reload.is_set():
                self._reload.clear()
                await self._reload_config()
                continue
            if self._rebudget.is_set():
                self._rebudget.clear()
                await self._apply_budget()
                continue
            self._on_conversation_end(done)
            return

    def _on_conversation_end(self, done: set[asyncio.Future[Any]]) -> None:
        assert self.parts is not None
        failure = self.parts.session.failure
        for waiter in done:
            if not waiter.cancelled() and waiter.exception() is not None:
                log.error("daemon.conversation_failed", error=str(waiter.exception()))
        if failure is not None:
            log.error("daemon.session_failed", error=str(failure))
            self.exit_code = EXIT_FATAL
        else:  # nothing asked it to end: let systemd start the agent afresh
            log.error("daemon.conversation_ended")
            self.exit_code = EXIT_FAILURE

    async def _start_conversation(self, parts: Parts) -> AudioConversationController:
        plan = parts.conversation()
        controller = await start_audio_conversation(
            parts.session,
            source=plan.source,
            sink=parts.speaker,
            function_calling_handler=dispatcher_handler(parts.registry),
            vad=plan.vad,
            client_activity_detection=plan.client_activity_detection,
            pre_roll_ms=plan.pre_roll_ms,
            chunk_ms=plan.chunk_ms,
            video=parts.camera.frames() if parts.camera is not None else None,
            on_event=self._on_conversation_event,
            wake=plan.wake,
            conversation_timeout_s=plan.conversation_timeout_s,
            video_while_asleep=plan.video_while_asleep,
            chime=plan.chime,
            speaker_busy=lambda: parts.speaker.is_playing,
            on_usage=self.usage.record,
        )
        buttons = parts.registry.buttons
        if buttons is not None:
            buttons.on_event(lambda _event: self._update_mute())
        return controller

    async def _run_parts(self, parts: Parts) -> None:
        """Join the parts in a conversation and show their state on the status LEDs."""
        self.parts = parts
        self.controller = await self._start_conversation(parts)
        self._update_mute()
        self._update_camera()
        self._status = asyncio.create_task(self._status_loop(parts), name="status")
        self._forget_confirmations = parts.registry.on_confirmed(
            functools.partial(self._tell_confirmed, parts)
        )

    def _tell_confirmed(self, parts: Parts, tool: str, payload: dict[str, Any]) -> None:
        """The confirm button carried out a request the model was told to wait on: say so."""
        outcome = json.dumps(payload, default=str)[:CONFIRMED_TEXT_CHARS]
        text = f"(The user pressed the confirm button: {tool} was carried out. {outcome})"
        task = asyncio.create_task(self._send_note(parts, text), name="confirmed-note")
        self._confirmations.add(task)
        task.add_done_callback(self._confirmations.discard)

    async def _send_note(self, parts: Parts, text: str) -> None:
        # Realtime text, not a clientContent turn: models that take clientContent only as
        # initial history close the connection on one sent mid-session.
        try:
            await parts.session.send_text_realtime(text)
        except LiveSessionError as exc:
            log.warning("daemon.note_not_sent", error=str(exc))

    async def _stop_running(self) -> None:
        if self._status is not None:
            self._status.cancel()
            self._status = None
        if self._forget_confirmations is not None:
            self._forget_confirmations()
            self._forget_confirmations = None
        if self.controller is not None:
            await self.controller.stop()  # kept: its stats outlive it

    # -- reload -------------------------------------------------------------------------------

    async def _reload_config(self) -> None:
        self.notifier.reloading()
        assert self.parts is not None
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config.invalid", problem=str(problem))
            log.warning("daemon.reload_refused", reason="the new config has errors")
            self.notifier.ready(status=self._status_line())
            return
        changed = diff_sections(self.config, new)
        log.info("daemon.reload", changed=sorted(changed))
        if "logging" in changed:
            configure_logging(new.logging.level, new.logging.format)
        self.usage.configure(new)
        refusal = await self._run_config(new)
        if refusal is not None:
            log.warning("daemon.reload_refused", reason=refusal)
            self.usage.configure(self.config)
        if "metrics" in changed:
            await self._stop_metrics()
            try:
                await self._start_metrics(self.config)
            except OSError as exc:
                log.error("metrics.start_failed", error=str(exc))
        self.notifier.ready(status=self._status_line())

    async def _run_config(self, new: AgentConfig) -> str | None:
        """Run ``new`` (a file's config) with the budget's steps given up: only the parts whose
        sections changed are built again. When that fails the old parts run on, and the reason
        is returned."""
        assert self.parts is not None
        await self._stop_running()
        refusal = None
        try:
            parts = await self.builder.rebuild(self.parts, degraded(new, self.usage.level.steps))
        except ReloadFailed as failed:
            refusal, parts = str(failed.error), failed.parts
        else:
            self.config = new
        await self._run_parts(parts)
        return refusal

    # -- usage and budget ---------------------------------------------------------------------

    def _on_budget_level(self, old: BudgetLevel, new: BudgetLevel) -> None:
        if new.steps != old.steps:
            self._rebudget.set()  # the supervisor runs the config with the steps given up
        self._update_mute()
        self._update_camera()
        self.notifier.status(self._status_line())

    async def _apply_budget(self) -> None:
        assert self.parts is not None
        if degraded(self.config, self.usage.level.steps) == self.parts.config:
            return
        refusal = await self._run_config(self.config)
        if refusal is not None:
            log.error("budget.step_failed", steps=list(self.usage.level.steps), error=refusal)
        self.notifier.status(self._status_line())

    def usage_report(self) -> UsageReport:
        return self.usage.report()

    # -- metrics ------------------------------------------------------------------------------

    async def _start_metrics(self, config: AgentConfig) -> None:
        """Serve or write metrics when ``[metrics]`` asks for them; OSError when the address
        cannot be bound."""
        settings = config.metrics
        if not settings.enabled:
            return
        from agent.metrics import MetricsService  # only when on: prometheus-client is 12 MB

        service = MetricsService(self, listen=settings.listen, textfile=settings.textfile,
                                 interval_s=settings.textfile_interval_s)
        service.start()
        self.metrics = service

    async def _stop_metrics(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None

    def session_stats(self) -> SessionStats | None:
        return None if self.parts is None else self.parts.session.stats

    def conversation_stats(self) -> ConversationStats | None:
        return None if self.controller is None else self.controller.stats

    def tool_outcomes(self) -> Mapping[tuple[str, str], int]:
        return {} if self.parts is None else self.parts.registry.tool_outcomes()

    def device_drops(self) -> tuple[int, float]:
        parts = self.parts
        return (0, 0.0) if parts is None else (
            parts.microphone.dropped, parts.speaker.dropped_ms / 1000.0)

    # -- status -------------------------------------------------------------------------------

    def _on_session_state(self, stats: SessionStats) -> None:
        parts = self.parts
        if parts is not None:
            parts.registry.note_session_state(stats.state is SessionState.LIVE)
        self._update_camera(stats.state)
        self.notifier.status(self._status_line(stats))
        if self.on_event is not None:
            self.on_event("session.state", {"state": str(stats.state)})

    def _on_conversation_event(self, name: str, fields: dict[str, Any]) -> None:
        if self.memory is not None:
            self.memory.note_event(name, fields)
        if name in ("listen.wake", "listen.sleep", "mute"):
            self._update_camera()
            self.notifier.status(self._status_line())
        if self.on_event is not None:
            self.on_event(name, fields)

    def _update_camera(self, state: SessionState | None = None) -> None:
        """The camera captures while the session is live and frames may be sent: in a
        conversation, or always when ``listen.camera = "always"`` or no wake word is used."""
        parts = self.parts
        if parts is None or parts.camera is None:
            return
        live = (state or parts.session.state) is SessionState.LIVE
        controller = self.controller
        wanted = controller is None or controller.awake or self.config.listen.camera == "always"
        if live and wanted and not self.usage.level.stopped:
            parts.camera.resume()
        else:
            parts.camera.pause()

    def _update_mute(self) -> None:
        """The microphone is muted by the mute button, or for the day by the budget."""
        controller, parts = self.controller, self.parts
        if controller is None or parts is None:
            return
        buttons = parts.registry.buttons
        button = bool(buttons is not None and buttons.muted)
        controller.set_muted(button or self.usage.level.stopped)

    def _on_pin_change(self, change: PinChange) -> None:
        if self.on_event is not None:
            self.on_event("pin.change", {"device": change.device, "state": change.state})

    def _status_line(self, stats: SessionStats | None = None) -> str:
        if stats is None and self.parts is not None:
            stats = self.parts.session.stats
        if stats is None:
            return "starting"
        if self.usage.level.stopped:
            return f"budget used up: no conversations until tomorrow; {stats.status_line()}"
        return f"{self._listening()}; {stats.status_line()}"

    def _listening(self) -> str:
        """What the microphone does now, for STATUS."""
        controller = self.controller
        if controller is None:
            return "not listening"
        if controller.muted:
            return "muted"
        if not controller.listening_for_wake_word:
            return "listening"
        if controller.awake:
            return "in a conversation"
        return "waiting for the wake word (" + ", ".join(
            str(w) for w in self.config.listen.wake_words) + ")"

    async def _status_loop(self, parts: Parts) -> None:
        """Status LEDs: connected, listening, speaking, error."""
        indicators = parts.registry.indicators
        if indicators is None:
            return
        shown: tuple[str, ...] | None = None
        while True:
            state = parts.session.state
            lit = []
            if state is SessionState.LIVE:
                lit.append("connected")
                if parts.speaker.is_playing:
                    lit.append("speaking")
                elif (self.controller is not None and not self.controller.muted
                      and self.controller.awake):
                    lit.append("listening")
            if state is SessionState.FAILED or self.usage.level.stopped:
                lit.append("error")
            if tuple(lit) != shown:
                shown = tuple(lit)
                indicators.show(*lit)
            await asyncio.sleep(0.1)
