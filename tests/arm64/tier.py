"""The arm64 install-and-test tier: the agent installed on aarch64 as the playbook installs it
on a Pi, and the tests of `tests/arm64/subset.py` run there under qemu-user.

* The root: Debian ``--suite`` (trixie: Python 3.13, bookworm: 3.11) for arm64, made with
  mmdebstrap through qemu-user's binfmt_misc handler, holding only the essential packages and
  the Debian packages the playbook's role installs for the agent (`PACKAGES`). No compiler:
  anything pip would have to build fails. Debian's byte-compiling and trust-store building are
  skipped while it is made (`emulation_shortcut_hooks`). Kept as a tarball in ``.cache/arm64``
  per suite, recipe and package list, with apt's downloads beside it.
* The install: what ``ansible/roles/edge_agent/tasks/install.yml`` does, a venv that sees the
  system site-packages and ``pip install`` of this checkout's wheel (PyAudio and numpy come
  from apt, the rest as aarch64 wheels from the index), less the byte-compiling
  (`install_agent`).
* The tests: the subset's paths, from a copy of tests/ (the agent itself comes only from the
  installed wheel), run by the venv's Python under qemu-user, with pytest and the test-only
  packages added to the venv after the install has been checked.

Run it (as root, from the checkout)::

    .venv/bin/python -m tests.arm64.tier                  # trixie
    .venv/bin/python -m tests.arm64.tier --suite bookworm

binfmt_misc is mounted and qemu-aarch64 registered when they were not already, and left so.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
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
    mmdebstrap,
    qemu_user,
    remove_tree,
    require_tool,
    throwaway_root,
    unpack,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / ".cache" / "arm64"
SUITES = {"trixie": "3.13", "bookworm": "3.11"}
# The role's edge_agent_packages that the agent needs to run. Left out: systemd and procps
# (they serve the unit, which this tier does not start). ca-certificates comes in anyway
# (python3-pip-whl depends on it), with its trust store left unbuilt (see
# `emulation_shortcut_hooks`) and the host's bundle put in its place.
PACKAGES = ("python3-venv", "python3-pyaudio", "python3-numpy", "libportaudio2", "alsa-utils",
            "python3-packaging")
# Bumped when the way the root is made changes, so a cached root of the old recipe is not used.
ROOT_RECIPE = "3"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where Debian's update-ca-certificates writes the bundle (and Debian's pip looks for it): the
# host's is put there, Debian's set plus any local CA the host trusts.
ROOT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The CPU qemu-user emulates: the Cortex-A53 of a Zero 2 W (a Pi 4's A72 has the same ARMv8.0
# instruction set), so code needing anything newer fails here as on the oldest supported board.
# qemu's default, "max", also has SVE, which glibc 2.41 (trixie) then picks for memcpy and the
# like: emulated, that made everything in a trixie root over ten times slower.
QEMU_ENV = {"QEMU_CPU": "cortex-a53"}
VENV = "/opt/edge-agent/venv"
SRC = "/src"
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


def emulated(root: Path, script: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """A shell script run in the (mounted) root on the emulated CPU."""
    return in_root(root, script, timeout=timeout, env=QEMU_ENV)


@contextlib.contextmanager
def mounted(root: Path, binds: dict[str, Path]) -> Iterator[None]:
    """/proc, /sys, /dev, /dev/pts and ``binds`` mounted into ``root`` for the duration, with
    the host's DNS; afterwards every process left in the root is ended and every mount taken
    down. (The system tier's `mounted` also rebuilds the root's trust store with the host's
    CA: over half a minute under emulation, and pip here takes the host's bundle instead.)"""
    chroot = throwaway_root()
    try:
        with chroot.mounted(root, binds) as inside:
            resolv = inside / "etc" / "resolv.conf"
            resolv.unlink(missing_ok=True)
            resolv.write_text(Path("/etc/resolv.conf").read_text())
            yield
    except chroot.RootError as exc:
        raise SystemTestError(str(exc)) from exc


def emulation_shortcut_hooks(python: str) -> list[str]:
    """mmdebstrap hooks that skip the dearest maintainer-script work under emulation.

    Compiling is the dearest step of all under qemu-user: python3.X's postinst compiles the
    whole standard library (over two minutes of emulated CPU) and py3compile every Python
    package; Python compiles what is actually imported, on first use, instead. Building the
    trust store costs over a minute more (ca-certificates comes in through python3-pip-whl),
    and pip here is given the host's bundle. So before the non-essential packages go in,
    py3compile, py3clean and update-ca-certificates are diverted to true and /usr/bin/python3.X
    to a wrapper that skips the postinsts' py_compile.py runs; afterwards the diversions are
    removed and every file is back where Debian put it."""
    real = f"/usr/bin/python{python}"
    wrapper = (f'#!/bin/sh\ncase " $* " in *" /usr/lib/python{python}/py_compile.py "*) exit 0;; '
               f'esac\nexec {real}.real "$@"\n')
    to_true = "/usr/bin/py3compile /usr/bin/py3clean /usr/sbin/update-ca-certificates"
    return [
        "--essential-hook=set -e; "
        f'for f in {to_true} {real}; do chroot "$1" dpkg-divert --quiet --local --rename '
        '--divert "$f.real" --add "$f"; done; '
        f'for f in {to_true}; do ln -s /bin/true "$1$f"; done; '
        f"printf '{wrapper}' >\"$1\"{real}; chmod 755 \"$1\"{real}",
        "--customize-hook=set -e; "
        f'for f in {to_true} {real}; do rm -f "$1$f"; chroot "$1" dpkg-divert --quiet --local '
        '--rename --remove "$f"; done; '
        f'test ! -e "$1{real}.real"; chroot "$1" {real} -c pass',
    ]


def root_tarball_path(cache: Path, suite: str) -> Path:
    """Where the suite's root is cached: keyed by the recipe and the package list."""
    key = hashlib.sha256("\0".join((ROOT_RECIPE, suite, *PACKAGES)).encode()).hexdigest()[:12]
    return cache / f"{suite}-arm64-{key}.tar"


def root_tarball(cache: Path, suite: str) -> Path:
    """The suite's arm64 root, made with mmdebstrap when the cache has none."""
    tarball = root_tarball_path(cache, suite)
    if tarball.is_file():
        return tarball
    # essential + the packages: no apt, no init, no compiler.
    mmdebstrap(tarball, suite=suite, arch="arm64", variant="essential", packages=PACKAGES,
               apt_cache=cache / "apt" / suite, hooks=emulation_shortcut_hooks(SUITES[suite]),
               env=QEMU_ENV)
    for stale in cache.glob(f"{suite}-arm64-*.tar"):  # older recipes or package lists
        if stale != tarball:
            stale.unlink()
    return tarball


# pip as the root's venv runs it: the host's CA bundle (outbound TLS may be re-signed by a
# local CA), nothing compiled up front (Python compiles what is imported, once).
PIP = (f"{VENV}/bin/python -m pip --disable-pip-version-check --cert {ROOT_CA_BUNDLE} "
       "install -q --no-compile")


def install_agent(root: Path, wheel: Path) -> str:
    """The playbook's install step in the (mounted) root; returns the installed packages.

    The playbook runs ``python3 -m venv --system-site-packages`` and pip-installs the wheel.
    ensurepip there runs pip from its zipped wheel (no bytecode cache: every module compiled,
    a minute under emulation) and then byte-compiles all of pip. Here the venv is made
    ``--without-pip`` and Debian's same pip wheel unpacked into it (a wheel is a zip of its
    installed files), then the agent's wheel installed with ``--no-compile``: the same venv and
    packages, and Python compiles only what runs, once."""
    dist = root / "opt" / "edge-agent" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dist / wheel.name)
    emulated(root, f"python3 -m venv --without-pip --system-site-packages {VENV} && "
            f'{VENV}/bin/python -c "import sys, sysconfig, zipfile; '
            "zipfile.ZipFile(sys.argv[1]).extractall(sysconfig.get_paths()['purelib'])\" "
            "/usr/share/python-wheels/pip-*.whl", timeout=900)
    emulated(root, f"{PIP} /opt/edge-agent/dist/{wheel.name}", timeout=1800)
    # The agent must import with what the device has: PyAudio from Debian, no compiler.
    emulated(root, f"{VENV}/bin/python -c 'import agent.cli, pyaudio, numpy, soxr, "
            "simplejpeg, uvloop, orjson, pybase64, regex, pymicro_wakeword'", timeout=600)
    return emulated(root, f"{VENV}/bin/python -m pip freeze --all", timeout=300).stdout


