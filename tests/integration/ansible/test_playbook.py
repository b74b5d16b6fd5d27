"""The playbook without a target: ansible-lint (production profile, offline), the syntax
check, and the example inventory rendered through the role's own tasks into agent.toml files
that the agent's loader accepts."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

from ansible_tier import ANSIBLE_DIR, HERE, ansible_env, run_tool, tool

from agent.config import parse_config

EXAMPLE = ANSIBLE_DIR / "inventory" / "example" / "hosts.yml"
TEMPLATES = ANSIBLE_DIR / "roles" / "edge_agent" / "templates"


def _render(inventory: Path, out: Path, *extra: str) -> tuple[int, str]:
    out.mkdir(exist_ok=True)
    result = run_tool([tool("ansible-playbook"), "-i", inventory, HERE / "render.yml",
                       "-e", f"out_dir={out}", "-e", f"role_templates={TEMPLATES}",
                       "-e", "vault_edge_agent_api_key=dummy-key-for-rendering",
                       "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                      timeout=180)
    return result.returncode, result.stdout + result.stderr


def test_ansible_lint_production_profile_passes() -> None:
    result = run_tool([tool("ansible-lint"), "--offline", "--profile", "production"],
                      timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output


def test_ansible_lint_would_catch_a_bad_task(tmp_path: Path) -> None:
    """The lint above can fail: the same tree with a command task that always reports a
    change does not pass."""
    copy = tmp_path / "ansible"
    shutil.copytree(ANSIBLE_DIR, copy, symlinks=False)
    tasks = copy / "roles" / "edge_agent" / "tasks" / "boot.yml"
    tasks.write_text(tasks.read_text() + "\n- name: Touch a file\n"
                     "  ansible.builtin.command: touch /tmp/x\n")
    env = ansible_env(ANSIBLE_CONFIG=str(copy / "ansible.cfg"),
                      ANSIBLE_ROLES_PATH=str(copy / "roles"))
    result = run_tool([tool("ansible-lint"), "--offline", "--profile", "production"],
                      cwd=copy, timeout=300, env=env)
    assert result.returncode != 0
    assert "no-changed-when" in result.stdout + result.stderr


def test_syntax_check_of_site_yml_with_the_example_inventory() -> None:
    result = run_tool([tool("ansible-playbook"), "--syntax-check", "-i", EXAMPLE, "site.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "playbook: site.yml" in result.stdout


def test_example_inventory_shows_a_rolling_fleet() -> None:
    result = run_tool([tool("ansible-inventory"), "-i", EXAMPLE, "--graph", "edge_agents"])
    assert result.returncode == 0, result.stderr
    assert [line.strip(" |-@") for line in result.stdout.splitlines()[1:]] == [
        "living-room", "hallway", "workshop"]
    site = (ANSIBLE_DIR / "site.yml").read_text()
    assert "serial: \"{{ edge_agent_rollout_batches | default([1, '25%', '100%']) }}\"" in site
    assert "max_fail_percentage:" in site


def test_example_inventory_renders_configs_the_agent_accepts(tmp_path: Path) -> None:
    code, output = _render(EXAMPLE, tmp_path)
    assert code == 0, output
    configs = {}
    for host in ("living-room", "hallway", "workshop"):
        path = tmp_path / f"{host}.agent.toml"
        parse_config(path.read_text(), source=path)
        configs[host] = tomllib.loads(path.read_text())
    living, hallway, workshop = configs["living-room"], configs["hallway"], configs["workshop"]
    assert living["audio"]["mic"] == "inmp441"
    assert living["audio"]["output"] == {"device": "edge_speaker", "rate": 48000}
    assert living["camera"]["source"] == "picamera2"
    assert [t["name"] for t in living["tools"]] == ["set_lamp", "dim_led_strip"]
    assert living["live"]["credentials"] == {"credential": "api-key"}
    assert hallway["audio"]["mic"] == "respeaker-2mic"
    assert hallway["camera"] == {"enabled": False}
    assert workshop["audio"]["echo"] == "none"
    assert workshop["camera"]["source"] == "v4l2"
    # Only the hosts whose speaker needs an ALSA device get a file.
    assert sorted(p.name for p in tmp_path.glob("*.alsa.conf")) == [
        "hallway.alsa.conf", "living-room.alsa.conf"]
    assert "dummy-key-for-rendering" not in "".join(
        p.read_text() for p in tmp_path.glob("*.agent.toml"))


BAD_INVENTORY = """\
edge_agents:
  vars:
    edge_agent_board: pi5
    edge_agent_mic: inmp441
    edge_agent_speaker: max98357a
    edge_agent_camera: none
    edge_agent_api_key: dummy
  hosts:
    fan-on-i2s-pin:
      edge_agent_tools:
        - {name: fan, description: Fan., kind: digital_output, pin: 20}
    led-on-amp-enable:
      edge_agent_config: {gpio: {status: {leds: {error: 16}}}}
    no-key:
      edge_agent_api_key: ""
    emulator-needs-no-key:
      edge_agent_api_key: ""
      edge_agent_backend: emulator
    bad-board: {edge_agent_board: nonesuch}
    bad-mic: {edge_agent_mic: nonesuch}
    bad-speaker: {edge_agent_speaker: nonesuch}
    bad-camera: {edge_agent_camera: nonesuch}
    amp-behind-respeaker: {edge_agent_mic: respeaker-2mic}
"""


def test_the_role_stops_a_host_with_impossible_settings(tmp_path: Path) -> None:
    """Each bad host fails with a message that says what to change; the good one renders."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(BAD_INVENTORY)
    code, output = _render(inventory, tmp_path / "out")
    assert code != 0
    failed = {line.split("[")[1].split("]")[0]: line for line in output.splitlines()
              if line.startswith("fatal: [")}
    expected = {
        "fan-on-i2s-pin": "tools[0] (fan) pin uses GPIO20, which the mic inmp441 profile takes",
        "led-on-amp-enable": "gpio.status.leds uses GPIO16, which the mic inmp441 profile takes",
        "no-key": "edge_agent_api_key is empty",
        "bad-board": "no board profile 'nonesuch'; there are: pi4, pi5, zero2w",
        "bad-mic": "no mic profile 'nonesuch'",
        "bad-speaker": "no speaker profile 'nonesuch'",
        "bad-camera": "no camera profile 'nonesuch'",
        "amp-behind-respeaker": "mic respeaker-2mic takes the I2S bus",
    }
    assert sorted(failed) == sorted(expected), output
    for host, message in expected.items():
        assert message in failed[host], failed[host]
    assert (tmp_path / "out" / "emulator-needs-no-key.agent.toml").is_file()
