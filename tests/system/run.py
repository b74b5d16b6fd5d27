"""The system test's driver: build the provisioned image, boot it under qemu, read its logs.

Run it alone (as root, from the checkout) to get the logs without the assertions::

    .venv/bin/python -m tests.system.run            # logs in .cache/system/work/logs

or with the assertions::

    .venv/bin/python -m pytest tests/system -v

Phases, each timed: the base root (cached), the gpio-sim module and spoken command (cached
per kernel, built while the playbook runs), the wheel, the playbook, the test files, the
image, the boot with the test's steps, and reading the logs out of the image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tests.system import image, vm
from tests.system.plumbing import (
    Phases,
    SystemTestError,
    clean_leftovers,
    remove_tree,
    require_tool,
    unpack,
)

log = structlog.get_logger(__name__)

DEFAULT_CACHE = image.REPO / ".cache" / "system"
# TCG boot, the steps (two restarts of the agent, a 20 s watchdog) and poweroff take about
# two minutes on two cores. The steps give up after 360 s inside the VM (system-test.service's
# TimeoutStartSec=) and still write their logs; the VM is killed if it is still up after this.
VM_TIMEOUT_S = 480.0
# (tool, apt package) the host needs; Ansible comes from pip (the venv's ansible package).
HOST_TOOLS = (("qemu-system-x86_64", "qemu-system-x86"), ("debootstrap", "debootstrap"),
              ("mke2fs", "e2fsprogs"), ("debugfs", "e2fsprogs"), ("chroot", "coreutils"),
              ("tar", "tar"), ("xz", "xz-utils"))


@dataclass
class Outcome:
    """Where one run left its evidence, and how long each phase took."""

    work: Path
    logs: Path | None = None
    console: Path | None = None
    phases: Phases = field(default_factory=Phases)
    wall_s: float = 0.0
    error: str | None = None


def check_host() -> None:
    """Raise `SystemTestError` naming what is missing: root, or a tool and its package."""
    if os.geteuid() != 0:
        raise SystemTestError("the system test needs root (debootstrap, chroot, mounts)")
    for name, package in HOST_TOOLS:
        require_tool(name, package)
    image.ansible_playbook()


def run_system_test(cache_dir: Path = DEFAULT_CACHE, *,
                    vm_timeout: float = VM_TIMEOUT_S) -> Outcome:
    """Build, boot and read back; never leaves a mount or a process behind. Failures of the
    build or the boot are kept in ``Outcome.error`` (the logs read so far stay usable)."""
    cache = image.Cache(cache_dir.resolve())
    work = cache.root / "work"
    outcome = Outcome(work)
    started = time.monotonic()
    try:
        _run(cache, work, outcome, vm_timeout)
    except SystemTestError as exc:
        outcome.error = str(exc)
        log.error("system.failed", error=str(exc)[-2000:])
    finally:
        for root in ("vm-root", "builder-root", "base-root"):  # left by a failed build
            remove_tree(work / root)
        outcome.wall_s = round(time.monotonic() - started, 1)
    return outcome


def _run(cache: image.Cache, work: Path, outcome: Outcome, vm_timeout: float) -> None:
    phase = outcome.phases.phase
    check_host()
    clean_leftovers(work)
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("logs", "out"):
        remove_tree(work / stale)
    out = work / "out"
    out.mkdir()
    with phase("base root (minbase + kernel, systemd, udev; cached)"):
        base = image.base_tarball(cache, work)
    kver = image.tarball_kernel_version(base)
    root = work / "vm-root"
    with ThreadPoolExecutor(max_workers=1) as pool:
        def build() -> image.Built:
            with phase("gpio-sim module and spoken command (cached)"):
                return image.build_artifacts(cache, base, kver, work)

        built_later = pool.submit(build)
        with phase("wheel"):
            wheel = image.build_wheel(work / "dist")
        with phase("unpack the base root"):
            unpack(base, root)
        with phase("provision with ansible/site.yml"):
            image.provision(root, cache, wheel, work)
        built = built_later.result()
    with phase("install the test's files"):
        image.install_test_files(root, kver, built)
    with phase("make the disk image"):
        boot = image.make_image(root, out)
        remove_tree(root)
    outcome.console = out / "console.log"
    boot_error: SystemTestError | None = None
    try:
        with phase("boot, test steps, poweroff (qemu TCG)"):
            vm.boot_until_poweroff(boot, outcome.console, vm_timeout)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.system.run [--cache DIR]``: exit 0 when the VM ran its steps."""
    parser = argparse.ArgumentParser(prog="python -m tests.system.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="cache and work folder (default: %(default)s)")
    parser.add_argument("--vm-timeout", type=float, default=VM_TIMEOUT_S,
                        help="kill the VM after this many seconds (default: %(default)s)")
    parser.add_argument("--clean", action="store_true",
                        help="empty this cache first (the shared minbase tarball stays)")
    args = parser.parse_args(argv)
    from agent.logs import configure_logging

    configure_logging("info", "console")
    if args.clean:
        remove_tree(args.cache)
    outcome = run_system_test(args.cache, vm_timeout=args.vm_timeout)
    log.info("system.timings", phases=outcome.phases.seconds, wall_s=outcome.wall_s)
    log.info("system.logs", logs=str(outcome.logs), console=str(outcome.console))
    if outcome.error is None and outcome.logs is not None:
        shutil.copy2(outcome.console or os.devnull, outcome.logs / "console.log")
    return 0 if outcome.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
