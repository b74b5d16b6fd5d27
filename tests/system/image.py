"""The VM's disk image: a Debian root provisioned by the project's playbook, plus a kernel,
systemd, udev, the test's devices and its steps.

* The base root (the provisioning tier's debootstrap minbase tarball, plus the kernel, systemd,
  udev and ALSA's tools) is made once per cache and kept as a tarball.
* A builder root (the base plus gcc, the kernel's headers and source, espeak-ng) builds the
  out-of-tree gpio-sim module and speaks the test's command into a WAV; both are cached per
  kernel version.
* The VM root is the base root, provisioned by ``ansible/site.yml`` through the chroot
  connection with the Pi-only steps off, then given the test's units and files from ``vm/``.
* ``mke2fs -d`` turns it into an ext4 image without mounting anything.

Downloads (apt's archives, pip's cache) are kept in the cache folder too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from tests.system.plumbing import (
    SystemTestError,
    in_root,
    mounted,
    pack,
    remove_tree,
    run,
    throwaway_root,
    unpack,
    unprepare,
)

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VM_FILES = HERE / "vm"
BUILD_SCRIPT = HERE / "build-gpio-sim.sh"
HOST_VARS = HERE / "vm-host.yml"
# The provisioning tier (tests/integration/ansible) debootstraps the same minbase root and
# caches it; both tiers start from that one tarball (plumbing.throwaway_root).
MINBASE_CACHE = REPO / ".cache" / "provision"
SUITE = "bookworm"
# The VM's own packages; the playbook installs what the agent needs.
VM_PACKAGES = ("linux-image-amd64", "systemd-sysv", "udev", "kmod", "alsa-utils")
BUILD_PACKAGES = ("make", "gcc", "libc6-dev", "xz-utils", "linux-source-6.1", "espeak-ng")
COMMAND_TEXT = "please switch the lamp on"
# Stands in for Raspberry Pi's python3-lgpio (the role's Pi-only package): the same library
# as a wheel from PyPI, installed into the agent's venv after the play.
LGPIO_WHEEL = "lgpio==0.2.2.0"
VENV = "/opt/edge-agent/venv"
# Raspberry Pi OS's boot config: the role edits it even where the Pi-only steps are off.
FAKE_BOOT_CONFIG = "# http://rptl.io/configtxt\ndtparam=audio=on\ncamera_auto_detect=1\n"
# Units that only slow the boot of a throwaway VM down (or wait on a console nobody reads).
MASKED_UNITS = ("serial-getty@ttyS0.service", "getty@tty1.service", "apt-daily.timer",
                "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
                "systemd-timesyncd.service", "man-db.timer", "dpkg-db-backup.timer")
TEST_UNITS = ("system-test-devices.service", "system-test.service")


@dataclass(frozen=True)
class Cache:
    """The cache folder's layout (``.cache/system`` in the checkout)."""

    root: Path

    @property
    def apt_vm(self) -> Path:
        return self.root / "apt-archives" / "vm"

    @property
    def apt_build(self) -> Path:
        return self.root / "apt-archives" / "build"

    @property
    def pip(self) -> Path:
        return self.root / "pip"

    def base_tarball(self) -> Path:
        key = _digest(SUITE, *VM_PACKAGES)
        return self.root / f"base-{SUITE}-{key}.tar"

    def build_dir(self, kver: str) -> Path:
        key = _digest(kver, *BUILD_PACKAGES, COMMAND_TEXT, BUILD_SCRIPT.read_text())
        return self.root / f"build-{kver}-{key}"


@dataclass(frozen=True)
class Built:
    """What the builder root made."""

    gpio_sim: Path
    command_wav: Path


@dataclass(frozen=True)
class BootFiles:
    """What qemu boots: the kernel, its initramfs and the root image."""

    kernel: Path
    initrd: Path
    image: Path


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _apt_install(root: Path, packages: list[str] | tuple[str, ...], timeout: float) -> None:
    in_root(root, "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
            + " ".join(packages) + " >/dev/null", timeout=timeout)


def minbase_tarball() -> Path:
    """The debootstrap minbase tarball the provisioning tier caches (made here if missing)."""
    try:
        return Path(throwaway_root().ensure_base_tarball(MINBASE_CACHE))
    except RuntimeError as exc:  # its RootError
        raise SystemTestError(f"cannot make the minbase root: {exc}") from exc


def base_tarball(cache: Cache, work: Path) -> Path:
    """The base root's tarball: the minbase root plus `VM_PACKAGES`, made when missing."""
    tarball = cache.base_tarball()
    if tarball.is_file():
        return tarball
    cache.root.mkdir(parents=True, exist_ok=True)
    root = work / "base-root"
    unpack(minbase_tarball(), root)
    with mounted(root, {"/var/cache/apt/archives": cache.apt_vm}):
        _apt_install(root, VM_PACKAGES, timeout=900)
    unprepare(root)
    pack(root, tarball)
    remove_tree(root)
    return tarball


def kernel_version(root: Path) -> str:
    """The one kernel installed in a root (its /lib/modules folder name)."""
    versions = sorted(p.name for p in (root / "lib" / "modules").iterdir())
    if len(versions) != 1:
        raise SystemTestError(f"expected one kernel in {root}, found {versions}")
    return versions[0]


