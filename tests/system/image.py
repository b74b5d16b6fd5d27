"""The VM's disk image: a Debian root provisioned by the project's playbook, plus a kernel,
systemd, udev, the test's devices and its steps.

* The base root (Debian with the kernel, systemd, udev and ALSA's tools) is made once per
  cache and kept as a tarball: on amd64 from the provisioning tier's debootstrap minbase
  tarball, on arm64 with mmdebstrap through qemu-user (see `tests.system.arch`).
* A builder root (the base plus gcc, the kernel's headers and source, espeak-ng) builds the
  out-of-tree gpio-sim module (from three source files the host takes out of the kernel's
  source archive) and speaks the test's command into a WAV; on arm64 it also builds lgpio's
  wheel. All are cached per kernel version. On arm64 everything there is compiled natively on
  the emulated CPU: the headers' build tools are arm64 programs anyway, and the kernel's
  configuration names the compiler it was built with.
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
from typing import Any

import structlog

from tests.system.arch import AMD64, Arch
from tests.system.plumbing import (
    SystemTestError,
    in_root,
    mmdebstrap,
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
# The VM's own packages besides the kernel; the playbook installs what the agent needs.
VM_PACKAGES = ("systemd-sysv", "udev", "kmod", "alsa-utils")
# The arm64 root is made whole by mmdebstrap: minbase has no CA certificates (the amd64
# minbase tarball is made with them) and no Python (Raspberry Pi OS has it).
ARM64_EXTRA_PACKAGES = ("ca-certificates", "python3")
# The kernel's package makes the initramfs, and the packages after it (udev, kmod) trigger its
# remaking: minutes each on an emulated CPU. While mmdebstrap installs, update-initramfs is
# diverted to true; afterwards it is put back and run once.
_UPDATE_INITRAMFS = "/usr/sbin/update-initramfs"
INITRAMFS_ONCE = (
    f'--essential-hook=set -e; chroot "$1" dpkg-divert --quiet --local --rename --divert '
    f'{_UPDATE_INITRAMFS}.real --add {_UPDATE_INITRAMFS}; ln -s /bin/true "$1{_UPDATE_INITRAMFS}"',
    f'--customize-hook=set -e; rm "$1{_UPDATE_INITRAMFS}"; chroot "$1" dpkg-divert --quiet '
    f'--local --rename --remove {_UPDATE_INITRAMFS}; chroot "$1" update-initramfs -c -k all',
)
# linux-source-X.Y of the VM's kernel is added to these.
BUILD_PACKAGES = ("make", "gcc", "libc6-dev", "xz-utils", "espeak-ng")
COMMAND_TEXT = "please switch the lamp on"
# What build-gpio-sim.sh takes from the kernel's source.
GPIO_SIM_SOURCES = ("drivers/gpio/gpio-sim.c", "drivers/gpio/gpiolib.h", "kernel/irq/irq_sim.c")
# Stands in for Raspberry Pi's python3-lgpio (the role's Pi-only package): the same library
# as a wheel from PyPI, installed into the agent's venv after the play. PyPI has none for
# aarch64 and Python 3.13, and Debian none at all, so for the arm64 VM the builder root makes
# the wheel from the same release's sdist (statically linked, as PyPI's wheels are).
LGPIO_BUILD_PACKAGES = ("python3-dev", "python3-pip", "python3-setuptools", "swig")
LGPIO_WHEEL = "lgpio==0.2.2.0"
VENV = "/opt/edge-agent/venv"
# Raspberry Pi OS's boot config: the role edits it even where the Pi-only steps are off.
FAKE_BOOT_CONFIG = "# http://rptl.io/configtxt\ndtparam=audio=on\ncamera_auto_detect=1\n"
# Units that only slow the boot of a throwaway VM down (or wait on a console nobody reads).
MASKED_UNITS = ("serial-getty@ttyS0.service", "serial-getty@ttyAMA0.service",
                "getty@tty1.service", "apt-daily.timer",
                "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
                "systemd-timesyncd.service", "man-db.timer", "dpkg-db-backup.timer")
TEST_UNITS = ("system-test-devices.service", "system-test.service")
# system-test.service's own limit on the steps (x86), stretched by the arch's slowness.
STEPS_TIMEOUT_S = 360


@dataclass(frozen=True)
class Cache:
    """The cache folder's layout (``.cache/system`` in the checkout, ``.cache/system-arm64``
    for the arm64 VM)."""

    root: Path
    arch: Arch = AMD64

    @property
    def apt_vm(self) -> Path:
        return self.root / "apt-archives" / "vm"

    @property
    def apt_build(self) -> Path:
        return self.root / "apt-archives" / "build"

    @property
    def pip(self) -> Path:
        return self.root / "pip"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def vm_packages(self) -> tuple[str, ...]:
        extra = ARM64_EXTRA_PACKAGES if self.arch.emulated else ()
        return (self.arch.kernel_package, *VM_PACKAGES, *extra)

    def base_tarball(self) -> Path:
        hooks = INITRAMFS_ONCE if self.arch.emulated else ()
        key = _digest(self.arch.suite, self.arch.name, *self.vm_packages(), *hooks)
        return self.root / f"base-{self.arch.suite}-{self.arch.name}-{key}.tar"

    def build_dir(self, kver: str) -> Path:
        lgpio = (LGPIO_WHEEL, *LGPIO_BUILD_PACKAGES) if self.arch.emulated else ()
        key = _digest(kver, *BUILD_PACKAGES, *lgpio, COMMAND_TEXT, BUILD_SCRIPT.read_text())
        return self.root / f"build-{kver}-{key}"


@dataclass(frozen=True)
class Built:
    """What the builder root made."""

    gpio_sim: Path
    command_wav: Path
    lgpio_wheel: Path | None = None  # for an arch PyPI has no lgpio wheel for


@dataclass(frozen=True)
class BootFiles:
    """What qemu boots: the kernel, its initramfs and the root image."""

    kernel: Path
    initrd: Path
    image: Path


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _apt_install(root: Path, packages: list[str] | tuple[str, ...], timeout: float) -> None:
    """Install ``packages`` in the mounted root, once more after a failure.

    apt runs dpkg on a pseudo-terminal and prints its errors on standard output, so that is
    kept for the error. The second try configures what the first left half-installed (a
    maintainer script or trigger that failed) with the packages already fetched; the first
    failure is logged either way."""
    script = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends "
              + " ".join(packages))
    try:
        in_root(root, script, timeout=timeout)
    except SystemTestError as first:
        log.warning("system.apt_install_retried", error=str(first))
        in_root(root, f"dpkg --configure -a || true; {script}", timeout=timeout)


def minbase_tarball() -> Path:
    """The debootstrap minbase tarball the provisioning tier caches (made here if missing)."""
    try:
        return Path(throwaway_root().ensure_base_tarball(MINBASE_CACHE))
    except RuntimeError as exc:  # its RootError
        raise SystemTestError(f"cannot make the minbase root: {exc}") from exc


def base_tarball(cache: Cache, work: Path) -> Path:
    """The base root's tarball with `Cache.vm_packages`, made when missing."""
    tarball = cache.base_tarball()
    if tarball.is_file():
        return tarball
    cache.root.mkdir(parents=True, exist_ok=True)
    if cache.arch.emulated:
        mmdebstrap(tarball, suite=cache.arch.suite, arch=cache.arch.name, variant="minbase",
                   packages=cache.vm_packages(), apt_cache=cache.apt_vm,
                   hooks=INITRAMFS_ONCE, env=dict(cache.arch.chroot_env))
        return tarball
    root = work / "base-root"
    unpack(minbase_tarball(), root)
    with mounted(root, {"/var/cache/apt/archives": cache.apt_vm}):
        _apt_install(root, cache.vm_packages(), timeout=900)
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


