"""The daemon: builds every part from the config and supervises them on one event loop.

Parts, in the order they start: GPIO (pins claimed, outputs in their safe state), the speaker,
the microphone, the camera, the Live session (its first connection attempt begins), and the
conversation that joins them. ``READY=1`` goes to systemd once that is done; ``WATCHDOG=1``
comes from a task on the loop, so a stalled loop trips systemd's watchdog; ``STATUS=`` shows the
session's state and counters. SIGTERM and SIGINT stop everything within a few seconds (session
closed with 1000, pins safe, logs flushed); SIGHUP reloads the config and restarts only the
parts whose sections changed, resuming the Live session where it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent import assembly
from agent.config import (
    EMULATOR_API_KEY,
    ConfigError,
    diff_sections,
    load_api_key,
    load_config,
)
from agent.config.model import AgentConfig, AudioConfig
from agent.config_live import make_model, reconnect_policy
from agent.live.conversation import (
    AudioConversationController,
    EventListener,
    dispatcher_handler,
    start_audio_conversation,
)
from agent.live.resilient import ResilientSession, SessionState, SessionStats
from agent.logging import configure_logging, flush_logs
from agent.media.camera import CameraStream
from agent.systemd import Notifier, default_notifier, watchdog_task
from agent.tools import ToolRegistry

if TYPE_CHECKING:  # the emulator is imported only when the config asks for it
    from agent.emulator.config import EmulatorConfig
    from agent.emulator.scenario import Scenario
    from agent.emulator.server import Emulator

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1  # systemd restarts the service (Restart=on-failure)
EXIT_FATAL = 78  # EX_CONFIG: bad key, permission, model; retrying will not help
STOP_BUDGET_S = 4.0
SESSION_SECTIONS = {"live", "reconnect", "gpio"}
CONVERSATION_SECTIONS = SESSION_SECTIONS | {"audio", "camera"}


class PushToTalk:
    """A voice activity detector that is the push-to-talk button."""

    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry

    def is_speech(self, chunk: bytes) -> bool:
        buttons = self._registry.buttons
        return bool(buttons is not None and buttons.talking)


@dataclass
class Parts:
    """What one configuration built."""

    config: AgentConfig
    registry: ToolRegistry
    source: Any
    sink: Any
    camera: CameraStream | None
    session: ResilientSession
    emulator: Emulator | None = None
    controller: AudioConversationController | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class Daemon:
    """``edge-agent run``: one agent, from one config file, until stopped."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        on_event: EventListener | None = None,
        emulator_config: EmulatorConfig | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path or config.source
        self.notifier = notifier or default_notifier()
        self.on_event = on_event
        self.emulator_config = emulator_config
        self.parts: Parts | None = None
        self.exit_code = EXIT_OK
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``stop()``); returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        started = time.monotonic()
        try:
            self.parts = await self._start(self.config, handle=None)
        except Exception as exc:  # a device that cannot be opened, a port in use ...
            log.error("daemon.start_failed", error=str(exc) or type(exc).__name__)
            flush_logs()
            return EXIT_FAILURE
        self.notifier.ready(status=self._status_line())
        log.info("daemon.ready", seconds=round(time.monotonic() - started, 3))
        watchdog = (
            asyncio.create_task(watchdog_task(self.notifier), name="watchdog")
            if self.config.health.watchdog
            else None
        )
        try:
            await self._supervise()
        finally:
            self.notifier.stopping()
            if watchdog is not None:
                watchdog.cancel()
            await self._stop_parts(self.parts)
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
            ]
            controller = self.parts.controller
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

    # -- building -------------------------------------------------------------------------------

    async def _start(self, config: AgentConfig, handle: str | None) -> Parts:
        """Build and start every part; on a failure, undo what was started (pins safe)."""
        undo: list[Callable[[], Awaitable[Any]]] = []
        try:
            registry = ToolRegistry.from_config(config.gpio)
            registry.open()
            undo.append(_async(functools.partial(_release_pins, registry)))
            registry.on_change(self._on_pin_change)
            sink = assembly.build_audio_sink(config.audio)
            await sink.start()
            undo.append(sink.stop)
            source = assembly.build_audio_source(config.audio)
            await source.start()
            undo.append(source.stop)
            camera = assembly.build_camera(config.camera)
            emulator, endpoint = await self._emulator_for(config)
            if emulator is not None:
                undo.append(emulator.close)
            session = self._new_session(config, registry, endpoint, handle)
            parts = Parts(config, registry, source, sink, camera, session, emulator)
            await session.start()
            undo.append(session.close)
            parts.controller = await self._start_conversation(parts)
        except BaseException:
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    await step()
            raise
        parts.tasks.append(asyncio.create_task(self._status_loop(parts), name="status"))
        return parts

    async def _emulator_for(self, config: AgentConfig) -> tuple[Emulator | None, str | None]:
        """The in-process emulator for the ``emulator`` backend without an endpoint."""
        if config.live.backend != "emulator" or config.live.endpoint:
            return None, None
        from agent.emulator.config import EmulatorConfig
        from agent.emulator.server import Emulator

        emulator = Emulator(self.emulator_config or EmulatorConfig(scenario=_default_scenario()))
        await emulator.start()
        return emulator, emulator.url

    def _new_session(
        self, config: AgentConfig, registry: ToolRegistry, endpoint: str | None, handle: str | None
    ) -> ResilientSession:
        api_key = EMULATOR_API_KEY if config.live.backend == "emulator" else load_api_key(config)
        if config.audio.push_to_talk:  # the button, not the service, marks the user's turns
            vad = dataclasses.replace(config.live.vad, enabled=False)
            config = dataclasses.replace(config, live=dataclasses.replace(config.live, vad=vad))
        model = make_model(
            config, api_key, function_declarations=registry.declarations(), endpoint=endpoint
        )
        session = ResilientSession(model, reconnect_policy(config))
        session.handle = handle
        session.add_listener(self._on_session_state)
        return session

    async def _start_conversation(self, parts: Parts) -> AudioConversationController:
        config = parts.config
        audio = config.audio
        source = assembly.with_echo_policy(parts.source, parts.sink, audio)
        vad: Any = assembly.build_speech_gate(audio)
        client_activity = not config.live.vad.enabled or audio.push_to_talk
        pre_roll_ms = audio.vad_gate.preroll_ms
        if audio.push_to_talk:
            vad, pre_roll_ms = PushToTalk(parts.registry), 0
        elif client_activity and vad is None:
            vad = assembly.build_speech_gate(
                _with_gate(audio)  # the service does not detect speech: the device must
            )
        controller = await start_audio_conversation(
            parts.session,
            source=source,
            sink=parts.sink,
            function_calling_handler=dispatcher_handler(parts.registry),
            vad=vad,
            client_activity_detection=client_activity,
            pre_roll_ms=pre_roll_ms,
            chunk_ms=audio.chunk_ms,
            video=parts.camera.frames() if parts.camera is not None else None,
            on_event=self.on_event,
        )
        buttons = parts.registry.buttons
        if buttons is not None:
            buttons.on_event(lambda _event: controller.set_muted(bool(buttons.muted)))
            controller.set_muted(bool(buttons.muted))
        return controller

    async def _stop_parts(self, parts: Parts | None, *, keep_session: bool = False) -> None:
        if parts is None:
            return
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if parts.controller is not None:
            steps.append(("conversation", parts.controller.stop))
        if not keep_session:
            steps.append(("session", parts.session.close))
        if parts.camera is not None:
            steps.append(("camera", parts.camera.aclose))
        steps += [("microphone", parts.source.stop), ("speaker", parts.sink.stop)]
        for task in parts.tasks:
            task.cancel()
        deadline = time.monotonic() + STOP_BUDGET_S
        for name, step in steps:
            # Each part gets what is left of the budget (at least a moment), so a stuck part
            # cannot hold up the others, nor the pins' safe state below.
            budget = max(0.2, min(STOP_BUDGET_S / 2, deadline - time.monotonic()))
            try:
                async with asyncio.timeout(budget):
                    await step()
            except Exception as exc:
                log.warning("daemon.stop_failed", part=name, error=str(exc) or type(exc).__name__)
        parts.registry.safe_all("shutdown")
        log.info("daemon.pins_safe", pins=parts.registry.describe_pins())
        parts.registry.close()
        if parts.emulator is not None and not keep_session:
            await parts.emulator.close()

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
        changed = diff_sections(self.parts.config, new)
        log.info("daemon.reload", changed=sorted(changed))
        if "logging" in changed:
            configure_logging(new.logging.level, new.logging.format)
        if changed & CONVERSATION_SECTIONS:
            await self._rebuild(new, changed)
        else:
            self.parts.config = new
        self.config = new
        self.notifier.ready(status=self._status_line())

    async def _rebuild(self, new: AgentConfig, changed: set[str]) -> None:
        """Restart the parts whose sections changed. The conversation always restarts; the
        session is replaced (resuming with its handle, so the context survives) only when its
        own settings or the tools it declares changed."""
        old = self.parts
        assert old is not None
        if old.controller is not None:
            await old.controller.stop()
        session_changes = bool(changed & SESSION_SECTIONS)
        handle = old.session.handle if new.live.model == old.config.live.model else None
        if session_changes:
            await old.session.close()
        registry, source, sink, camera = old.registry, old.source, old.sink, old.camera
        if "gpio" in changed:
            registry.safe_all("reload")
            registry.close()
            registry = ToolRegistry.from_config(new.gpio)
            registry.open()
            registry.on_change(self._on_pin_change)
        if "audio" in changed:
            await source.stop()
            await sink.stop()
            sink = assembly.build_audio_sink(new.audio)
            await sink.start()
            source = assembly.build_audio_source(new.audio)
            await source.start()
        if "camera" in changed:
            if camera is not None:
                await camera.aclose()
            camera = assembly.build_camera(new.camera)
        session = old.session
        emulator = old.emulator
        if session_changes:
            endpoint = emulator.url if emulator is not None else None
            session = self._new_session(new, registry, endpoint, handle)
            await session.start()
        for task in old.tasks:
            task.cancel()
        parts = Parts(new, registry, source, sink, camera, session, emulator)
        parts.controller = await self._start_conversation(parts)
        parts.tasks.append(asyncio.create_task(self._status_loop(parts), name="status"))
        self.parts = parts

    # -- status -------------------------------------------------------------------------------

    def _on_session_state(self, stats: SessionStats) -> None:
        parts = self.parts
        live = stats.state is SessionState.LIVE
        if parts is not None:
            parts.registry.note_session_state(live)
            if parts.camera is not None:
                if live:
                    parts.camera.resume()
                else:
                    parts.camera.pause()
        self.notifier.status(self._status_line(stats))
        if self.on_event is not None:
            self.on_event("session.state", {"state": str(stats.state)})

    def _on_pin_change(self, change: Any) -> None:
        if self.on_event is not None:
            self.on_event("pin.change", {"device": change.device, "state": change.state})

    def _status_line(self, stats: SessionStats | None = None) -> str:
        if stats is None and self.parts is not None:
            stats = self.parts.session.stats
        return stats.status_line() if stats is not None else "starting"

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
                if parts.sink.is_playing:
                    lit.append("speaking")
                elif parts.controller is not None and not parts.controller.muted:
                    lit.append("listening")
            if state is SessionState.FAILED:
                lit.append("error")
            if tuple(lit) != shown:
                shown = tuple(lit)
                indicators.show(*lit)
            await asyncio.sleep(0.1)


def _release_pins(registry: ToolRegistry) -> None:
    registry.safe_all("start failed")
    registry.close()


def _async(fn: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()

    return run


def _with_gate(audio: AudioConfig) -> AudioConfig:
    return dataclasses.replace(audio, vad_gate=dataclasses.replace(audio.vad_gate, enabled=True))


def _default_scenario() -> Scenario:
    from agent.emulator.scenario import Scenario

    path = resources.files("agent.emulator") / "scenarios" / "lamp.toml"
    return Scenario.load(Path(str(path)))