def tarball_kernel_version(tarball: Path) -> str:
    """The kernel version in a root tarball, without unpacking it."""
    listing = run(["tar", "-tf", tarball, "--wildcards", "./usr/lib/modules/*/modules.order"],
                  timeout=120).stdout.split()
    if len(listing) != 1:
        raise SystemTestError(f"expected one kernel in {tarball}, found {listing}")
    return listing[0].split("/")[4]


def build_artifacts(cache: Cache, base: Path, kver: str, work: Path) -> Built:
    """gpio-sim.ko for ``kver`` and the spoken command, from the cache or the builder root."""
    out = cache.build_dir(kver)
    built = Built(out / "gpio-sim.ko", out / "command.wav")
    if built.gpio_sim.is_file() and built.command_wav.is_file():
        return built
    root = work / "builder-root"
    unpack(base, root)
    partial = out.with_name(out.name + ".partial")
    remove_tree(partial)
    with mounted(root, {"/var/cache/apt/archives": cache.apt_build}):
        _apt_install(root, [*BUILD_PACKAGES, f"linux-headers-{kver}"], timeout=900)
        shutil.copy2(BUILD_SCRIPT, root / "build-gpio-sim.sh")
        result = in_root(root, f"sh /build-gpio-sim.sh {kver} /build-out '{COMMAND_TEXT}'",
                         timeout=600)
        log.info("system.gpio_sim_built", kver=kver, modinfo=result.stdout.strip())
    shutil.copytree(root / "build-out", partial)
    partial.rename(out)
    remove_tree(root)
    return built


def build_wheel(dist: Path) -> Path:
    """A wheel of this checkout's agent, built from a clean copy of its sources."""
    remove_tree(dist)
    src = dist / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "agent", src / "agent",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", dist, src], timeout=300, env=_clean_env())
    wheels = sorted(dist.glob("edge_agent-*.whl"))
    if len(wheels) != 1:
        raise SystemTestError(f"expected one wheel in {dist}, found {wheels}")
    return wheels[0]


def ansible_playbook() -> str:
    """ansible-playbook from this Python's environment (the venv), else from PATH."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("ansible-playbook", path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    if found is None:
        raise SystemTestError("ansible-playbook is missing: pip install ansible (the full "
                              "package: it brings the community.general chroot connection)")
    return found


def _clean_env() -> dict[str, str]:
    """This environment without pip's and Ansible's settings (they name host files)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "ANSIBLE_"))}


def provision(root: Path, cache: Cache, wheel: Path, work: Path) -> None:
    """Apply ``ansible/site.yml`` to the (unpacked) root through the chroot connection, as a
    user would to a Pi, with the Pi-only steps off; then add the lgpio wheel to the venv."""
    boot = root / "boot" / "firmware" / "config.txt"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text(FAKE_BOOT_CONFIG)
    host = {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
            "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": False,
            "edge_agent_wheel": str(wheel)}
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"edge_agents": {"hosts": {"system-test-vm": host}}}))
    ansible = REPO / "ansible"
    playbook = ansible_playbook()
    env = {**_clean_env(), "ANSIBLE_CONFIG": str(ansible / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(ansible / "roles"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{Path(playbook).parent}{os.pathsep}{os.environ['PATH']}"}
    binds = {"/var/cache/apt/archives": cache.apt_vm, "/root/.cache/pip": cache.pip}
    with mounted(root, binds):
        result = run([playbook, "-i", inventory, "site.yml", "-e", f"@{HOST_VARS}"],
                     cwd=ansible, env=env, timeout=900)
        (work / "ansible.log").write_text(result.stdout + result.stderr)
        in_root(root, f"{VENV}/bin/pip install -q --disable-pip-version-check {LGPIO_WHEEL}",
                timeout=300)
    unprepare(root)


def install_test_files(root: Path, kver: str, built: Built) -> None:
    """The test's units, scripts, ALSA wiring and udev rule (from ``vm/``), the gpio-sim
    module and the spoken command; test units enabled, boot-time distractions masked."""
    shutil.copytree(VM_FILES, root, dirs_exist_ok=True, symlinks=True)
    for script in (root / "usr" / "local" / "lib" / "system-test").iterdir():
        script.chmod(0o755)
    extra = root / "lib" / "modules" / kver / "extra"
    extra.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built.gpio_sim, extra / "gpio-sim.ko")
    shutil.copy2(built.command_wav, root / "usr" / "local" / "share" / "system-test"
                 / "command.wav")
    (root / "etc" / "hostname").write_text("system-test-vm\n")
    in_root(root, f"depmod -a {kver} && systemctl enable {' '.join(TEST_UNITS)} -q "
            f"&& systemctl mask -q {' '.join(MASKED_UNITS)}", timeout=120)


def make_image(root: Path, out: Path, size: str = "3G") -> BootFiles:
    """An ext4 image of ``root`` (no mount needed), and its kernel and initramfs beside it."""
    kver = kernel_version(root)
    kernel, initrd = out / f"vmlinuz-{kver}", out / f"initrd.img-{kver}"
    shutil.copy2(root / "boot" / f"vmlinuz-{kver}", kernel)
    shutil.copy2(root / "boot" / f"initrd.img-{kver}", initrd)
    image = out / "vm.img"
    image.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", root, image, size], timeout=600)
    return BootFiles(kernel, initrd, image)