def _built(out: Path) -> Built:
    wheels = sorted(out.glob("lgpio-*.whl"))
    return Built(out / "gpio-sim.ko", out / "command.wav", wheels[0] if wheels else None)


def build_artifacts(cache: Cache, base: Path, kver: str, work: Path) -> Built:
    """gpio-sim.ko for ``kver``, the spoken command and (on an emulated arch) the lgpio wheel,
    from the cache or the builder root."""
    out = cache.build_dir(kver)
    built = _built(out)
    if (built.gpio_sim.is_file() and built.command_wav.is_file()
            and (built.lgpio_wheel is not None or not cache.arch.emulated)):
        return built
    root = work / "builder-root"
    unpack(base, root)
    partial = out.with_name(out.name + ".partial")
    remove_tree(partial)
    source = "linux-source-" + ".".join(kver.split(".")[:2])
    lgpio = LGPIO_BUILD_PACKAGES if cache.arch.emulated else ()
    slowness = cache.arch.slowness
    with mounted(root, {"/var/cache/apt/archives": cache.apt_build}):
        _apt_install(root, [*BUILD_PACKAGES, *lgpio, source, f"linux-headers-{kver}"],
                     timeout=900 * slowness)
        _kernel_sources(root, root / "gpio-sim-src")
        shutil.copy2(BUILD_SCRIPT, root / "build-gpio-sim.sh")
        result = in_root(root, f"sh /build-gpio-sim.sh {kver} /build-out '{COMMAND_TEXT}' "
                         "/gpio-sim-src", timeout=600 * slowness)
        log.info("system.gpio_sim_built", kver=kver, modinfo=result.stdout.strip())
        if cache.arch.emulated:
            _build_lgpio_wheel(root, work, timeout=600 * slowness)
    shutil.copytree(root / "build-out", partial)
    partial.rename(out)
    remove_tree(root)
    return _built(out)


