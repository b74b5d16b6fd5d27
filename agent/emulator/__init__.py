"""A local Live API server speaking the Gemini Live wire protocol.

Use it from tests (``async with Emulator(EmulatorConfig()) as emu``, or the ``emulator``
fixture of :mod:`agent.emulator.pytest_plugin`) or from the command line
(``edge-agent emulator --port 8765 --scenario FILE``).

What it does not model: real speech recognition or language understanding (what a spoken
turn "said" comes from the scenario); model voices beyond a synthetic harmonic signal;
thinking, grounding, code execution, Google Search and other built-in tools; proactive audio,
affective dialog and media resolution beyond token counts; what a NON_BLOCKING function's
result makes the model say (it goes on talking while the call runs, and speaks a turn
"result of NAME" as the response's ``scheduling`` says); ``contextUpdate`` (accepted, no
effect); the service's exact token counts,
latencies and burstiness (replies are paced in scaled real time); quotas and rate limits
other than injected handshake refusals; App Check; and the service's close reasons where
no public report gives them (an exhausted context window closes with 1007).
"""

from agent.emulator.config import EmulatorConfig, EmulatorLimits
from agent.emulator.faults import Fault, FaultKind, Trigger
from agent.emulator.recording import (
    ConnectionRecording,
    EmulatorStats,
    Recordings,
    SessionRecording,
)
from agent.emulator.scenario import CallSpec, Rule, Scenario, ScenarioError
from agent.emulator.server import Emulator, run_emulator
from agent.emulator.tls import client_context

__all__ = [
    "CallSpec",
    "ConnectionRecording",
    "Emulator",
    "EmulatorConfig",
    "EmulatorLimits",
    "EmulatorStats",
    "Fault",
    "FaultKind",
    "Recordings",
    "Rule",
    "Scenario",
    "ScenarioError",
    "SessionRecording",
    "Trigger",
    "client_context",
    "run_emulator",
]
