"""A real apply of site.yml to a throwaway Debian bookworm root through the chroot connection.

The root plays a Pi 5 with an INMP441 mic, a MAX98357A amplifier and a Camera Module 3, with
the Pi-only steps off (edge_agent_raspberry_pi: false) and a Raspberry Pi OS config.txt at
/boot/firmware, so the boot config edit itself runs. The API key comes from ansible-vault.
The play runs twice: the first must succeed, the second must change nothing. Then the files,
the user, the venv, the unit (``systemd-analyze verify`` inside the root) and the config
(the installed agent's own ``check-config``, as the service user) are checked.

The base root and the apt downloads are cached in ``.cache/provision/`` in the checkout, so
only the first run on a machine pays for debootstrap and most downloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
import throwaway_root as tr
from ansible_tier import CACHE_DIR, REPO, require_root, run_tool, tool

log = structlog.get_logger(__name__)

pytestmark = pytest.mark.slow

UNIT = "/etc/systemd/system/edge-agent.service"
VENV = "/opt/edge-agent/venv"
CONFIG = "/etc/edge-agent/agent.toml"
API_KEY = "dummy-api-key-for-the-provisioning-test"
VAULT_PASSWORD = "provisioning-test-vault-password"
HARDWARE = {"edge_agent_board": "pi5", "edge_agent_mic": "inmp441",
            "edge_agent_speaker": "max98357a", "edge_agent_camera": "camera-module-3"}
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.M)
# What runs inside the root after the plays (with /proc, /sys and /dev mounted).
AS_SERVICE_USER = ["setpriv", "--reuid=edge-agent", "--regid=edge-agent", "--init-groups"]
IMPORTS = ("import json, sys, agent, agent.cli, agent.config, agent.media.audio, numpy, soxr, "
           "simplejpeg, pyaudio, uvloop, gpiozero, websockets, orjson, google.auth; "
           "print(json.dumps({'prefix': sys.prefix, 'agent': agent.__file__, "
           "'numpy': numpy.__file__, 'pyaudio': pyaudio.__file__, "
           "'google.auth': google.auth.__file__}))")
CHECKS = {
    "verify": ["systemd-analyze", "verify", "--man=no", UNIT],
    "is-enabled": ["systemctl", "is-enabled", "edge-agent.service"],
    "check-config": [*AS_SERVICE_USER, f"{VENV}/bin/edge-agent", "check-config",
                     "--config", CONFIG],
    "imports": [f"{VENV}/bin/python", "-c", IMPORTS],
    "id": ["id", "-nG", "edge-agent"],
    "key-as-service-user": [*AS_SERVICE_USER, "cat", "/etc/edge-agent/api-key"],
    "alsa-devices": ["aplay", "-L"],
}


@dataclass
class Applied:
    """What the two plays printed and what the checks inside the root returned."""

    root: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str] | None
    checks: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    left_mounted: list[Path] = field(default_factory=list)
    left_running: list[int] = field(default_factory=list)

    def recap(self, result: subprocess.CompletedProcess[str] | None) -> dict[str, int]:
        assert result is not None, "the second run did not happen: the first one failed"
        match = RECAP.search(result.stdout)
        assert match, result.stdout[-3000:] + result.stderr[-3000:]
        keys = ("ok", "changed", "unreachable", "failed")
        return dict(zip(keys, map(int, match.groups()[1:]), strict=True))


def build_wheel(dist: Path) -> Path:
    """A wheel of this checkout's agent package, built from a clean copy of its sources
    (an in-tree build would reuse a stale build/ folder)."""
    src = dist.parent / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "agent", src / "agent",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                             str(dist), str(src)], capture_output=True, text=True, timeout=300,
                            check=False)
    wheels = sorted(dist.glob("edge_agent-*.whl"))
    assert result.returncode == 0 and wheels, result.stderr[-3000:]
    return wheels[0]


def write_inputs(work: Path, root: Path, wheel: Path) -> list[str | Path]:
    """The inventory, the vault password file and the vaulted key; the play's arguments."""
    password = work / "vault-password"
    password.write_text(VAULT_PASSWORD + "\n")
    password.chmod(0o600)
    vaulted = run_tool([tool("ansible-vault"), "encrypt_string", "--vault-password-file",
                        password, API_KEY, "--name", "edge_agent_api_key"], cwd=work)
    assert vaulted.returncode == 0, vaulted.stderr
    secrets = work / "vault.yml"
    secrets.write_text(vaulted.stdout)
    host = {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
            "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": False,
            "edge_agent_raspberry_pi": False, "edge_agent_wheel": str(wheel),
            "edge_agent_extras": ["vertex"], **HARDWARE}
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"edge_agents": {"hosts": {"pi-in-a-chroot": host}}}))
    return [tool("ansible-playbook"), "-i", inventory, "site.yml", "-e", f"@{secrets}",
            "--vault-password-file", password]


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    require_root()
    for name in ("debootstrap", "chroot", "ansible-playbook", "ansible-vault"):
        tool(name)
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal started
        now = time.monotonic()
        timings[name] = round(now - started, 1)
        started = now

    work = tmp_path_factory.mktemp("provision")
    tarball = tr.ensure_base_tarball(CACHE_DIR)
    lap("base root (debootstrap, or the cached tarball)")
    wheel = build_wheel(work / "dist")
    lap("wheel")
    root = work / "root"
    tr.restore_root(tarball, root)
    lap("restore root")
    play = write_inputs(work, root, wheel)
    # Downloaded .debs are kept for the next run (bookworm's pip in the venv does not fill
    # a bind-mounted cache, so the few wheels pip fetches are downloaded each time).
    binds = {"/var/cache/apt/archives": CACHE_DIR / "apt-archives"}
    try:
        with tr.mounted(root, binds):
            tr.prepare_root(root)
            lap("prepare root")
            first = run_tool(play, timeout=900)
            lap("first run")
            second = run_tool(play, timeout=600) if first.returncode == 0 else None
            lap("second run")
            checks = {name: subprocess.run(["chroot", str(root), *command], capture_output=True,
                                           text=True, timeout=120, check=False)
                      for name, command in CHECKS.items()}
            lap("checks in the root")
        result = Applied(root=root, first=first, second=second, checks=checks, timings=timings,
                         left_mounted=tr.mounts_under(root), left_running=tr.processes_in(root))
        log.info("provision.timings", **timings)
        (CACHE_DIR / "last-timings.json").write_text(json.dumps(timings, indent=1) + "\n")
        yield result
    finally:
        tr.remove_root(root)