def _kernel_sources(root: Path, dest: Path) -> None:
    """The three files build-gpio-sim.sh needs, out of the root's linux-source-X.Y archive
    (by the host's own tar and xz; --occurrence stops reading the 140 MB archive once they
    are out)."""
    archives = sorted((root / "usr" / "src").glob("linux-source-*.tar.xz"))
    if len(archives) != 1:
        raise SystemTestError(f"expected one kernel source archive, found {archives}")
    top = archives[0].name.removesuffix(".tar.xz")
    dest.mkdir(parents=True, exist_ok=True)
    files = [f"{top}/{name}" for name in GPIO_SIM_SOURCES]
    run(["tar", "-xJf", archives[0], "-C", dest, "--occurrence=1",
         "--strip-components=1", *files], timeout=600)


def _build_lgpio_wheel(root: Path, work: Path, timeout: float) -> None:
    """lgpio's wheel for the root's Python and CPU, from its sdist (downloaded on the host),
    into the root's /build-out. PYPI=1: the C library linked in, as in PyPI's wheels."""
    sdists = work / "lgpio-sdist"
    remove_tree(sdists)
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "-d", sdists, LGPIO_WHEEL], timeout=300, env=_clean_env())
    (sdist,) = sdists.glob("lgpio-*.tar.gz")
    shutil.copy2(sdist, root / "lgpio.tar.gz")
    in_root(root, "PYPI=1 python3 -m pip wheel -q --no-deps --no-build-isolation --no-index "
            "-w /build-out /lgpio.tar.gz", timeout=timeout)

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


def host_variables(arch: Arch) -> dict[str, Any]:
    """``vm-host.yml`` with the arch's gpio-sim chip number."""
    import yaml  # PyYAML comes with Ansible, which only this tier needs

    variables: dict[str, Any] = yaml.safe_load(HOST_VARS.read_text())
    variables["edge_agent_config"]["gpio"]["chip"] = arch.gpio_chip
    return variables


