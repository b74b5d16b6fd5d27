"""Fixtures for the tools layer: gpiozero mock pins, registries that always get closed, and
custom handler modules written to real files."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from agent.config.gpio import parse_tools
from agent.tools.registry import ToolRegistry
from agent.tools.spec import StatusGpioSpec


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """A fresh mock pin factory whose pins all support PWM; reset after the test."""
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    factory.close()


BuildRegistry = Callable[..., Awaitable[ToolRegistry]]


@pytest.fixture
async def build(mock_factory: MockFactory) -> AsyncIterator[BuildRegistry]:
    """``await build([{tool table}, ...], **registry_kwargs)`` -> an opened registry on mock
    pins, closed at teardown."""
    made: list[ToolRegistry] = []

    async def _build(tools: list[dict[str, Any]], *, status: StatusGpioSpec | None = None,
                     **kwargs: Any) -> ToolRegistry:
        registry = ToolRegistry(parse_tools(tools), mock_factory, status=status, **kwargs)
        registry.open(asyncio.get_running_loop())
        made.append(registry)
        return registry

    yield _build
    for registry in made:
        registry.close()


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write Python source to a real module on sys.path; returns its (unique) module name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def _write(source: str) -> str:
        name = f"edge_custom_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return _write


WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


@pytest.fixture
def wait_until() -> WaitUntil:
    """``await wait_until(predicate)``: poll on the loop (pins have no events to await);
    fail after about 2 s."""

    async def _wait(predicate: Callable[[], bool]) -> None:
        for _ in range(1000):
            if predicate():
                return
            await asyncio.sleep(0.002)
        pytest.fail("condition not met within 2 s")

    return _wait


@pytest.fixture
def level(mock_factory: MockFactory) -> Callable[[int], float]:
    """``level(17)``: the physical level of a mock pin (0/1, or a PWM pin's duty cycle)."""
    return lambda gpio: float(mock_factory.pin(gpio).state)
