"""The parts one configuration builds, and the one builder that makes them, for start and reload.

A start builds every part in order: the GPIO (pins claimed at their safe state), the speaker,
the microphone, the camera, the in-process emulator when the config asks for one, and the Live
session (its first connection attempt begins). A reload builds the same way, keeping each part
whose own slice of the config did not change. Either way, a part that fails to build undoes
what this build started (pins safe, devices closed) before the error goes on; a reload then
brings back the parts it had stopped, from the old config, so the agent keeps running as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from agent.build.credentials import LiveCredentials, live_credentials
from agent.build.devices import (
    Microphone,
    Speaker,
    build_camera,
    build_microphone,
    build_speaker,
    build_speech_gate,
    build_wake_word,
    with_echo_policy,
)
from agent.build.live import make_model, reconnect_policy
from agent.build.memory import session_mark
from agent.config import AgentConfig, ConfigError, find_api_key
from agent.config.credentials import read_secret_file
from agent.live.conversation import AudioSource, VoiceActivityDetector, WakeWordSpotter
from agent.live.memory import ConversationMemory
from agent.live.resilient import ResilientSession, SessionStats
from agent.logs import register_secret
from agent.media.audio import wake_chime
from agent.media.camera import CameraStream
from agent.tools import PinChange, ToolRegistry
from agent.tools.mcp_client import McpServer
from agent.tools.spec import McpServerSpec

if TYPE_CHECKING:  # the emulator is imported only when the config asks for it
    from agent.emulator.config import EmulatorConfig
    from agent.emulator.scenario import Scenario
    from agent.emulator.server import Emulator

__all__ = ["Builder", "ConversationPlan", "Parts", "PushToTalk", "ReloadFailed"]

log = structlog.get_logger(__name__)

Undo = Callable[[], Awaitable[Any]]
T = TypeVar("T")


class _Device(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


D = TypeVar("D", bound=_Device)


@dataclass
class Parts:
    """What one configuration built, started and ready to run."""

    config: AgentConfig
    registry: ToolRegistry
    speaker: Speaker
    microphone: Microphone
    camera: CameraStream | None
    emulator: Emulator | None
    session: ResilientSession
    stops: dict[str, Undo] = field(default_factory=dict, repr=False)
    """How to stop each part that was built, by its name in `PART_ORDER`."""

    def conversation(self) -> ConversationPlan:
        """How the conversation joins the parts: ``start_audio_conversation``'s arguments."""
        audio, listen = self.config.audio, self.config.listen
        vad: VoiceActivityDetector | None = None
        pre_roll_ms = listen.pre_roll_ms
        client_activity = not self.config.live.vad.enabled or listen.mode == "push_to_talk"
        if listen.mode == "push_to_talk":
            vad, pre_roll_ms = PushToTalk(self.registry), 0
        elif listen.mode == "vad_gate" or client_activity:
            # Without the service's detection, the device must tell where speech is.
            vad = build_speech_gate(audio.vad_gate)
        wake = build_wake_word(listen) if listen.mode == "wake_word" else None
        return ConversationPlan(
            source=with_echo_policy(self.microphone, self.speaker, audio),
            vad=vad,
            client_activity_detection=client_activity,
            pre_roll_ms=pre_roll_ms,
            chunk_ms=audio.chunk_ms,
            wake=wake,
            conversation_timeout_s=listen.conversation_timeout_s,
            video_while_asleep=listen.camera == "always",
            chime=wake_chime() if wake is not None and listen.chime else None,
        )


@dataclass(frozen=True)
class ConversationPlan:
    """The conversation's inputs that come from the config."""

    source: AudioSource
    vad: VoiceActivityDetector | None
    client_activity_detection: bool
    pre_roll_ms: int
    chunk_ms: int
    wake: WakeWordSpotter | None = None
    conversation_timeout_s: float = 10.0
    video_while_asleep: bool = True
    chime: bytes | None = None


class PushToTalk:
    """A voice activity detector that is the push-to-talk button."""

    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry

    def is_speech(self, chunk: bytes) -> bool:
        buttons = self._registry.buttons
        return bool(buttons is not None and buttons.talking)


def _emulator_wanted(config: AgentConfig) -> bool:
    """The ``emulator`` backend with no endpoint: the agent runs its own."""
    return config.live.backend == "emulator" and not config.live.endpoint