def _text(applied: Applied, path: str) -> str:
    return (applied.root / path.lstrip("/")).read_text()


def _stat(applied: Applied, path: str) -> os.stat_result:
    return (applied.root / path.lstrip("/")).lstat()


def _owner(applied: Applied, st: os.stat_result) -> tuple[str, str]:
    """User and group names as the root's own passwd and group files say."""
    def name(file: str, number: int) -> str:
        for line in _text(applied, file).splitlines():
            fields = line.split(":")
            if int(fields[2]) == number:
                return fields[0]
        return str(number)
    return name("/etc/passwd", st.st_uid), name("/etc/group", st.st_gid)


def test_first_run_provisions_the_root(applied: Applied) -> None:
    recap = applied.recap(applied.first)
    assert applied.first.returncode == 0, applied.first.stdout[-5000:]
    assert recap["failed"] == 0 and recap["unreachable"] == 0
    assert recap["changed"] > 10


def test_second_run_changes_nothing(applied: Applied) -> None:
    assert applied.second is not None and applied.second.returncode == 0
    assert applied.recap(applied.second)["changed"] == 0, applied.second.stdout[-5000:]


def test_boot_config_block_sits_under_an_all_header_after_the_images_sections(
        applied: Applied) -> None:
    text = _text(applied, "/boot/firmware/config.txt")
    assert text.startswith(tr.FAKE_BOOT_CONFIG)
    assert text[len(tr.FAKE_BOOT_CONFIG):] == (
        "# BEGIN edge-agent hardware (managed by Ansible)\n"
        "[all]\n"
        "dtparam=i2s=on\n"
        "dtoverlay=googlevoicehat-soundcard\n"
        "camera_auto_detect=1\n"
        "# END edge-agent hardware (managed by Ansible)\n")


def test_service_user_exists_in_its_device_groups(applied: Applied) -> None:
    passwd = [line for line in _text(applied, "/etc/passwd").splitlines()
              if line.startswith("edge-agent:")]
    assert len(passwd) == 1
    assert passwd[0].endswith(":/var/lib/edge-agent:/usr/sbin/nologin")
    groups = applied.checks["id"].stdout.split()
    assert set(groups) >= {"edge-agent", "audio", "video", "gpio"}


