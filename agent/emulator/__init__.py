"""A local Live API server speaking the Gemini Live wire protocol.

Use it from tests (``async with Emulator(EmulatorConfig()) as emu``, or the ``emulator``
fixture of :mod:`agent.emulator.pytest_plugin`) or from the command line
(``edge-agent emulator --port 8765 --scenario FILE``).
"""

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault, FaultKind, Trigger
from agent.emulator.recording import ConnectionRecording, Recordings, SessionRecording
from agent.emulator.scenario import CallSpec, Rule, Scenario, ScenarioError
from agent.emulator.server import Emulator, EmulatorStats, run_emulator
from agent.emulator.tls import client_context

__all__ = [
    "CallSpec",
    "ConnectionRecording",
    "Emulator",
    "EmulatorConfig",
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
