"""The system test's driver: build the provisioned image, boot it under qemu, read its logs.

Run it alone (as root, from the checkout) to get the logs without the assertions::

    .venv/bin/python -m tests.system.run            # logs in .cache/system/work/logs
    .venv/bin/python -m tests.system.run --arch arm64   # .cache/system-arm64/work/logs

or with the assertions::

    .venv/bin/python -m pytest tests/system -v
    .venv/bin/python -m pytest tests/system -v --system-arch arm64

``--build-only`` stops once the disk image is made, and ``--prebuilt`` (``--system-prebuilt``
for pytest) boots the image the last build left, so the build can run in the background of
other tests and the boot, which needs the CPU at real time, after them.

Phases, each timed: the base root (cached), the gpio-sim module and spoken command (and on
arm64 lgpio's wheel; cached per kernel, built while the playbook runs), the wheel, the
playbook, lgpio into the venv, the test files, the image, the boot with the test's steps, and
reading the logs out of the image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tests.system import image, vm
from tests.system.arch import AMD64, ARCHES, Arch
from tests.system.plumbing import (
    Phases,
    SystemTestError,
    clean_leftovers,
    qemu_user,
    remove_tree,
    require_tool,
    unpack,
)

log = structlog.get_logger(__name__)

# TCG boot, the steps (two restarts of the agent, a 20 s watchdog) and poweroff take about
# two minutes on two cores for the x86 VM. The steps give up after 360 s inside the VM
# (system-test.service's TimeoutStartSec=, stretched by the arch's slowness) and still write
# their logs; the VM is killed if it is still up 120 s (stretched likewise) after that.
BOOT_ALLOWANCE_S = 120
# (tool, apt package) the host needs; Ansible comes from pip (the venv's ansible package).
HOST_TOOLS = (("debootstrap", "debootstrap"),
              ("mke2fs", "e2fsprogs"), ("debugfs", "e2fsprogs"), ("chroot", "coreutils"),
              ("tar", "tar"), ("xz", "xz-utils"))
# What an emulated root needs besides: mmdebstrap and qemu-user.
FOREIGN_TOOLS = (("mmdebstrap", "mmdebstrap"), ("qemu-aarch64-static", "qemu-user-static"))


def vm_timeout(arch: Arch) -> float:
    """How long the VM may run before it is killed."""
    return float((image.STEPS_TIMEOUT_S + BOOT_ALLOWANCE_S) * arch.slowness)


@dataclass
class Outcome:
    """Where one run left its evidence, and how long each phase took."""

    work: Path
    logs: Path | None = None
    console: Path | None = None
    phases: Phases = field(default_factory=Phases)
    wall_s: float = 0.0
    error: str | None = None


def check_host(arch: Arch = AMD64) -> None:
    """Raise `SystemTestError` naming what is missing: root, or a tool and its package."""
    if os.geteuid() != 0:
        raise SystemTestError("the system test needs root (debootstrap, chroot, mounts)")
    tools = [(arch.qemu[0], arch.qemu_package), *HOST_TOOLS]
    for name, package in tools + list(FOREIGN_TOOLS if arch.emulated else ()):
        require_tool(name, package)
    image.ansible_playbook()


def run_system_test(cache_dir: Path | None = None, *, arch: Arch = AMD64,
                    vm_timeout_s: float | None = None, build: bool = True,
                    boot: bool = True) -> Outcome:
    """Build, boot and read back; never leaves a mount or a process behind. Failures of the
    build or the boot are kept in ``Outcome.error`` (the logs read so far stay usable).
    ``build=False`` boots the image the last build left; ``boot=False`` only builds it."""
    cache = image.Cache((cache_dir or arch.default_cache).resolve(), arch)
    work = cache.work
    outcome = Outcome(work)
    started = time.monotonic()
    if arch.emulated:  # what qemu-user emulates for every command in the root (its children)
        os.environ.update(dict(arch.chroot_env))
    try:
        _run(cache, outcome, vm_timeout_s or vm_timeout(arch), build=build, boot=boot)
    except SystemTestError as exc:
        outcome.error = str(exc)
        log.error("system.failed", error=str(exc)[-2000:])
    finally:
        for root in ("vm-root", "builder-root", "base-root"):  # left by a failed build
            remove_tree(work / root)
        outcome.wall_s = round(time.monotonic() - started, 1)
    return outcome


def _run(cache: image.Cache, outcome: Outcome, vm_timeout_s: float, *, build: bool,
         boot: bool) -> None:
    work, arch = cache.work, cache.arch
    check_host(arch)
    if arch.emulated:
        qemu_user()
    clean_leftovers(work)
    work.mkdir(parents=True, exist_ok=True)
    remove_tree(work / "logs")
    out = work / "out"
    if build:
        remove_tree(out)
        out.mkdir()
        files = _build(cache, outcome, out)
    else:
        files = image.built_image(out)
    if boot:
        _boot(arch, files, outcome, vm_timeout_s)


def _build(cache: image.Cache, outcome: Outcome, out: Path) -> image.BootFiles:
    phase, work = outcome.phases.phase, cache.work
    with phase(f"base root ({cache.arch.suite} {cache.arch.name}: kernel, systemd, udev; "
               "cached)"):
        base = image.base_tarball(cache, work)
    kver = image.tarball_kernel_version(base)
    root = work / "vm-root"
    with ThreadPoolExecutor(max_workers=1) as pool:
        def build() -> image.Built:
            extra = ", lgpio wheel" if cache.arch.emulated else ""
            with phase(f"gpio-sim module, spoken command{extra} (cached)"):
                return image.build_artifacts(cache, base, kver, work)

        built_later = pool.submit(build)
        with phase("wheel"):
            wheel = image.build_wheel(work / "dist")
        with phase("unpack the base root"):
            unpack(base, root)
        with phase("provision with ansible/site.yml"):
            image.provision(root, cache, wheel, work)
        built = built_later.result()
    with phase("lgpio into the venv"):
        image.add_lgpio(root, cache, built)
    with phase("install the test's files"):
        image.install_test_files(root, kver, built, cache.arch)
    with phase("make the disk image"):
        files = image.make_image(root, out)
        remove_tree(root)
    return files


def _boot(arch: Arch, boot: image.BootFiles, outcome: Outcome, vm_timeout_s: float) -> None:
    phase, work = outcome.phases.phase, outcome.work
    outcome.console = boot.image.parent / "console.log"
    boot_error: SystemTestError | None = None
    try:
        with phase(f"boot, test steps, poweroff (qemu TCG, {arch.name})"):
            vm.boot_until_poweroff(boot, outcome.console, vm_timeout_s, arch)
    except SystemTestError as exc:
        boot_error = exc  # whatever the VM managed to write is still worth reading
    with phase("read the logs out of the image"):
        try:
            outcome.logs = vm.read_logs(boot.image, work / "logs")
        except SystemTestError as exc:
            if boot_error is None:
                raise
            log.warning("system.no_logs", error=str(exc))
    if boot_error is not None:
        raise boot_error


def _stop(_signum: int, _frame: object) -> None:
    # SIGTERM as KeyboardInterrupt: run_system_test takes every mount and root down on the way
    # out (tests/run.sh stops a background build so).
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.system.run [--cache DIR]``: exit 0 when the VM ran its steps."""
    parser = argparse.ArgumentParser(prog="python -m tests.system.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHES), default="amd64",
                        help="the VM's architecture (default: %(default)s)")
    parser.add_argument("--cache", type=Path,
                        help="cache and work folder (default: .cache/system, or "
                        ".cache/system-ARCH but for amd64)")
    parser.add_argument("--vm-timeout", type=float,
                        help="kill the VM after this many seconds (default: by the arch)")
    parser.add_argument("--clean", action="store_true",
                        help="empty this cache first (the shared minbase tarball stays)")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--build-only", action="store_true", help="make the image, no boot")
    stage.add_argument("--prebuilt", action="store_true",
                       help="boot the image the last --build-only left")
    args = parser.parse_args(argv)
    from agent.logs import configure_logging

    configure_logging("info", "console")
    arch = ARCHES[args.arch]
    cache = args.cache or arch.default_cache
    if args.clean:
        remove_tree(cache)
    signal.signal(signal.SIGTERM, _stop)
    try:
        outcome = run_system_test(cache, arch=arch, vm_timeout_s=args.vm_timeout,
                                  build=not args.prebuilt, boot=not args.build_only)
    except KeyboardInterrupt:
        log.error("system.stopped")
        return 128 + signal.SIGTERM
    log.info("system.timings", phases=outcome.phases.seconds, wall_s=outcome.wall_s)
    log.info("system.logs", logs=str(outcome.logs), console=str(outcome.console))
    if outcome.error is None and outcome.logs is not None and outcome.console is not None:
        shutil.copy2(outcome.console or os.devnull, outcome.logs / "console.log")
    return 0 if outcome.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
