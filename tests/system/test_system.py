"""edge-agent on a real kernel: the provisioned image booted under qemu, systemd as PID 1.

The VM's root is provisioned by ansible/site.yml (Pi-only steps off); edge-agent runs as the
real hardened edge-agent.service, the emulator as a second unit. The microphone and speaker
are the two cables of an snd-aloop card, the lamp is line 17 of a gpio-sim chip driven through
gpiozero's lgpio factory. Everything asserted here comes from the logs the VM wrote to its
disk (read with debugfs after poweroff); see steps.sh in vm/ for what the VM does.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.system.findings import (
    AGENT_UNIT,
    EMULATOR_UNIT,
    MEMORY_STEPS,
    STARTED_MESSAGE_ID,
    Findings,
)
from tests.system.run import Outcome

pytestmark = pytest.mark.slow

# The lamp is active-low (a relay board's input) and its line is pulled up: high is off.
LAMP_OFF, LAMP_ON = "1", "0"


def _events(found: Findings, unit: str, name: str, after: str) -> list[dict[str, Any]]:
    start = found.mark(after)
    assert start >= 0, f"the steps never reached {after!r}: {found.marks()}"
    return [event for _, event in found.events(unit, name, after=start)]


def test_vm_ran_every_step_in_time(system_run: Outcome, found: Findings) -> None:
    marks = found.marks()
    console = (system_run.console.read_text(errors="replace")[-3000:]
               if system_run.console and system_run.console.is_file() else "")
    assert system_run.error is None, f"{system_run.error}\n{console}"
    assert "done" in marks, f"the steps did not finish: {marks}\n{console}"
    assert [m for m in marks if m.startswith("timeout:")] == [], marks


def test_service_reached_ready_under_systemd(found: Findings) -> None:
    unit = found.text("unit.txt")
    # The unit the playbook installed (with the test's drop-in), not a stand-in.
    assert "ExecStart=/opt/edge-agent/venv/bin/edge-agent run" in unit, unit
    assert "ProtectSystem=strict" in unit and "DevicePolicy=closed" in unit, unit
    show = found.show("ready")
    assert (show.get("ActiveState"), show.get("SubState")) == ("active", "running"), show
    assert show.get("NRestarts") == "0", show
    # STATUS= from sd_notify reached systemd through the hardened unit's notify socket.
    assert show.get("StatusText"), show
    ready = found.events(AGENT_UNIT, "daemon.ready")
    assert ready, "the agent never logged daemon.ready"
    assert ready[0][0].uid > 0, "the agent ran as root, not as its service user"
    # For Type=notify, systemd says "Started" only once READY=1 has arrived.
    started = [e for e in found.journal
               if e.message_id == STARTED_MESSAGE_ID and e.about_unit == AGENT_UNIT]
    assert started, "systemd never reported edge-agent.service as started"


def test_emulator_received_the_spoken_command(found: Findings) -> None:
    opened = [e for _, e in found.events(AGENT_UNIT, "audio.capture.opened")]
    assert opened and opened[-1].get("device") == "loopmic", opened
    turns = _events(found, EMULATOR_UNIT, "emulator.turn", after="command-play")
    assert [t for t in turns if t.get("spoken") == 1], (
        f"no spoken turn detected in the microphone audio: {turns}")
    calls = _events(found, EMULATOR_UNIT, "emulator.tool.call", after="command-play")
    assert calls and calls[0].get("names") == ["set_lamp"], calls


def test_tool_call_set_the_gpio_sim_line(found: Findings) -> None:
    assert found.lamp("before-command") == LAMP_OFF
    actuated = _events(found, AGENT_UNIT, "tool.actuated", after="command-play")
    assert actuated, "the agent never actuated a tool"
    assert (actuated[0].get("tool"), actuated[0].get("args"), actuated[0].get("outcome")) == (
        "set_lamp", {"action": "on"}, "ok"), actuated
    # Read back from the simulator's sysfs: the kernel line really went low (on).
    assert found.lamp("after-tool") == LAMP_ON


def test_model_reply_came_out_of_the_loopback_speaker(found: Findings) -> None:
    audio = found.reply_audio()
    assert audio.rate == 24000 and audio.seconds > 5.0, (audio.rate, audio.seconds)
    # The emulator's voice for the reply lasts a few seconds; silence would be 0.
    assert audio.loud_seconds(threshold_dbfs=-40.0) >= 1.0, audio.loud_seconds()


def test_stop_leaves_the_lamp_in_its_safe_state(found: Findings) -> None:
    assert found.lamp("before-stop") == LAMP_ON, "the lamp was not on when the stop began"
    show = found.show("after-stop")
    hung = found.text("procs-during-stop.txt")  # written only when the stop hung
    assert (show.get("ActiveState"), show.get("Result")) == ("inactive", "success"), (
        f"{show}\n{hung}\n{found.unit_log_after(AGENT_UNIT, 'stop')}")
    safe = _events(found, AGENT_UNIT, "daemon.pins_safe", after="stop")
    assert safe, "the agent did not report its pins on the way down"
    lamp = safe[-1]["pins"]["set_lamp"]
    assert lamp["state"] == {"on": False} and lamp["pins"] == {"GPIO17": 1.0}, lamp
    # The kernel's own record of the line: the last level the agent drove was high (off);
    # only then was the line given back as an input. (Once released, gpio-sim shows the pull
    # resistor's level, so sysfs alone cannot tell a driven safe state from a released line.)
    changes = found.line_changes()
    assert changes, f"no GPIO trace of the lamp line: {found.text('gpio-chips.txt')}"
    driven = [c.value for c in changes if c.kind == "value"]
    assert driven[-1] == int(LAMP_OFF), changes
    after_last = changes[max(i for i, c in enumerate(changes) if c.kind == "value") + 1:]
    assert all(c.kind == "direction" for c in after_last), after_last
    assert found.lamp("after-stop") == LAMP_OFF


def test_emulator_restart_resumes_without_restarting_the_service(found: Findings) -> None:
    back = _events(found, AGENT_UNIT, "session.resumed", after="emulator-kill")
    back += _events(found, AGENT_UNIT, "session.fresh_start", after="emulator-kill")
    assert back, "the agent never got a session back after the emulator restarted"
    listening = _events(found, EMULATOR_UNIT, "emulator.started", after="emulator-kill")
    assert listening, "the emulator was not started again"
    before, after = found.show("before-emulator-kill"), found.show("after-emulator-restart")
    assert after.get("ActiveState") == "active", after
    assert after.get("NRestarts") == before.get("NRestarts") == "0", (before, after)
    assert after.get("MainPID") == before.get("MainPID"), (before, after)


def test_stalled_event_loop_is_restarted_by_the_watchdog(found: Findings) -> None:
    assert _events(found, AGENT_UNIT, "daemon.test_stall", after="stall"), (
        "the agent did not stall on SIGUSR2 (is EDGE_AGENT_TEST_HOOKS=1 set?)")
    stall = found.mark("stall")
    assert found.systemd_says(AGENT_UNIT, r"[Ww]atchdog timeout", after=stall), (
        "systemd did not report a watchdog timeout")
    before, after = found.show("before-stall"), found.show("after-watchdog")
    assert int(after.get("NRestarts", -1)) == int(before.get("NRestarts", -1)) + 1, (before, after)
    assert after.get("MainPID") != before.get("MainPID"), (before, after)
    assert after.get("ActiveState") == "active", after
    assert _events(found, AGENT_UNIT, "daemon.ready", after="stall"), "no READY after restart"


def test_claiming_the_lamp_never_drives_it_on(found: Findings) -> None:
    # gpiozero's own LGPIOPin claims an output at level 0 and then writes the initial value,
    # which switches an active-low lamp on for a moment; agent.tools.pins_lgpio claims it at
    # the initial level.
    changes = found.line_changes()
    claims = [i for i, c in enumerate(changes) if (c.kind, c.what) == ("direction", "out")]
    assert claims, changes
    for i in claims:
        # gpiolib traces the level an output is claimed at just before the direction change.
        levels = [c.value for c in changes[:i] if c.kind == "value"]
        assert levels and levels[-1] == int(LAMP_OFF), changes[: i + 1]


def test_memory_was_measured_with_the_service_running(found: Findings) -> None:
    # The numbers are reported (the summary's memory table), not judged: a VM's kernel and
    # an emulated CPU are not a Pi's. Checked here is only that they were taken, from a live
    # agent with its camera source on, and are self-consistent.
    config = tomllib.loads(found.text("agent.toml"))
    assert config["camera"]["enabled"] is True, config.get("camera")
    assert config["camera"]["source"] == "test-pattern", config["camera"]
    for name in MEMORY_STEPS:
        mem = found.memory(name)
        assert mem is not None, found.text(f"memory-{name}.txt")
        assert 0 < mem.uss_kb <= mem.pss_kb <= mem.rss_kb, mem
        assert 0 < mem.available_kb < mem.total_kb, mem