def provision(root: Path, cache: Cache, wheel: Path, work: Path) -> None:
    """Apply ``ansible/site.yml`` to the (unpacked) root through the chroot connection, as a
    user would to a Pi, with the Pi-only steps off."""
    boot = root / "boot" / "firmware" / "config.txt"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text(FAKE_BOOT_CONFIG)
    host = {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
            "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": False,
            "edge_agent_wheel": str(wheel)}
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"edge_agents": {"hosts": {"system-test-vm": host}}}))
    host_vars = work / "vm-host.json"
    host_vars.write_text(json.dumps(host_variables(cache.arch)))
    ansible = REPO / "ansible"
    playbook = ansible_playbook()
    env = {**_clean_env(), "ANSIBLE_CONFIG": str(ansible / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(ansible / "roles"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{Path(playbook).parent}{os.pathsep}{os.environ['PATH']}"}
    binds = {"/var/cache/apt/archives": cache.apt_vm, "/root/.cache/pip": cache.pip}
    slowness = cache.arch.slowness
    with mounted(root, binds):
        result = run([playbook, "-i", inventory, "site.yml", "-e", f"@{host_vars}"],
                     cwd=ansible, env=env, timeout=900 * slowness)
        (work / "ansible.log").write_text(result.stdout + result.stderr)
    unprepare(root)


def add_lgpio(root: Path, cache: Cache, built: Built) -> None:
    """lgpio into the provisioned root's venv: PyPI's wheel, or the one the builder made."""
    lgpio = LGPIO_WHEEL
    if built.lgpio_wheel is not None:
        lgpio = f"/tmp/{built.lgpio_wheel.name}"
        shutil.copy2(built.lgpio_wheel, root / lgpio.lstrip("/"))
    with mounted(root, {"/root/.cache/pip": cache.pip}):
        in_root(root, f"{VENV}/bin/pip install -q --disable-pip-version-check {lgpio}",
                timeout=300 * cache.arch.slowness)
    if built.lgpio_wheel is not None:
        (root / lgpio.lstrip("/")).unlink()
    unprepare(root)


def install_test_files(root: Path, kver: str, built: Built, arch: Arch = AMD64) -> None:
    """The test's units, scripts, ALSA wiring and udev rule (from ``vm/``), the gpio-sim
    module and the spoken command; test units enabled, boot-time distractions masked. The
    arch's slowness stretches the steps' waits (steps.sh reads it) and their unit's timeout."""
    shutil.copytree(VM_FILES, root, dirs_exist_ok=True, symlinks=True)
    share = root / "usr" / "local" / "share" / "system-test"
    (share / "slowness").write_text(f"{arch.slowness}\n")
    dropin = root / "etc" / "systemd" / "system" / "system-test.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "slowness.conf").write_text(
        f"[Service]\nTimeoutStartSec={STEPS_TIMEOUT_S * arch.slowness}\n")
    for script in (root / "usr" / "local" / "lib" / "system-test").iterdir():
        script.chmod(0o755)
    extra = root / "lib" / "modules" / kver / "extra"
    extra.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built.gpio_sim, extra / "gpio-sim.ko")
    shutil.copy2(built.command_wav, root / "usr" / "local" / "share" / "system-test"
                 / "command.wav")
    (root / "etc" / "hostname").write_text("system-test-vm\n")
    in_root(root, f"depmod -a {kver} && systemctl enable {' '.join(TEST_UNITS)} -q "
            f"&& systemctl mask -q {' '.join(MASKED_UNITS)}", timeout=120 * arch.slowness)


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


def built_image(out: Path) -> BootFiles:
    """The kernel, initramfs and image the last `make_image` left in ``out``."""
    kernels, initrds = sorted(out.glob("vmlinuz-*")), sorted(out.glob("initrd.img-*"))
    image = out / "vm.img"
    if len(kernels) != 1 or len(initrds) != 1 or not image.is_file():
        raise SystemTestError(f"no built image in {out} (run the build first)")
    return BootFiles(kernels[0], initrds[0], image)