def install_test_tools(root: Path) -> None:
    """The tests' own requirements, added after the install was checked (never on a device),
    and a copy of tests/ (the agent itself comes only from the installed wheel)."""
    src = root / SRC.lstrip("/")
    remove_tree(src)
    src.mkdir(parents=True)
    shutil.copytree(REPO / "tests", src / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "js"))
    for name in subset.CHECKOUT_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name)
        else:
            shutil.copy2(REPO / name, src / name)
    requirements = " ".join(f"'{r}'" for r in subset.TEST_REQUIREMENTS)
    emulated(root, f"{PIP} --only-binary=:all: {requirements}", timeout=900)


def run_subset(root: Path, pytest_args: list[str]) -> int:
    """The subset's tests in the (mounted) root; returns pytest's exit status (its output
    streams)."""
    args = " ".join(f"'{a}'" for a in [*subset.pytest_args(), *pytest_args])
    # python -m puts /src on sys.path for tests.support; the agent comes from the venv.
    script = (f"cd {SRC} && exec {VENV}/bin/python -m pytest -q -p no:cacheprovider "
              f"-o addopts=--import-mode=importlib --durations=15 {args}")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8", "HOME": "/root", **QEMU_ENV}
    return os.spawnvpe(os.P_WAIT, "timeout", [
        "timeout", "--kill-after=10", f"{TEST_TIMEOUT_S:.0f}",
        "chroot", str(root), "/bin/sh", "-c", script], env)


