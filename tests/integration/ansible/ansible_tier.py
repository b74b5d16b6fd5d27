"""Shared pieces of the provisioning tier: paths, tool checks, and the Ansible environment.

The tier needs root (mounts, chroot), ``debootstrap`` and the ``ansible`` and
``ansible-lint`` pip packages. Without root it is skipped; as root, a missing tool fails
the test with the step that installs it, so CI cannot pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
ANSIBLE_DIR = REPO / "ansible"
HARDWARE_DIR = REPO / "hardware"
CACHE_DIR = REPO / ".cache" / "provision"
VENV_BIN = Path(sys.executable).parent

INSTALL_HINTS = {
    "ansible-playbook": "pip install ansible (the full package: it brings community.general)",
    "ansible-vault": "pip install ansible",
    "ansible-inventory": "pip install ansible",
    "ansible-lint": "pip install ansible-lint",
    "debootstrap": "apt-get install debootstrap",
    "chroot": "apt-get install coreutils",
    "systemd-analyze": "apt-get install systemd",
}


def load_module(name: str, path: Path) -> ModuleType:
    """Import a helper that is not in a package (tests run with --import-mode=importlib)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def is_root() -> bool:
    return os.geteuid() == 0


def tool(name: str) -> str:
    """The path of a tool: skipped without root, a failure naming the install step with it."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        return found
    message = f"{name} is missing: {INSTALL_HINTS.get(name, 'install it')}"
    if not is_root():
        pytest.skip(f"the provisioning tier runs as root (CI does); here: {message}")
    pytest.fail(message, pytrace=False)


def require_root() -> None:
    if not is_root():
        pytest.skip("the provisioning tier needs root: it mounts /proc, /sys and /dev into a "
                    "debootstrapped root and applies the playbook through chroot")


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment for ansible-*: the repository's ansible.cfg and roles, no colour, and
    none of this machine's pip settings (they name files that the target root lacks)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "ANSIBLE_"))}
    env.update({
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "NO_COLOR": "1",
    })
    env.update(extra)
    return env


def run_tool(args: list[str | Path], *, cwd: Path = ANSIBLE_DIR, timeout: float = 600,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command and return its result (the caller asserts on it)."""
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env=env or ansible_env())
