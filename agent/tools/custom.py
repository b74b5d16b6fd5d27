"""Custom tool handlers: a Python entry point ``package.module:function`` from the config.

The function is called as ``function(args, ctx)`` in a worker thread, exactly like the
built-in kinds: ``args`` is already validated against the declared ``parameters`` schema,
``ctx`` is a `ToolContext`. It returns anything JSON-serialisable (sent back as
``{"result": ...}``) or raises `ToolError` with a message for the model. Long-running
handlers should wait with ``ctx.sleep()`` (or check ``ctx.cancel``) so a timeout or a
toolCallCancellation stops them. An optional ``safe_handler`` is called as ``safe(ctx)``
whenever the tool must return to its safe state.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.tools.errors import ToolError, ToolSetupError
from agent.tools.gpio import Action, Actuator
from agent.tools.option_reader import KeyPath, format_key
from agent.tools.options import CustomOptions

__all__ = ["CustomHandler", "ToolContext", "load_entry_point"]


@dataclass(slots=True)
class ToolContext:
    """What a custom handler gets besides its arguments."""

    tool: str
    cancel: threading.Event
    pin_factory: Any = None
    pins: tuple[int, ...] = ()
    store: dict[str, Any] = field(default_factory=dict)
    """Per-tool state kept across calls (e.g. a device created on first use)."""

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; False if the call was cancelled meanwhile (stop then)."""
        return not self.cancel.wait(seconds)


def load_entry_point(ref: str, loc: KeyPath) -> Callable[..., Any]:
    """Import ``package.module:function``; raise `ToolSetupError` saying what is wrong."""
    module_name, _, attr_path = ref.partition(":")
    where = format_key(loc)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is a setup problem here
        raise ToolSetupError(f"{where}: cannot import {module_name!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ToolSetupError(f"{where}: {module_name!r} has no {attr_path!r}")
        target = getattr(target, attr)
    if not callable(target):
        raise ToolSetupError(f"{where}: {ref!r} is not callable")
    if inspect.iscoroutinefunction(target):
        raise ToolSetupError(f"{where}: {ref!r} is async; handlers run in a worker thread, "
                             "so give a plain function")
    return target  # type: ignore[no-any-return]


class CustomHandler(Actuator):
    """Runs a configured entry point like the built-in kinds."""

    _handler: Callable[..., Any]
    _safe_handler: Callable[..., Any] | None = None

    def _makers(self) -> list[Callable[[], Any]]:
        return []  # custom handlers own their hardware; declared pins are only reserved

    @property
    def _opts(self) -> CustomOptions:
        opts = self.spec.options
        assert isinstance(opts, CustomOptions)
        return opts

    def open(self) -> None:
        self._handler = load_entry_point(self._opts.handler, (*self.loc, "handler"))
        if self._opts.safe_handler:
            self._safe_handler = load_entry_point(self._opts.safe_handler,
                                                  (*self.loc, "safe_handler"))
        self._store: dict[str, Any] = {}

    def _context(self, cancel: threading.Event) -> ToolContext:
        return ToolContext(self.spec.name, cancel, self.pin_factory,
                           tuple(self.spec.pins.values()), self._store)

    def prepare(self, args: Mapping[str, Any]) -> Action:
        call_args = dict(args)

        def run(cancel: threading.Event) -> Any:
            result = self._handler(call_args, self._context(cancel))
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise ToolError(f"the handler returned a value that is not JSON: {exc}") from exc
            self._changed()
            return result

        return run

    def safe(self) -> None:
        if self._safe_handler is not None:
            self._safe_handler(self._context(threading.Event()))
            self._changed()

    def state(self) -> dict[str, Any]:
        return {}
