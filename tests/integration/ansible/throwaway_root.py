"""A throwaway Debian bookworm root to apply the playbook to through the chroot connection.

The base root (debootstrap minbase plus ca-certificates, 25-35 s) is made once and kept as a
tarball in the cache folder (``.cache/provision/`` in the checkout); every run restores it
into a fresh folder in a few seconds. While the play runs, /proc, /sys, /dev and /dev/pts
are mounted into the root, plus any cache folders the caller names (the tests keep apt's
downloaded packages). `mounted` always takes every mount down again, and `remove_root` refuses
to delete a root that still has anything mounted in it (a bind-mounted /dev would go too).

Also a command line, to build the cache ahead of a test run or to clean up after one::

    python3 tests/integration/ansible/throwaway_root.py build-cache .cache/provision
    python3 tests/integration/ansible/throwaway_root.py remove ROOT
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

SUITE = "bookworm"
BASE_TARBALL = f"{SUITE}-minbase.tar"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
# A Raspberry Pi OS Bookworm config.txt, ending in a conditional section: a line appended
# without an [all] header would apply to Compute Module 5 boards only.
FAKE_BOOT_CONFIG = """\
# For more options and information see
# http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
disable_fw_kms_setup=1
arm_64bit=1
disable_overscan=1
arm_boost=1

[cm4]
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host
"""
# Packages installed in a chroot must not start services on the host's kernel.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


class RootError(RuntimeError):
    """The root could not be built, mounted, or cleaned up."""


def run(args: list[str | Path], *, timeout: float = 600, env: Mapping[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run a command; raise `RootError` with its output when it fails."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            timeout=timeout, check=False, env=env)
    if result.returncode != 0:
        raise RootError(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The host's Debian mirror (the first ``.../debian`` URI in its apt sources)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    pattern = re.compile(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s", re.M)
    for file in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            match = pattern.search(file.read_text() + "\n")
            if match:
                return match.group(1)
    return DEFAULT_MIRROR


def ensure_base_tarball(cache: Path) -> Path:
    """The cached base root tarball, debootstrapped first if the cache has none."""
    tarball = cache / BASE_TARBALL
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    build = cache / "base-root.tmp"
    if build.exists():
        remove_root(build)
    started = time.monotonic()
    run(["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, build,
         debian_mirror()], timeout=900)
    partial = tarball.with_suffix(".tar.partial")
    run(["tar", "--one-file-system", "--numeric-owner", "-C", build, "-cf", partial, "."])
    partial.rename(tarball)
    remove_root(build)
    log.info("root.base_built", tarball=str(tarball), seconds=round(time.monotonic() - started))
    return tarball


def restore_root(tarball: Path, root: Path) -> None:
    """Unpack the base root into ``root`` (a new or empty folder)."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise RootError(f"{root} is not empty")
    run(["tar", "--numeric-owner", "-C", root, "-xf", tarball])


def prepare_root(root: Path, boot_config: str | None = FAKE_BOOT_CONFIG) -> None:
    """Make the restored root usable offline from the host: DNS, the host's extra CA
    certificates (outbound TLS may be re-signed by a local CA), no service starts, and (unless
    ``boot_config`` is None) a fake boot config for the play to edit. Needs `mounted` around
    it."""
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(Path("/etc/resolv.conf").read_text())
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    if HOST_CA_DIR.is_dir() and any(HOST_CA_DIR.iterdir()):
        shutil.copytree(HOST_CA_DIR, root / HOST_CA_DIR.relative_to("/"), dirs_exist_ok=True)
        if (root / "usr" / "sbin" / "update-ca-certificates").exists():
            run(["chroot", root, "update-ca-certificates"])
    if boot_config is None:
        return
    boot = root / "boot" / "firmware" / "config.txt"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text(boot_config)


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first."""
    root = root.resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def processes_in(root: Path) -> list[int]:
    """Processes whose root directory is ``root`` (left over from the chroot)."""
    root = root.resolve()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "root")) == root:
                    pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def mounted(root: Path, binds: Mapping[str, Path] | None = None) -> Iterator[Path]:
    """/proc, /sys, /dev, /dev/pts and ``binds`` (path in root -> host folder) mounted into
    ``root`` for the duration; afterwards every process left in the root is ended and every
    mount taken down, whatever happened inside."""
    root = root.resolve()
    plan: list[tuple[list[str | Path], Path]] = [
        (["mount", "-t", "proc", "proc"], root / "proc"),
        (["mount", "-t", "sysfs", "sysfs"], root / "sys"),
        (["mount", "--bind", "/dev"], root / "dev"),
        (["mount", "--bind", "/dev/pts"], root / "dev" / "pts"),
    ]
    for inside, host in (binds or {}).items():
        host.mkdir(parents=True, exist_ok=True)
        plan.append((["mount", "--bind", host], root / inside.lstrip("/")))
    done: list[Path] = []
    try:
        for command, point in plan:
            point.mkdir(parents=True, exist_ok=True)
            run([*command, point])
            done.append(point)
        yield root
    finally:
        end_processes(root)
        errors = []
        for point in reversed(done):
            result = subprocess.run(["umount", point], capture_output=True, text=True,
                                    timeout=60, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=60,
                               check=False)
                errors.append(f"{point}: {result.stderr.strip()}")
        left = mounts_under(root)
        if left:
            raise RootError(f"still mounted under {root}: {left} ({errors})")


def end_processes(root: Path) -> None:
    """End every process whose root is ``root``: SIGTERM, then SIGKILL, 5 s each."""
    pids = processes_in(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = processes_in(root)
        if not pids:
            return
    raise RootError(f"processes still running in {root}: {pids}")


def remove_root(root: Path) -> None:
    """Delete a root, but never one with anything still mounted inside it."""
    if not root.exists():
        return
    left = mounts_under(root)
    if left:
        raise RootError(f"not removing {root}: still mounted: {left}")
    shutil.rmtree(root)


def main(argv: list[str] | None = None) -> int:
    """``build-cache CACHE`` or ``remove ROOT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build-cache").add_argument("cache", type=Path)
    sub.add_parser("remove").add_argument("root", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build-cache":
            sys.stdout.write(f"{ensure_base_tarball(args.cache)}\n")
        else:
            remove_root(args.root)
    except RootError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
