"""The systemd unit, sysusers and tmpfiles files, checked by systemd's own tools.

``systemd-analyze verify`` reports unknown keys and bad values as warnings with exit 0, so
any output at all fails the test. It also insists that ExecStart's binary exists; the unit is
verified as a copy whose ExecStart names an executable made for the test, with the same
arguments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.config import DEFAULT_CONFIG_PATH, CredentialsConfig

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "systemd" / "edge-agent.service"
EXEC_START = "/opt/edge-agent/venv/bin/edge-agent"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed (apt install systemd)")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          check=False)


def _verifiable_copy(unit_text: str, folder: Path) -> Path:
    binary = folder / "edge-agent"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    copy = folder / "edge-agent.service"
    copy.write_text(unit_text.replace(f"ExecStart={EXEC_START} ", f"ExecStart={binary} "))
    return copy


def _settings(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def test_exec_start_runs_the_venv_binary_with_the_default_config() -> None:
    starts = [v for k, v in _settings(UNIT.read_text()) if k == "ExecStart"]
    assert starts == [f"{EXEC_START} run --config {DEFAULT_CONFIG_PATH}"]


def test_verify_passes_without_any_output(tmp_path: Path) -> None:
    copy = _verifiable_copy(UNIT.read_text(), tmp_path)
    result = _run("systemd-analyze", "verify", copy)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_verify_output_would_fail_the_check(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key exits 0 but prints a warning."""
    copy = _verifiable_copy(UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs="), tmp_path)
    result = _run("systemd-analyze", "verify", copy)
    assert result.returncode == 0
    assert "Unknown key 'WatchdogSecs'" in result.stdout + result.stderr


def test_security_exposure_is_1_5_or_better(tmp_path: Path) -> None:
    copy = _verifiable_copy(UNIT.read_text(), tmp_path)
    result = _run("systemd-analyze", "security", "--offline=yes", "--threshold=20", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= 1.5


def test_the_security_gate_fails_an_unhardened_unit(tmp_path: Path) -> None:
    bare = "[Unit]\nDescription=x\n[Service]\nType=notify\nExecStart=" + EXEC_START + " run\n"
    copy = _verifiable_copy(bare, tmp_path)
    result = _run("systemd-analyze", "security", "--offline=yes", "--threshold=20", copy)
    assert result.returncode != 0


def test_hardening_keeps_audio_camera_and_gpio_reachable() -> None:
    settings = _settings(UNIT.read_text())
    values: dict[str, list[str]] = {}
    for key, value in settings:
        values.setdefault(key, []).append(value)
    assert "PrivateDevices" not in values  # it would hide /dev/snd, /dev/video*, /dev/gpiochip*
    assert "ProcSubset" not in values  # gpiozero reads the board revision from /proc
    assert values["DevicePolicy"] == ["closed"]
    assert set(values["DeviceAllow"]) == {"char-alsa rw", "char-video4linux rw",
                                          "char-media rw", "char-dma_heap rw",
                                          "char-gpiochip rw"}
    assert values["SupplementaryGroups"] == ["audio video gpio"]
    assert values["User"] == ["edge-agent"]
    assert values["Type"] == ["notify"] and values["Restart"] == ["on-failure"]
    assert "WatchdogSec" in values and "StartLimitBurst" in values
    assert "Environment" in values and "LG_WD=%t/edge-agent" in values["Environment"]
    assert values["RuntimeDirectory"] == ["edge-agent"]
    assert "AF_NETLINK" in values["RestrictAddressFamilies"][0]  # libcamera uses udev


def test_memory_and_tasks_are_limited_for_a_512_mb_board() -> None:
    values = dict(_settings(UNIT.read_text()))
    high, most = _megabytes(values["MemoryHigh"]), _megabytes(values["MemoryMax"])
    assert 100 <= high < most <= 256, "room above the daemon's ~57 MB, at most half the board"
    assert 32 <= int(values["TasksMax"]) <= 128
    assert values["MemoryDenyWriteExecute"] == "yes"


def _megabytes(value: str) -> int:
    assert value.endswith("M"), value
    return int(value[:-1])


def test_the_credential_name_matches_the_config_default() -> None:
    [credential] = [v for k, v in _settings(UNIT.read_text()) if k == "LoadCredential"]
    name, _, path = credential.partition(":")
    assert name == CredentialsConfig().credential
    assert path == "/etc/edge-agent/api-key"


def test_start_limits_are_in_the_unit_section() -> None:
    text = UNIT.read_text()
    unit_section = text.split("[Service]")[0]
    assert "StartLimitIntervalSec=" in unit_section and "StartLimitBurst=" in unit_section


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None
                    or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers / systemd-tmpfiles are not installed")
def test_sysusers_and_tmpfiles_make_the_user_and_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "sysusers.d").mkdir(parents=True)
    (root / "etc" / "tmpfiles.d").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\naudio:x:29:\nvideo:x:44:\n")
    shutil.copy(REPO / "systemd" / "edge-agent.sysusers",
                root / "etc" / "sysusers.d" / "edge-agent.conf")
    shutil.copy(REPO / "systemd" / "edge-agent.tmpfiles",
                root / "etc" / "tmpfiles.d" / "edge-agent.conf")
    result = _run("systemd-sysusers", f"--root={root}")
    assert result.returncode == 0, result.stderr
    passwd = (root / "etc" / "passwd").read_text()
    groups = {line.split(":")[0]: line.strip().split(":")[3].split(",")
              for line in (root / "etc" / "group").read_text().splitlines()}
    [user] = [line for line in passwd.splitlines() if line.startswith("edge-agent:")]
    uid, gid = int(user.split(":")[2]), int(user.split(":")[3])
    assert user.endswith(":/usr/sbin/nologin")
    for group in ("audio", "video", "gpio"):
        assert "edge-agent" in groups[group], group

    config = root / "etc" / "edge-agent"
    result = _run("systemd-tmpfiles", f"--root={root}", "--create")
    assert result.returncode == 0, result.stderr
    info = config.stat()
    assert (oct(info.st_mode & 0o777), info.st_uid, info.st_gid) == ("0o750", 0, gid)
    (config / "agent.toml").write_text("")
    (config / "agent.toml").chmod(0o666)
    (config / "api-key").write_text("k")
    (config / "api-key").chmod(0o644)
    assert _run("systemd-tmpfiles", f"--root={root}", "--create").returncode == 0
    toml, key = (config / "agent.toml").stat(), (config / "api-key").stat()
    assert (oct(toml.st_mode & 0o777), toml.st_gid) == ("0o640", gid)
    assert (oct(key.st_mode & 0o777), key.st_uid, key.st_gid) == ("0o600", 0, 0)
    assert uid != 0
