"""The arm64 install-and-test tier: the agent installed on aarch64 as the playbook installs it
on a Pi, and the tests of `tests/arm64/subset.py` run there under qemu-user.

* The root: Debian ``--suite`` (trixie: Python 3.13, bookworm: 3.11) for arm64, made with
  mmdebstrap through qemu-user's binfmt_misc handler, holding only the essential packages and
  the Debian packages the playbook's role installs for the agent (python3-venv, python3-pyaudio,
  python3-numpy, libportaudio2, alsa-utils, ca-certificates, python3-packaging). No compiler:
  anything pip would have to build fails. Kept as a tarball in ``.cache/arm64`` per suite and
  package list, with apt's downloads beside it.
* The install: what ``ansible/roles/edge_agent/tasks/install.yml`` does, a venv made with
  ``python3 -m venv --system-site-packages`` and ``pip install`` of this checkout's wheel
  (PyAudio and numpy come from apt, the rest as aarch64 wheels from the index).
* The tests: the subset's paths, from a copy of tests/ (the agent itself comes only from the
  installed wheel), run by the venv's Python under qemu-user, with pytest and the test-only
  packages added to the venv after the install has been checked.

Run it (as root, from the checkout)::

    .venv/bin/python -m tests.arm64.tier                  # trixie
    .venv/bin/python -m tests.arm64.tier --suite bookworm

binfmt_misc is mounted and qemu-aarch64 registered only for the run when they were not
already, and left as found afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.arm64 import subset
from tests.system.image import build_wheel
from tests.system.plumbing import (
    SystemTestError,
    in_root,
    mounted,
    remove_tree,
    require_tool,
    run,
    unpack,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / ".cache" / "arm64"
MIRROR = "http://deb.debian.org/debian"
SUITES = {"trixie": "3.13", "bookworm": "3.11"}
# The role's edge_agent_packages that the agent needs to run (systemd and procps serve the
# unit, which this tier does not start).
PACKAGES = ("python3-venv", "python3-pyaudio", "python3-numpy", "libportaudio2", "alsa-utils",
            "ca-certificates", "python3-packaging")
VENV = "/opt/edge-agent/venv"
SRC = "/src"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
# (tool, apt package) the host needs.
HOST_TOOLS = (("mmdebstrap", "mmdebstrap"), ("arch-test", "arch-test"),
              ("qemu-aarch64-static", "qemu-user-static"), ("chroot", "coreutils"),
              ("tar", "tar"))
# Under qemu-user the subset takes five to ten times its x86 time (about 90 s there).
TEST_TIMEOUT_S = 1800.0


@dataclass
class Timings:
    """Wall and CPU seconds (this process and its children) of each phase."""

    rows: dict[str, tuple[float, float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall, cpu = time.monotonic(), _cpu_s()
        print(f"== arm64: {name}", flush=True)
        try:
            yield
        finally:
            self.rows[name] = (round(time.monotonic() - wall, 1), round(_cpu_s() - cpu, 1))

    def table(self) -> str:
        width = max([len(n) for n in self.rows] + [5])
        lines = [f"{'phase':<{width}}  {'wall s':>8}  {'CPU s':>8}"]
        lines += [f"{n:<{width}}  {w:8.1f}  {c:8.1f}" for n, (w, c) in self.rows.items()]
        total_w = sum(w for w, _ in self.rows.values())
        total_c = sum(c for _, c in self.rows.values())
        lines.append(f"{'total':<{width}}  {total_w:8.1f}  {total_c:8.1f}")
        return "\n".join(lines)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def check_host() -> None:
    if os.geteuid() != 0:
        raise SystemTestError("the arm64 tier needs root (binfmt_misc, mmdebstrap, chroot)")
    for name, package in HOST_TOOLS:
        require_tool(name, package)
    if not QEMU_BINFMT_CONF.is_file():
        raise SystemTestError(f"{QEMU_BINFMT_CONF} is missing: apt-get install qemu-user-static")


@contextlib.contextmanager
def qemu_user() -> Iterator[None]:
    """binfmt_misc mounted and qemu-aarch64 registered for the duration; whatever this
    mounted or registered is taken away again afterwards."""
    mounted_here = False
    if not (BINFMT / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT], timeout=30)
        mounted_here = True
    entry = BINFMT / "qemu-aarch64"
    registered_here = False
    try:
        if not entry.exists():
            rule = next(line for line in QEMU_BINFMT_CONF.read_text().splitlines()
                        if line.startswith(":"))
            (BINFMT / "register").write_text(rule)
            registered_here = True
        yield
    finally:
        if registered_here and entry.exists():
            entry.write_text("-1")
        if mounted_here:
            run(["umount", BINFMT], timeout=30)


def root_tarball(cache: Path, suite: str) -> Path:
    """The suite's arm64 root, made with mmdebstrap when the cache has none."""
    key = hashlib.sha256("\0".join((suite, *PACKAGES)).encode()).hexdigest()[:12]
    tarball = cache / f"{suite}-arm64-{key}.tar"
    if tarball.is_file():
        return tarball
    apt = cache / "apt" / suite
    apt.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(tarball.name + ".partial")
    # essential + the packages: no apt, no init, no compiler. apt's downloads are synced in
    # and out of the cache so a rebuild (another package list) downloads nothing twice.
    run(["mmdebstrap", "--variant=essential", "--architectures=arm64", "--format=tar",
         f"--include={','.join(PACKAGES)}", "--skip=cleanup/apt/cache",
         '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
         f"--setup-hook=sync-in {apt} /var/cache/apt/archives/",
         f"--customize-hook=sync-out /var/cache/apt/archives {apt}",
         "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb",
         suite, partial, MIRROR], timeout=2400)
    partial.rename(tarball)
    return tarball


