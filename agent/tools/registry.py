"""The tool registry: declarations for the model, validated and safe dispatch of its calls.

One `ToolRegistry` owns every pin the agent uses: the tools' pins and the status GPIO. It
claims them once (`open`), answers the Live API's function calls (`call`), and drives every
output back to its safe state on shutdown, on error paths, when a call is cancelled or times
out, and when the session has been gone longer than ``safe_after_disconnect_s``.

`call` never raises for anything the model or a handler did: unknown names, invalid
arguments, rate limits, timeouts and handler failures all come back as
``{"error": "<what happened and what to do>"}``. Only asyncio cancellation propagates (the
conversation cancels the call on toolCallCancellation), after the tool is made safe.

Every call is audited with one ``tool.actuated`` event: tool, args, outcome, result,
duration_ms, session, call_id; args and result are a bounded view
(`agent.tools.bounds.audit_view`), so a hostile call makes a short line.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import structlog

from agent.tools.bounds import audit_view
from agent.tools.claims import find_conflicts
from agent.tools.confirm import ConfirmationBook
from agent.tools.errors import ArgumentError, ToolError, ToolSetupError
from agent.tools.gpio import Action, Actuator
from agent.tools.kinds import build_actuator
from agent.tools.mcp_client import McpServer, McpTool
from agent.tools.option_reader import format_key
from agent.tools.pins import make_pin_factory
from agent.tools.ratelimit import SlidingWindowLimiter
from agent.tools.runner import ThreadRunner
from agent.tools.schema import validate_arguments
from agent.tools.spec import GpioConfig, StatusGpioSpec, ToolSpec
from agent.tools.status import ButtonEvent, ControlButtons, StatusIndicators

__all__ = ["PinChange", "ToolRegistry"]

log = structlog.get_logger(__name__)

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PinChange:
    """A device changed: its logical ``state`` and the physical ``levels`` of its pins."""

    device: str
    state: dict[str, Any]
    levels: dict[str, float | None]


@dataclass(slots=True, eq=False)
class _Tool:
    spec: ToolSpec
    actuator: Actuator
    limiter: SlidingWindowLimiter | None
    inflight: asyncio.Future[Any] | None = None
    cancels: set[threading.Event] = field(default_factory=set)


class ToolRegistry:
    """Declarations, validation, dispatch and safety for the configured tools.

    ``pin_factory``: a gpiozero pin factory object, a kind for `make_pin_factory`
    (``"mock"``, ``"lgpio"``, ``"default"``), or None for gpiozero's default. ``clock`` (a
    monotonic clock) drives the rate limits. ``cancel_grace_s`` bounds how long a cancelled
    or timed-out handler gets to notice before its outputs are forced safe. A pin or a name
    claimed twice raises `ToolSetupError` before anything is claimed.
    """

    def __init__(
        self,
        specs: Sequence[ToolSpec],
        pin_factory: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        status: StatusGpioSpec | None = None,
        safe_after_disconnect_s: float | None = 30.0,
        chip: int | Literal["auto"] | None = None,
        cancel_grace_s: float = 0.5,
        max_workers: int | None = None,
    ) -> None:
        self.mcp_servers: list[McpServer] = []
        conflicts = find_conflicts(list(enumerate(specs)), status)
        if conflicts:
            raise ToolSetupError("\n".join(f"{format_key(key)}: {message}"
                                           for key, message in conflicts))
        if isinstance(pin_factory, str):
            pin_factory = make_pin_factory(pin_factory, chip)
        self.pin_factory: Any = pin_factory
        self._clock = clock
        self._safe_after = safe_after_disconnect_s
        self._grace_s = cancel_grace_s
        self._workers = max_workers or max(2, min(8, len(specs)))
        self._tools: dict[str, _Tool] = {}
        self._confirmations = ConfirmationBook()
        self._mcp_limiters: dict[str, SlidingWindowLimiter] = {}
        self._outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self._confirm_listeners: list[Callable[[str, Payload], None]] = []
        self._unsubscribe_buttons: Callable[[], None] | None = None
        self._button_tasks: set[asyncio.Task[Any]] = set()
        for i, spec in enumerate(specs):
            actuator = build_actuator(spec, pin_factory, loc=("tools", i))
            actuator.notify = functools.partial(self._pin_changed, spec.name)
            limiter = None if spec.rate_limit is None else SlidingWindowLimiter(
                spec.rate_limit, clock)
            self._tools[spec.name] = _Tool(spec, actuator, limiter)
        self.indicators: StatusIndicators | None = None
        self.buttons: ControlButtons | None = None
        if status is not None:
            self.indicators = StatusIndicators(status, pin_factory)
            self.buttons = ControlButtons(status, pin_factory)
        self._runner = ThreadRunner(self._workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[PinChange], None]] = []
        self._opened = False
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self._disconnected_at: float | None = None

    @classmethod
    def from_config(cls, config: GpioConfig, **kwargs: Any) -> ToolRegistry:
        """Build from the parsed config (pin factory, chip, status GPIO, watchdog); its MCP
        servers are added with `add_mcp_server` (their secrets are the builder's to read)."""
        return cls(config.tools, kwargs.pop("pin_factory", config.pin_factory),
                   status=config.status, safe_after_disconnect_s=config.safe_after_disconnect_s,
                   chip=config.chip, **kwargs)

    # ------------------------------------------------------------------ MCP servers

    def add_mcp_server(self, server: McpServer) -> None:
        """Offer ``server``'s tools next to the GPIO tools (call before `start_mcp`)."""
        spec = server.spec
        self.mcp_servers.append(server)
        if spec.rate_limit is not None:
            self._mcp_limiters[spec.name] = SlidingWindowLimiter(spec.rate_limit, self._clock)

    async def start_mcp(self, wait_s: float) -> None:
        """Start every MCP server; wait at most ``wait_s`` for their tool lists (one that is
        not up by then is declared once it is, at the next connection)."""
        for server in self.mcp_servers:
            await server.start()
        ready = await asyncio.gather(*(s.wait_ready(wait_s) for s in self.mcp_servers))
        for server, up in zip(self.mcp_servers, ready, strict=True):
            if not up:
                log.warning("mcp.not_ready", server=server.spec.name, waited_s=wait_s)

    async def stop_mcp(self) -> None:
        for server in self.mcp_servers:
            await server.stop()

    def _mcp_tool(self, name: str) -> tuple[McpServer, McpTool] | None:
        for server in self.mcp_servers:
            tool = server.tools.get(name)
            if tool is not None:
                return server, tool
        return None

    async def _call_mcp(self, server: McpServer, tool: McpTool,
                        args: Mapping[str, Any] | None) -> tuple[str, Payload]:
        name = tool.declared_name
        try:
            arguments = validate_arguments(tool.parameters, args)
        except ArgumentError as exc:
            return "invalid", {"error": f"invalid arguments for {name}: {exc}. Nothing was "
                                        "done; call it again with corrected arguments"}
        spec = server.spec
        if spec.needs_confirmation(tool.server_name):
            waiting = self._ask_confirmation(name, arguments, spec.confirm_window_s)
            if waiting is not None:
                return waiting
            outcome, payload = await self._invoke_mcp(server, tool, arguments)
            return ("confirmed" if outcome == "ok" else outcome), payload
        return await self._invoke_mcp(server, tool, arguments)

    async def _invoke_mcp(self, server: McpServer, tool: McpTool,
                          arguments: Mapping[str, Any]) -> tuple[str, Payload]:
        """Call ``tool`` unless its server is over its rate limit; bounded by its timeout."""
        name = tool.declared_name
        limiter = self._mcp_limiters.get(server.spec.name)
        retry_after = limiter.try_acquire() if limiter else None
        if retry_after is not None:
            return "rate_limited", {"error": f"rate limit: the tools of {server.spec.name} are "
                                             "called too often; nothing was done, try again "
                                             f"in {max(retry_after, 0.1):.1f} s"}
        timeout = server.spec.timeout_s
        try:
            async with asyncio.timeout(timeout + self._grace_s):
                payload = await server.call(name, dict(arguments))
        except TimeoutError:
            return "timeout", {"error": f"{name} did not answer within {timeout:g} s"}
        return ("ok" if "result" in payload else "error"), payload

    # ------------------------------------------------------------------ lifecycle

    def open(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Claim every pin (outputs start in their safe state).

        ``loop`` (default: the running loop) receives pin-change and button callbacks.
        Raises `GpioError` if a pin cannot be claimed, `ToolSetupError` if a custom
        handler cannot be imported; whatever was claimed is released again.
        """
        if self._opened:
            return
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        opened: list[Any] = []
        try:
            for tool in self._tools.values():
                tool.actuator.open()
                opened.append(tool.actuator)
            if self.indicators is not None:
                self.indicators.open()
                opened.append(self.indicators)
            if self.buttons is not None:
                self.buttons.open(loop)
                opened.append(self.buttons)
                if self._unsubscribe_buttons is None:
                    self._unsubscribe_buttons = self.buttons.on_event(self._on_button)
        except BaseException:
            for part in reversed(opened):
                part.close()
            raise
        if self.pin_factory is None:  # gpiozero chose its default on the first device
            from gpiozero import Device

            self.pin_factory = Device.pin_factory
        self._runner = ThreadRunner(self._workers)  # a fresh pool after a close()
        self._opened = True
        log.info("tool.registry_opened", tools=list(self._tools),
                 pin_factory=type(self.pin_factory).__name__)

    def close(self) -> None:
        """Stop running handlers, drive every output safe, release the pins.

        Released pins become inputs (gpiozero), and every line is released when the process
        ends anyway: wire loads so that an undriven pin is their safe state (a pull resistor
        on the relay input), and rely on ``safe_state`` only while the agent runs.
        """
        if not self._opened:
            return
        for task in self._button_tasks:
            task.cancel()
        self.safe_all(reason="shutdown")
        # Running handlers were told to stop; let them finish (bounded) before their
        # devices go away underneath them.
        self._runner.close(timeout=self._grace_s)
        self._opened = False
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        for tool in self._tools.values():
            try:
                tool.actuator.close()
            except Exception as exc:  # keep releasing the others
                log.warning("tool.release_failed", tool=tool.spec.name, error=repr(exc))
        for part in (self.indicators, self.buttons):
            if part is not None:
                part.close()
        log.info("tool.registry_closed")

    async def __aenter__(self) -> ToolRegistry:
        self.open(asyncio.get_running_loop())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ model-facing

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def declarations(self) -> list[dict[str, Any]]:
        """The Live API ``functionDeclarations``: ``{"name", "description", "parameters",
        "behavior"}``.

        ``parameters`` is left out for functions without arguments: the API rejects an
        object schema with no properties. ``behavior`` is always written, ``BLOCKING``
        included: models differ in what they assume when it is left out.
        """
        out: list[dict[str, Any]] = []
        for tool in self._tools.values():
            decl: dict[str, Any] = {"name": tool.spec.name, "description": tool.spec.description}
            if tool.spec.parameters is not None:
                decl["parameters"] = copy.deepcopy(dict(tool.spec.parameters))
            decl["behavior"] = tool.spec.behavior
            out.append(decl)
        names = set(self._tools)
        for server in self.mcp_servers:  # the tools each listed last
            for declaration in server.declarations(server.spec.behavior):
                if declaration["name"] in names:
                    log.warning("mcp.name_taken", server=server.spec.name,
                                tool=declaration["name"])
                    continue
                names.add(declaration["name"])
                out.append(copy.deepcopy(declaration))
        return out

    def scheduling(self, name: str) -> str | None:
        """How the model should take the result of a call to ``name``: the tool's
        ``scheduling`` for a non-blocking tool, None otherwise (unknown names included)."""
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is not None:
            return tool.spec.scheduling
        remote = self._mcp_tool(name) if isinstance(name, str) else None
        return None if remote is None else remote[0].spec.scheduling

    async def call(self, name: str, args: Mapping[str, Any] | None, *,
                   call_id: str | None = None, session: str | None = None) -> dict[str, Any]:
        """Carry out one function call; return the function response payload.

        ``{"result": ...}`` on success, ``{"error": "..."}`` otherwise; never raises for bad
        input, unknown names, handler errors or timeouts. If this coroutine is cancelled, the
        handler is told to stop, the tool is made safe and `CancelledError` propagates.
        """
        return await self._audited(name, args, self._dispatch(name, args),
                                   session=session, call_id=audit_view(call_id))

    async def confirm_by_button(self) -> tuple[str, Payload] | None:
        """Carry out the newest request waiting for confirmation (a press of the confirm
        button); return (tool, payload), or None when nothing waits. The audit event says
        ``outcome=confirmed`` with ``confirmed_by="button"``."""
        taken = self._confirmations.take_newest(self._clock())
        if taken is None:
            log.info("tool.confirm_nothing_waiting")
            return None
        name, arguments = taken
        payload = await self._audited(name, arguments, self._confirmed(name, arguments),
                                      confirmed_by="button")
        for listener in list(self._confirm_listeners):
            try:
                listener(name, payload)
            except Exception:
                log.exception("tool.confirm_listener_failed", tool=name)
        return name, payload

    def tool_outcomes(self) -> dict[tuple[str, str], int]:
        """Calls so far by (tool, outcome): ``ok``, ``invalid``, ``confirmed``, ``timeout`` ...;
        names the config does not declare are counted as ``unknown``."""
        return dict(self._outcomes)

    def on_confirmed(self, callback: Callable[[str, Payload], None]) -> Callable[[], None]:
        """Call ``callback(tool, payload)`` after a button press carried out a request (the
        model, which was told to wait for a confirmation, should hear of it)."""
        self._confirm_listeners.append(callback)
        return lambda: self._confirm_listeners.remove(callback)

    async def _audited(self, name: str, args: Any,
                       work: Awaitable[tuple[str, Payload]], **audit: Any) -> Payload:
        """Await ``work``; log one ``tool.actuated`` event whatever happens."""
        started = time.perf_counter()
        outcome, payload = "error", None
        try:
            outcome, payload = await work
            return payload
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:  # a bug must not become an exception in the agent
            log.exception("tool.internal_error", tool=name)
            outcome, payload = "error", {"error": f"{name} failed inside the agent "
                                                  f"({type(exc).__name__}); nothing more is "
                                                  "known, do not retry"}
            return payload
        finally:
            # Counted by a configured name only ("unknown" else): the labels stay bounded.
            counted = name if isinstance(name, str) and (
                name in self._tools or self._mcp_tool(name) is not None) else "unknown"
            self._outcomes[(counted, outcome)] += 1
            log.info("tool.actuated", tool=audit_view(name), args=audit_view(args),
                     outcome=outcome, result=audit_view(payload),
                     duration_ms=round((time.perf_counter() - started) * 1e3, 3), **audit)

    async def _confirmed(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, Payload]:
        """Carry out a confirmed request of the GPIO or MCP tool ``name``."""
        tool = self._tools.get(name)
        if tool is None:
            remote = self._mcp_tool(name)
            if remote is None:  # the server's tool list changed while the request waited
                return "unknown", {"error": f"{name} is no longer offered; nothing was done"}
            outcome, payload = await self._invoke_mcp(*remote, arguments)
            return ("confirmed" if outcome == "ok" else outcome), payload
        if not self._opened:
            return "closed", {"error": "the device's GPIO is shut down; nothing was changed"}
        outcome, payload = await self._act(tool, tool.actuator.prepare(arguments))
        return ("confirmed" if outcome == "ok" else outcome), payload

    async def _dispatch(self, name: str, args: Mapping[str, Any] | None) -> tuple[str, Payload]:
        tool = self._tools.get(name) if isinstance(name, str) else None
        remote = self._mcp_tool(name) if tool is None and isinstance(name, str) else None
        if remote is not None:
            return await self._call_mcp(*remote, args)
        if tool is None:
            known = ", ".join([*self._tools, *(t for s in self.mcp_servers for t in s.tools)])
            known = known or "none"
            # The name is the model's: shown bounded.
            shown = repr(name[:64]) if isinstance(name, str) else f"a {type(name).__name__}"
            return "unknown", {"error": f"there is no function named {shown}; the available "
                                        f"functions are: {known}"}
        if not self._opened:
            return "closed", {"error": "the device's GPIO is shut down; nothing was changed"}
        try:
            arguments = validate_arguments(tool.spec.parameters, args)
            action = tool.actuator.prepare(arguments)
        except ArgumentError as exc:
            return "invalid", {"error": f"invalid arguments for {name}: {exc}. Nothing was "
                                        "changed; call it again with corrected arguments"}
        confirmed = False
        if tool.spec.confirm:
            waiting = self._ask_confirmation(name, arguments, tool.spec.confirm_window_s)
            if waiting is not None:
                return waiting
            confirmed = True
        outcome, payload = await self._act(tool, action)
        return ("confirmed" if confirmed and outcome == "ok" else outcome), payload

    def _ask_confirmation(self, name: str, arguments: Mapping[str, Any],
                          window: float) -> tuple[str, Payload] | None:
        """None when this call confirms the waiting request for ``name``; otherwise the
        answer that tells the model to ask the user first (nothing is done)."""
        verdict = self._confirmations.check(name, arguments, window, self._clock())
        if verdict == "confirmed":
            return None
        if verdict == "too_soon":
            return "awaiting_confirmation", {"result": (
                f"Not done: ask the user and wait for their answer before calling {name} "
                "again. Nothing was changed.")}
        button = (" (or they can press the confirm button, which carries it out)"
                  if self.buttons is not None and self.buttons.has("confirm") else "")
        return "awaiting_confirmation", {"result": (
            f"Not done yet: {name} needs the user's confirmation first. Ask the user "
            f"whether to go ahead; if they say yes, call {name} again with the same "
            f"arguments within {window:g} s{button}. Nothing was changed.")}

    async def _act(self, tool: _Tool, action: Action) -> tuple[str, Payload]:
        """Run ``action`` unless the tool is busy or over its rate limit."""
        name = tool.spec.name
        if tool.inflight is not None and not tool.inflight.done():
            return "busy", {"error": f"{name} is still carrying out an earlier call; nothing "
                                     "was changed, try again when that has finished"}
        retry_after = tool.limiter.try_acquire() if tool.limiter else None
        if retry_after is not None:
            limit = tool.spec.rate_limit
            assert limit is not None
            return "rate_limited", {
                "error": f"rate limit: {name} accepts at most {limit.calls} calls per "
                         f"{limit.per_s:g} s; nothing was changed, try again in "
                         f"{max(retry_after, 0.1):.1f} s"}
        return await self._run(tool, action)

    async def _run(self, tool: _Tool, action: Action) -> tuple[str, Payload]:
        name, timeout = tool.spec.name, tool.spec.timeout_s
        cancel = threading.Event()
        tool.cancels.add(cancel)
        fut = self._runner.submit(functools.partial(action, cancel), asyncio.get_running_loop())
        tool.inflight = fut
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                value = await asyncio.shield(fut)
        except asyncio.CancelledError:
            await self._stop(tool, cancel, fut)
            raise
        except Exception as exc:
            # A TimeoutError raised by the handler itself is a failure, not our deadline.
            if isinstance(exc, TimeoutError) and deadline.expired():
                await self._stop(tool, cancel, fut)
                return "timeout", {"error": f"{name} did not finish within {timeout:g} s and "
                                            "was stopped; its outputs are back in their safe "
                                            "state"}
            if not self._opened:
                return "closed", {"error": f"{name} was stopped: the device's GPIO is "
                                           "shutting down"}
            self._restore(tool, "error")
            if isinstance(exc, ToolError):
                return "error", {"error": f"{name}: {exc}"}
            log.warning("tool.handler_failed", tool=name, error=repr(exc))
            return "error", {"error": f"{name} failed ({type(exc).__name__}: {exc}); its "
                                      "outputs are back in their safe state"}
        finally:
            tool.cancels.discard(cancel)
        return "ok", {"result": value}

    async def _stop(self, tool: _Tool, cancel: threading.Event, fut: asyncio.Future[Any]) -> None:
        """Tell the handler to stop, give it a bounded grace, then force the safe state."""
        cancel.set()
        try:
            async with asyncio.timeout(self._grace_s):
                await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._restore(tool, "cancelled")
            raise
        except BaseException:  # timed out or failed: the safe state follows either way
            pass
        if not fut.done():
            # A handler that ignores its cancel event: make safe now and again when it ends.
            log.warning("tool.handler_stuck", tool=tool.spec.name, grace_s=self._grace_s)
            fut.add_done_callback(
                functools.partial(self._restore_when_done, tool, "stuck handler ended"))
        self._restore(tool, "stopped")

    def _restore(self, tool: _Tool, reason: str) -> None:
        if not self._opened:  # released already (close() made everything safe first)
            return
        try:
            tool.actuator.safe()
        except Exception as exc:
            log.error("tool.safe_failed", tool=tool.spec.name, reason=reason, error=repr(exc))

    def _restore_when_done(self, tool: _Tool, reason: str, _fut: asyncio.Future[Any]) -> None:
        self._restore(tool, reason)

    # ------------------------------------------------------------------ safety

    def safe_all(self, reason: str = "request") -> None:
        """Stop running handlers and drive every output to its safe state."""
        if not self._opened:
            return
        for tool in self._tools.values():
            for cancel in list(tool.cancels):
                cancel.set()
            self._restore(tool, reason)
            if tool.inflight is not None and not tool.inflight.done():
                tool.inflight.add_done_callback(
                    functools.partial(self._restore_when_done, tool, f"{reason}, handler ended"))
        log.info("tool.safe_all", reason=reason)

    def _on_button(self, event: ButtonEvent) -> None:
        if event.button != "confirm":
            return
        task = asyncio.get_running_loop().create_task(self.confirm_by_button(),
                                                      name="tool-confirm-button")
        self._button_tasks.add(task)
        task.add_done_callback(self._button_tasks.discard)

    def note_session_state(self, live: bool) -> None:
        """Tell the watchdog whether a Live session is up.

        After ``safe_after_disconnect_s`` without a session every output goes safe: nobody
        is left to switch things off.
        """
        if live:
            self._disconnected_at = None
            if self._disconnect_timer is not None:
                self._disconnect_timer.cancel()
                self._disconnect_timer = None
            return
        if self._disconnected_at is not None:
            return  # already counting
        self._disconnected_at = self._clock()
        loop = self._loop or _running_loop()
        if self._safe_after is not None and loop is not None:
            self._disconnect_timer = loop.call_later(self._safe_after, self._disconnect_expired)

    def _disconnect_expired(self) -> None:
        self._disconnect_timer = None
        log.warning("tool.session_gone", safe_after_disconnect_s=self._safe_after)
        self.safe_all(reason="session gone")

    # ------------------------------------------------------------------ observation

    def on_change(self, callback: Callable[[PinChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on the loop whenever a device changes; returns an
        unsubscribe function."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def describe_pins(self) -> dict[str, dict[str, Any]]:
        """Current state of every claimed device: kind, pin levels and logical state."""
        out: dict[str, dict[str, Any]] = {}
        if not self._opened:
            return out
        for name, tool in self._tools.items():
            out[name] = {"kind": tool.spec.kind, "pins": tool.actuator.levels(),
                         "state": tool.actuator.state()}
        if self.indicators is not None:
            for name, info in self.indicators.levels().items():
                out[name] = {"kind": "status_led", **info}
        if self.buttons is not None:
            out["status.buttons"] = {"kind": "buttons", "pins": {},
                                     "state": {"muted": self.buttons.muted,
                                               "talking": self.buttons.talking}}
        return out

    def _pin_changed(self, name: str) -> None:
        if not self._listeners:
            return
        actuator = self._tools[name].actuator
        change = PinChange(name, actuator.state(), actuator.levels())
        loop = self._loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            self._emit(change)
        else:
            loop.call_soon_threadsafe(self._emit, change)

    def _emit(self, change: PinChange) -> None:
        for callback in list(self._listeners):
            try:
                callback(change)
            except Exception:
                log.exception("tool.change_callback_failed", device=change.device)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