def test_venv_has_the_agent_and_takes_pyaudio_and_numpy_from_apt(applied: Applied) -> None:
    result = applied.checks["imports"]
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["prefix"] == VENV
    assert found["agent"].startswith(f"{VENV}/lib/python3")
    assert found["pyaudio"].startswith("/usr/lib/python3/dist-packages/")
    assert found["numpy"].startswith("/usr/lib/python3/dist-packages/")
    assert found["google.auth"].startswith(f"{VENV}/lib/python3")  # edge_agent_extras
    assert "include-system-site-packages = true" in _text(applied, f"{VENV}/pyvenv.cfg")


def test_unit_is_installed_unchanged_enabled_and_verifies(applied: Applied) -> None:
    assert _text(applied, UNIT) == (REPO / "systemd" / "edge-agent.service").read_text()
    link = applied.root / "etc/systemd/system/multi-user.target.wants/edge-agent.service"
    assert os.readlink(link) == UNIT
    assert applied.checks["is-enabled"].stdout.strip() == "enabled"
    verify = applied.checks["verify"]
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")


def test_sysusers_and_tmpfiles_entries_are_installed_unchanged(applied: Applied) -> None:
    for name, path in (("sysusers", "/etc/sysusers.d/edge-agent.conf"),
                       ("tmpfiles", "/etc/tmpfiles.d/edge-agent.conf")):
        assert _text(applied, path) == (REPO / "systemd" / f"edge-agent.{name}").read_text()


def test_config_is_templated_from_the_profiles_and_accepted_by_the_agent(
        applied: Applied) -> None:
    st = _stat(applied, CONFIG)
    assert (stat.S_IMODE(st.st_mode), _owner(applied, st)) == (0o640, ("root", "edge-agent"))
    folder = _stat(applied, "/etc/edge-agent")
    assert (stat.S_IMODE(folder.st_mode), _owner(applied, folder)) == (
        0o750, ("root", "edge-agent"))
    check = applied.checks["check-config"]  # run as the service user, by the installed agent
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{CONFIG}: OK" in check.stdout
    config = tomllib.loads(_text(applied, CONFIG))
    assert config["audio"]["mic"] == "inmp441"
    assert config["audio"]["output"] == {"device": "edge_speaker", "rate": 48000}
    assert config["camera"]["source"] == "picamera2"
    assert config["live"]["credentials"] == {"credential": "api-key"}


def test_api_key_comes_from_the_vault_into_a_root_only_file(applied: Applied) -> None:
    st = _stat(applied, "/etc/edge-agent/api-key")
    assert (stat.S_IMODE(st.st_mode), _owner(applied, st)) == (0o600, ("root", "root"))
    assert _text(applied, "/etc/edge-agent/api-key") == API_KEY + "\n"
    denied = applied.checks["key-as-service-user"]
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert API_KEY not in _text(applied, CONFIG)
    assert "LoadCredential=api-key:/etc/edge-agent/api-key" in _text(applied, UNIT)
    assert API_KEY not in applied.first.stdout + applied.second.stdout  # type: ignore[union-attr]


def test_alsa_config_gives_the_speaker_device(applied: Applied) -> None:
    text = _text(applied, "/etc/alsa/conf.d/60-edge-agent.conf")
    assert 'slave.pcm "hw:CARD=sndrpigooglevoi,DEV=0"' in text
    devices = applied.checks["alsa-devices"]
    assert devices.returncode == 0, devices.stderr
    assert "edge_speaker" in devices.stdout.splitlines()


def test_pi_only_steps_and_the_health_gate_are_skipped_without_systemd(
        applied: Applied) -> None:
    out = applied.first.stdout
    for task in ("Install the packages that only Raspberry Pi's archive has",
                 "Check that every overlay the block loads is installed",
                 "Reboot to apply the boot config",
                 "Wait until the service has reported READY"):
        block = out[out.index(task):]
        assert block.split("\n", 2)[1].startswith("skipping:"), block[:400]


def test_nothing_is_left_mounted_or_running_in_the_root(applied: Applied) -> None:
    assert applied.left_mounted == []
    assert applied.left_running == []
