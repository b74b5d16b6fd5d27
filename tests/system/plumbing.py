"""Host-side plumbing of the system test: commands with timeouts, chroots with their mounts,
and per-phase timings.

Every command has a timeout, every mount made here is taken down again by the context
manager that made it (processes left running in the chroot are ended first), and a root is
never deleted while anything is still mounted in it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import structlog

log = structlog.get_logger(__name__)

Arg = str | Path


class SystemTestError(RuntimeError):
    """A step of the system test could not be carried out."""


def run(args: Sequence[Arg], *, timeout: float, cwd: Path | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise `SystemTestError` with its output tail when it fails
    or outlives ``timeout`` (its whole process group is killed then)."""
    argv = [str(a) for a in args]
    with subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise SystemTestError(f"{' '.join(argv)} timed out after {timeout:.0f} s:\n"
                                  f"{_tail(out)}\n{_tail(err)}") from None
    if proc.returncode != 0:
        raise SystemTestError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                              f"{_tail(out)}\n{_tail(err)}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tail(text: str | None, size: int = 4000) -> str:
    return (text or "")[-size:]


def require_tool(name: str, package: str) -> str:
    """The path of a host tool, or an error naming the package that brings it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise SystemTestError(f"{name} is missing: apt-get install {package}")
    return found


# -- chroots ------------------------------------------------------------------------------------
# The provisioning tier's throwaway_root.py (loaded by path: it is also a script) owns the
# chroot mounts; this tier adds its timeouts' error type on top.

THROWAWAY_ROOT = Path(__file__).resolve().parents[1] / "integration/ansible/throwaway_root.py"


def throwaway_root() -> ModuleType:
    """tests/integration/ansible/throwaway_root.py, loaded once."""
    name = "edge_agent_throwaway_root"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, THROWAWAY_ROOT)
        if spec is None or spec.loader is None:
            raise SystemTestError(f"cannot load {THROWAWAY_ROOT}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first."""
    found: list[Path] = throwaway_root().mounts_under(root)
    return found


@contextlib.contextmanager
def _root_errors() -> Iterator[ModuleType]:
    """throwaway_root, with its RootError raised as this tier's SystemTestError."""
    chroot = throwaway_root()
    try:
        yield chroot
    except chroot.RootError as exc:
        raise SystemTestError(str(exc)) from exc


@contextlib.contextmanager
def mounted(root: Path, binds: Mapping[str, Path] | None = None) -> Iterator[Path]:
    """/proc, /sys, /dev, /dev/pts and ``binds`` (path inside -> host folder) mounted into
    ``root`` for the duration, with the host's DNS and extra CA certificates (outbound TLS may
    be re-signed by a local CA) and no service starts. Afterwards every process left in the
    root is ended and every mount taken down, whatever happened inside."""
    with _root_errors() as chroot, chroot.mounted(root, binds) as inside:
        chroot.prepare_root(inside, boot_config=None)
        yield inside


def unprepare(root: Path) -> None:
    """Undo what the chroot needed but the booted system must not have: the host's DNS
    settings and the ban on starting services."""
    (root / "usr" / "sbin" / "policy-rc.d").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)


