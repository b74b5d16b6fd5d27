"""Host-side plumbing of the system test: commands with timeouts, chroots with their mounts,
and per-phase timings.

Every command has a timeout, every mount made here is taken down again by the context
manager that made it (processes left running in the chroot are ended first), and a root is
never deleted while anything is still mounted in it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

Arg = str | Path

# Packages installed in a chroot must not start services on the host's kernel.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


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
    """Processes whose root directory is ``root``."""
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
    """/proc, /sys, /dev, /dev/pts and ``binds`` (path inside -> host folder) mounted into
    ``root`` for the duration, with the host's DNS and extra CA certificates (outbound TLS may
    be re-signed by a local CA) and no service starts. Afterwards every process left in the
    root is ended and every mount taken down, whatever happened inside."""
    root = root.resolve()
    plan: list[tuple[list[Arg], Path]] = [
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
            run([*command, point], timeout=60)
            done.append(point)
        _prepare(root)
        yield root
    finally:
        _end_processes(root)
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
            raise SystemTestError(f"still mounted under {root}: {left} ({errors})")


def _prepare(root: Path) -> None:
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(Path("/etc/resolv.conf").read_text())
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    if HOST_CA_DIR.is_dir() and any(HOST_CA_DIR.iterdir()):
        shutil.copytree(HOST_CA_DIR, root / HOST_CA_DIR.relative_to("/"), dirs_exist_ok=True)
        if (root / "usr" / "sbin" / "update-ca-certificates").exists():
            run(["chroot", root, "update-ca-certificates"], timeout=120)


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
    return run(["chroot", root, "/bin/sh", "-ec", script], timeout=timeout,
               env={**base, **(env or {})})


def _end_processes(root: Path) -> None:
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
    raise SystemTestError(f"processes still running in {root}: {pids}")


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
    if not path.exists():
        return
    left = mounts_under(path)
    if left:
        raise SystemTestError(f"not removing {path}: still mounted: {left}")
    shutil.rmtree(path)


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