def install_agent(root: Path, wheel: Path, pip_cache: Path) -> str:
    """The playbook's install step in the root; returns the installed packages (pip freeze)."""
    dist = root / "opt" / "edge-agent" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dist / wheel.name)
    with mounted(root, {"/root/.cache/pip": pip_cache}):
        in_root(root, f"python3 -m venv --system-site-packages {VENV} && "
                f"{VENV}/bin/pip install -q --disable-pip-version-check "
                f"/opt/edge-agent/dist/{wheel.name}", timeout=1200)
        # The agent must import with what the device has: PyAudio from Debian, no compiler.
        in_root(root, f"{VENV}/bin/python -c 'import agent.cli, pyaudio, numpy, soxr, "
                "simplejpeg, uvloop, orjson, pybase64, regex, pymicro_wakeword'", timeout=300)
        return in_root(root, f"{VENV}/bin/pip freeze --all", timeout=300).stdout


def run_subset(root: Path, pip_cache: Path, pytest_args: list[str]) -> int:
    """The subset's tests in the root; returns pytest's exit status (its output streams)."""
    src = root / SRC.lstrip("/")
    remove_tree(src)
    src.mkdir(parents=True)
    shutil.copytree(REPO / "tests", src / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "js"))
    for name in ("pyproject.toml", "agent.example.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    requirements = " ".join(f"'{r}'" for r in subset.TEST_REQUIREMENTS)
    with mounted(root, {"/root/.cache/pip": pip_cache}):
        in_root(root, f"{VENV}/bin/pip install -q --disable-pip-version-check "
                f"--only-binary=:all: {requirements}", timeout=900)
        args = " ".join(f"'{a}'" for a in [*subset.paths(), *pytest_args])
        # python -m puts /src on sys.path for tests.support; the agent comes from the venv.
        script = (f"cd {SRC} && exec {VENV}/bin/python -m pytest -q -p no:cacheprovider "
                  f"-o addopts=--import-mode=importlib {args}")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LC_ALL": "C.UTF-8", "HOME": "/root",
               "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        status = os.spawnvpe(os.P_WAIT, "timeout", [
            "timeout", "--kill-after=10", f"{TEST_TIMEOUT_S:.0f}",
            "chroot", str(root), "/bin/sh", "-c", script], env)
        print(f"== arm64: pytest took {time.monotonic() - started:.0f} s", flush=True)
    return status


def run_tier(suite: str, cache: Path, pytest_args: list[str]) -> int:
    check_host()
    timings = Timings()
    work = cache / "work"
    root = work / f"{suite}-root"
    status = 1
    try:
        with qemu_user():
            with timings.phase(f"arm64 {suite} root (mmdebstrap; cached)"):
                tarball = root_tarball(cache, suite)
            with timings.phase("wheel"):
                wheel = build_wheel(work / "dist")
            with timings.phase("unpack the root"):
                unpack(tarball, root)
            with timings.phase("install the agent as the playbook does"):
                freeze = install_agent(root, wheel, cache / "pip")
            print("== arm64: installed\n" + freeze, flush=True)
            pyver = in_root(root, "python3 -c 'import sys, platform; "
                            "print(platform.machine(), sys.version.split()[0])'",
                            timeout=120).stdout.strip()
            print(f"== arm64: {suite}: {pyver}", flush=True)
            with timings.phase(f"tests under qemu-user ({pyver})"):
                status = run_subset(root, cache / "pip", pytest_args)
    finally:
        remove_tree(root)
        print("== arm64: seconds per phase (wall, and CPU of this run and its children)")
        print(timings.table(), flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.arm64.tier",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="trixie")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args, pytest_args = parser.parse_known_args(argv)
    try:
        return run_tier(args.suite, args.cache.resolve(), pytest_args)
    except SystemTestError as exc:
        print(f"arm64 tier failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