def run_suite(suite: str, cache: Path, pytest_args: list[str]) -> int:
    """One suite from root to tests; returns pytest's exit status."""
    timings = Timings()
    work = cache / "work"
    root = work / f"{suite}-root"
    status = 1
    try:
        made = "cached" if root_tarball_path(cache, suite).is_file() else "mmdebstrap"
        with timings.phase(f"arm64 {suite} root ({made})"):
            tarball = root_tarball(cache, suite)
        with timings.phase("wheel"):
            wheel = build_wheel(work / f"{suite}-dist")
        with timings.phase("unpack the root"):
            unpack(tarball, root)
        bundle = root / ROOT_CA_BUNDLE.lstrip("/")
        bundle.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HOST_CA_BUNDLE, bundle)
        with mounted(root, {"/root/.cache/pip": cache / "pip"}):
            with timings.phase("install the agent as the playbook does"):
                freeze = install_agent(root, wheel)
            print("== arm64: installed\n" + freeze, flush=True)
            pyver = emulated(root, "python3 -c 'import sys, platform; "
                            "print(platform.machine(), sys.version.split()[0])'",
                            timeout=120).stdout.strip()
            print(f"== arm64: {suite}: {pyver}", flush=True)
            with timings.phase("test tools (pytest, pytest-asyncio, pillow)"):
                install_test_tools(root)
            with timings.phase(f"tests under qemu-user ({pyver})"):
                status = run_subset(root, pytest_args)
    finally:
        remove_tree(root)
        print(f"== arm64 {suite}: seconds per phase (wall, and CPU of this run and its "
              "children)")
        print(timings.table(), flush=True)
    return status


def _stop(_signum: int, _frame: object) -> None:
    # SIGTERM as KeyboardInterrupt: every mount and root is taken down on the way out, and a
    # running command is not waited for (subprocess waits for one only on any other error).
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.arm64.tier",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), action="append",
                        help="trixie (the default) or bookworm; repeat for both, in turn")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args, pytest_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    failed = []
    try:
        check_host()
        qemu_user()
        for suite in args.suite or ["trixie"]:
            try:
                if run_suite(suite, args.cache.resolve(), pytest_args) != 0:
                    failed.append(f"{suite} (tests failed)")
            except SystemTestError as exc:
                print(f"arm64 tier, {suite}: {exc}", file=sys.stderr, flush=True)
                failed.append(f"{suite} ({str(exc).splitlines()[0][:200]})")
    except SystemTestError as exc:
        print(f"arm64 tier failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("arm64 tier stopped", file=sys.stderr)
        return 128 + signal.SIGTERM
    if failed:
        print(f"arm64 tier failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