# The parts in the order they are built, each with the slice of the config it is built from: a
# reload rebuilds a part when its slice differs. The session declares the tools, may talk to the
# in-process emulator, and turns the service's speech detection off for push-to-talk.
_READS: dict[str, Callable[[AgentConfig], object]] = {
    "gpio": lambda c: c.gpio,
    "speaker": lambda c: c.audio.output,
    "microphone": lambda c: c.audio,
    "camera": lambda c: c.camera,
    "emulator": _emulator_wanted,
    "session": lambda c: (c.live, c.reconnect, c.gpio.tools, c.listen.mode == "push_to_talk",
                          _emulator_wanted(c), c.memory.seed),
}
PART_ORDER = tuple(_READS)


class Builder:
    """Builds `Parts` from a config: the whole of them at start, what changed on reload.

    Args:
        api_key: the credential for the first build (later builds read it again, so a
            reload picks up a new key).
        on_session_state: told every state change of each session built.
        on_pin_change: told every pin change of each registry built.
        emulator_config: the in-process emulator's settings (default: the lamp scenario,
            nothing recorded, a small device's limits).
        memory: what the conversation remembers across restarts: each session built resumes
            with its saved handle (the first), seeds fresh connections with its transcript and
            keeps its newest handle there.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        on_session_state: Callable[[SessionStats], None] | None = None,
        on_pin_change: Callable[[PinChange], None] | None = None,
        emulator_config: EmulatorConfig | None = None,
        memory: ConversationMemory | None = None,
    ) -> None:
        self._api_key = api_key
        self._memory = memory
        self._on_session_state = on_session_state
        self._on_pin_change = on_pin_change
        self._emulator_config = emulator_config

    async def build(self, config: AgentConfig) -> Parts:
        """Build and start every part; on a failure, undo what was started and raise."""
        return await self._assemble(config, None, set(PART_ORDER), handle=None)

    async def rebuild(self, old: Parts, config: AgentConfig) -> Parts:
        """The parts for ``config``, keeping those of ``old`` whose config did not change.

        The session, when rebuilt for the same model, resumes with the old one's handle.

        Raises:
            ReloadFailed: a part failed to build; the new parts were undone and the stopped
                ones built again from ``old.config`` (in ``ReloadFailed.parts``).
            Exception: even the old config's parts could not be built again.
        """
        changed = {name for name, reads in _READS.items() if reads(old.config) != reads(config)}
        handle = old.session.handle if config.live.model == old.config.live.model else None
        await self.tear_down(old, only=changed)
        try:
            return await self._assemble(config, old, changed, handle=handle)
        except Exception as exc:
            log.error("daemon.rebuild_failed", error=str(exc) or type(exc).__name__,
                      restoring=sorted(changed))
            restored = await self._assemble(old.config, old, changed, handle=handle)
            raise ReloadFailed(restored, exc) from exc

    async def tear_down(self, parts: Parts, *, only: set[str] | None = None,
                        budget_s: float = 4.0) -> None:
        """Stop ``parts`` (or only the named ones), last built first, each within what is left
        of ``budget_s``, so a stuck part holds up neither the others nor the pins' safe state."""
        deadline = time.monotonic() + budget_s
        for name in reversed(PART_ORDER):
            stop = parts.stops.get(name)
            if stop is None or (only is not None and name not in only):
                continue
            budget = max(0.2, min(budget_s / 2, deadline - time.monotonic()))
            try:
                async with asyncio.timeout(budget):
                    await stop()
            except Exception as exc:
                log.warning("daemon.stop_failed", part=name, error=str(exc) or type(exc).__name__)

    # -- building ---------------------------------------------------------------------------

    async def _assemble(self, config: AgentConfig, old: Parts | None, rebuild: set[str], *,
                        handle: str | None) -> Parts:
        """Build the parts named in ``rebuild`` and take the rest from ``old``."""
        stops: dict[str, Undo] = {}
        built: list[str] = []

        def take(name: str, part: T, stop: Undo | None) -> T:
            if stop is not None:
                stops[name] = stop
                built.append(name)
            return part

        def reused(name: str) -> bool:
            if old is None or name in rebuild:
                return False
            if name in old.stops:
                stops[name] = old.stops[name]
            return True

        try:
            credentials = LiveCredentials("") if reused("session") else self._credential(config)
            registry = old.registry if old is not None and reused("gpio") else take(
                "gpio", *await self._registry(config))
            speaker = old.speaker if old is not None and reused("speaker") else take(
                "speaker", *await _started(build_speaker(config.audio)))
            microphone = old.microphone if old is not None and reused("microphone") else take(
                "microphone", *await _started(build_microphone(config.audio)))
            camera = old.camera if old is not None and reused("camera") else take(
                "camera", *_camera(config))
            emulator = old.emulator if old is not None and reused("emulator") else take(
                "emulator", *await self._emulator(config))
            session = old.session if old is not None and reused("session") else take(
                "session", *await self._session(config, registry, emulator, credentials, handle))
        except BaseException:
            for name in reversed(built):
                with contextlib.suppress(Exception):
                    await stops[name]()
            raise
        return Parts(config, registry, speaker, microphone, camera, emulator, session, stops)

    def _credential(self, config: AgentConfig) -> LiveCredentials:
        given, self._api_key = self._api_key, None  # the first build uses the key it was given
        if given is None:
            key, key_file = find_api_key(config)
            return live_credentials(config, key, key_file)
        try:  # the file it came from, if any, is watched for a new key
            key, key_file = find_api_key(config)
        except ConfigError:
            key, key_file = given, None
        return live_credentials(config, given, key_file if key == given else None)

    async def _registry(self, config: AgentConfig) -> tuple[ToolRegistry, Undo]:
        registry = ToolRegistry.from_config(config.gpio)
        for spec in config.gpio.mcp_servers:
            registry.add_mcp_server(McpServer(spec, secret=_mcp_secret(spec)))
        registry.open()
        if self._on_pin_change is not None:
            registry.on_change(self._on_pin_change)
        release = _release_pins(registry)
        try:
            await registry.start_mcp(wait_s=MCP_START_S)
        except BaseException:
            await registry.stop_mcp()
            await release()
            raise

        async def undo() -> None:
            await registry.stop_mcp()
            await release()

        return registry, undo

    async def _emulator(self, config: AgentConfig) -> tuple[Emulator | None, Undo | None]:
        if not _emulator_wanted(config):
            return None, None
        from agent.emulator.server import Emulator

        emulator = Emulator(self._emulator_config or _in_process_emulator_config())
        await emulator.start()
        return emulator, emulator.close

    async def _session(self, config: AgentConfig, registry: ToolRegistry,
                       emulator: Emulator | None, credentials: LiveCredentials,
                       handle: str | None) -> tuple[ResilientSession, Undo]:
        model = make_model(config, credentials.primary,
                           function_declarations=registry.declarations,
                           endpoint=emulator.url if emulator is not None else None,
                           app_check=credentials.app_check, auth=credentials.auth)
        session = ResilientSession(model, reconnect_policy(config))
        memory = self._memory
        if memory is not None:
            saved = memory.handle_for(session_mark(config))
            handle = handle or saved
            memory.note_handle(handle)  # a new model's session keeps no handle of the old
            session.seed = memory.seed
            session.seed_mode = config.memory.seed
            session.on_handle = memory.note_handle
        session.handle = handle
        if self._on_session_state is not None:
            session.add_listener(self._on_session_state)
        await session.start()
        return session, session.close


