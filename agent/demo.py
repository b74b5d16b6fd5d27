"""``edge-agent demo``: the whole agent, live in the terminal, with no hardware and no API key.

Spoken commands come from a WAV file shipped with the package (made with espeak-ng), the
camera is a test pattern, the GPIO header is gpiozero's mock pins, and the Live API is the
built-in emulator with the lamp scenario. What happens is printed as it happens: session
events, what the user said, what the model answered, tool calls and pin changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from agent.config import load_config
from agent.config.model import AgentConfig, AudioOutput
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario

DEMO_TURNS = 3  # spoken commands in demo_commands.wav


def demo_config(reply_wav: Path | None) -> AgentConfig:
    """The shipped demo config; the model's speech goes to ``reply_wav`` when given."""
    path = Path(str(resources.files("agent") / "data" / "demo.toml"))
    config = load_config(path)
    if reply_wav is not None:
        output = AudioOutput(kind="wav", device=None, path=reply_wav, rate=None)
        config = dataclasses.replace(config, audio=dataclasses.replace(config.audio, output=output))
    return config


class Transcript:
    """Prints events as lines: time, who, what. Transcript fragments are joined per turn."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()
        self.user: list[str] = []
        self.model: list[str] = []
        self.turns = 0
        self.tool_calls = 0
        self.pin_changes = 0
        self.states: list[str] = []
        self.pins: dict[str, str] = {}
        self.turn_done = asyncio.Event()

    def line(self, who: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"{elapsed:6.1f}s  {who:<10} {text}\n")
        self.out.flush()

    def flush_user(self) -> None:
        if self.user:
            self.line("you", _join(self.user))
            self.user.clear()

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        if event == "transcript.user":
            self.user.append(fields["text"])
        elif event == "transcript.model":
            self.flush_user()
            self.model.append(fields["text"])
        elif event == "model.turn_complete":
            self.flush_user()
            if self.model:
                self.line("model", _join(self.model))
                self.model.clear()
            self.turns += 1
            self.turn_done.set()
        elif event == "tool.call":
            self.flush_user()
            self.tool_calls += 1
            self.line("tool call", f"{fields['name']} {json.dumps(fields['args'])}")
        elif event == "tool.response":
            self.line("tool done", f"{fields['name']} -> {json.dumps(fields['response'])}")
        elif event == "pin.change":
            state = json.dumps(fields["state"])
            if self.pins.get(fields["device"]) != state:
                self.pins[fields["device"]] = state
                self.pin_changes += 1
                self.line("pin", f"{fields['device']} -> {state}")
        elif event == "session.state":
            self.states.append(fields["state"])
            self.line("session", fields["state"])
        elif event == "model.interrupted":
            self.line("model", "(interrupted)")


def _join(fragments: list[str]) -> str:
    return " ".join(" ".join(fragments).split())


async def run_demo(out: TextIO, reply_wav: Path | None, timeout_s: float = 60.0) -> int:
    """Run the demo until the model has answered every command; returns an exit code."""
    transcript = Transcript(out)
    scenario_path = Path(str(resources.files("agent.emulator") / "scenarios" / "lamp.toml"))
    emulator = EmulatorConfig(scenario=Scenario.load(scenario_path), record=False)
    daemon = Daemon(demo_config(reply_wav), on_event=transcript, emulator_config=emulator)
    out.write("edge-agent demo: three spoken commands, a mock lamp on GPIO17, the emulator.\n\n")

    async def finish_when_done() -> None:
        deadline = time.monotonic() + timeout_s
        while transcript.turns < DEMO_TURNS and time.monotonic() < deadline:
            transcript.turn_done.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await transcript.turn_done.wait()
            except TimeoutError:
                break
        await asyncio.sleep(1.0)  # let the last reply play out
        daemon.stop()

    watcher = asyncio.create_task(finish_when_done())
    code = await daemon.run()
    watcher.cancel()
    parts = daemon.parts
    stats = parts.session.stats if parts is not None else None
    out.write("\nSummary\n")
    out.write(f"  turns answered     {transcript.turns} of {DEMO_TURNS}\n")
    out.write(f"  tool calls         {transcript.tool_calls}\n")
    out.write(f"  pin changes        {transcript.pin_changes}\n")
    if stats is not None:
        out.write(f"  session            {stats.status_line()}\n")
    if daemon.controller is not None:
        conv = daemon.controller.stats
        out.write(
            f"  audio              {conv.chunks_sent} chunks sent, "
            f"{conv.audio_chunks_played} reply chunks played, {conv.frames_sent} camera frames\n"
        )
    if reply_wav is not None:
        out.write(f"  model's speech     {reply_wav}\n")
    if transcript.turns < DEMO_TURNS:
        out.write("  the demo did not finish: see the log lines above\n")
        return code or 1
    return code