def in_root(root: Path, script: str, *, timeout: float,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a shell script inside the (mounted) root."""
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "HOME": "/root"}
    if "QEMU_CPU" in os.environ:  # a foreign root: the CPU qemu-user emulates, kept
        base["QEMU_CPU"] = os.environ["QEMU_CPU"]
    return run(["chroot", root, "/bin/sh", "-ec", script], timeout=timeout,
               env={**base, **(env or {})})


def _end_processes(root: Path) -> None:
    with _root_errors() as chroot:
        chroot.end_processes(root)


def clean_leftovers(folder: Path) -> None:
    """End the processes still running in any root under ``folder`` and take down every
    mount under it: what a run that was killed outright (no finally) left behind."""
    if not folder.is_dir():
        return
    for root in {p for p in folder.iterdir() if p.is_dir()}:
        _end_processes(root)
    for point in mounts_under(folder):
        run(["umount", "--lazy", point], timeout=60)
        log.warning("system.leftover_unmounted", mount=str(point))


def remove_tree(path: Path) -> None:
    """Delete a folder, but never one with anything still mounted inside it."""
    with _root_errors() as chroot:
        chroot.remove_root(path)


def unpack(tarball: Path, root: Path) -> None:
    """Unpack a root tarball into ``root`` (made anew)."""
    remove_tree(root)
    root.mkdir(parents=True)
    run(["tar", "--numeric-owner", "-C", root, "-xf", tarball], timeout=300)


def pack(root: Path, tarball: Path) -> None:
    """Pack a root (never while anything is mounted in it) into ``tarball`` atomically."""
    if mounts_under(root):
        raise SystemTestError(f"not packing {root}: something is mounted in it")
    partial = tarball.with_name(tarball.name + ".partial")
    run(["tar", "--one-file-system", "--numeric-owner", "-C", root, "-cf", partial, "."],
        timeout=300)
    partial.rename(tarball)


# -- foreign roots (qemu-user) -------------------------------------------------------------------

DEBIAN_MIRROR = "http://deb.debian.org/debian"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")


def qemu_user() -> None:
    """binfmt_misc mounted and qemu-aarch64 registered, if they were not already.

    Both are left in place afterwards (as installing qemu-user-static with binfmt-support
    would leave them): another user of qemu-aarch64 may be running beside this one, and
    unregistering the handler under it would break it mid-run."""
    if not QEMU_BINFMT_CONF.is_file():
        raise SystemTestError(f"{QEMU_BINFMT_CONF} is missing: apt-get install qemu-user-static")
    if not (BINFMT / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT], timeout=30)
    if not (BINFMT / "qemu-aarch64").exists():
        rule = next(line for line in QEMU_BINFMT_CONF.read_text().splitlines()
                    if line.startswith(":"))
        with contextlib.suppress(FileExistsError):  # registered beside us meanwhile
            (BINFMT / "register").write_text(rule)


def mmdebstrap(tarball: Path, *, suite: str, arch: str, variant: str,
               packages: Sequence[str], apt_cache: Path, hooks: Sequence[str] = (),
               env: Mapping[str, str] | None = None, timeout: float = 2400) -> None:
    """A Debian root as a tarball, made with mmdebstrap (a foreign ``arch`` runs through
    qemu-user), without recommended packages (mmdebstrap's default). apt's downloads are
    synced in from and out to ``apt_cache``: another root of the suite downloads nothing
    twice."""
    apt_cache.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(tarball.name + ".partial")
    run(["mmdebstrap", f"--variant={variant}", f"--architectures={arch}", "--format=tar",
         f"--include={','.join(packages)}", "--skip=cleanup/apt/cache",
         '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
         f"--setup-hook=sync-in {apt_cache} /var/cache/apt/archives/",
         *hooks,
         f"--customize-hook=sync-out /var/cache/apt/archives {apt_cache}",
         "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb",
         suite, partial, DEBIAN_MIRROR], timeout=timeout, env={**os.environ, **(env or {})})
    partial.rename(tarball)


# -- timings ------------------------------------------------------------------------------------


@dataclass
class Phases:
    """Wall time of each phase, logged as it ends (``system.phase``) and kept for a table."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        log.info("system.phase_started", phase=name)
        try:
            yield
        finally:
            took = round(time.monotonic() - started, 1)
            self.seconds[name] = round(self.seconds.get(name, 0.0) + took, 1)
            log.info("system.phase", phase=name, seconds=took)

    def table(self) -> str:
        """The phases and their seconds, one per line (phases may overlap: see wall time)."""
        width = max([len(n) for n in self.seconds] + [5])
        return "\n".join(f"{name:<{width}}  {secs:7.1f} s" for name, secs in self.seconds.items())