class ReloadFailed(Exception):
    """A reload failed and the old config's parts run again (``parts``); ``error`` is why."""

    def __init__(self, parts: Parts, error: BaseException) -> None:
        super().__init__(str(error) or type(error).__name__)
        self.parts = parts
        self.error = error


async def _started(device: D) -> tuple[D, Undo]:
    await device.start()
    return device, device.stop


def _camera(config: AgentConfig) -> tuple[CameraStream | None, Undo | None]:
    camera = build_camera(config.camera)
    return camera, camera.aclose if camera is not None else None


MCP_START_S = 10.0
"""How long the first connection waits for MCP servers' tool lists (a slow one is declared at
the next connection once it is up)."""


def _mcp_secret(spec: McpServerSpec) -> str | None:
    """The server's bearer token, read from its file and redacted from every output."""
    if spec.secret_file is None:
        return None
    secret = read_secret_file(spec.secret_file, ("tools", spec.name, "secret_file"),
                              what="MCP secret file")
    register_secret(secret)
    return secret


def _release_pins(registry: ToolRegistry) -> Undo:
    async def release() -> None:
        registry.safe_all("shutdown")
        log.info("daemon.pins_safe", pins=registry.describe_pins())
        registry.close()

    return release


def _in_process_emulator_config() -> EmulatorConfig:
    """The agent's own emulator runs as long as the agent: it records nothing (a recording
    grows by about 700 MB an hour), and any local user can reach its port, so it holds what a
    small device can spare."""
    from agent.emulator.config import EmulatorConfig, EmulatorLimits

    limits = EmulatorLimits(
        max_connections=4, max_pending_turns=4, max_sessions=4, max_handles_per_session=2,
        record_max_connections=8,
    )  # fmt: skip
    return EmulatorConfig(
        scenario=_lamp_scenario(), record=False, limits=limits, max_message_bytes=2 * 1024 * 1024
    )


def _lamp_scenario() -> Scenario:
    from agent.emulator.scenario import Scenario

    path = resources.files("agent.emulator") / "scenarios" / "lamp.toml"
    return Scenario.load(Path(str(path)))
