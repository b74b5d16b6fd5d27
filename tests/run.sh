#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian 12 / Raspberry Pi OS machine, then run
# the linters, the unit and integration tests, and the benchmarks.
#   bash tests/run.sh            everything
#   bash tests/run.sh -k session extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# PortAudio to build PyAudio (the virtual sound devices use only alsa-lib's built-in plugins,
# and a device's Raspberry Pi OS Lite has no libasound2-plugins either); systemd for
# systemd-analyze (the unit's verify and security tests).
# debootstrap for the throwaway Debian roots the Ansible playbook is applied to; qemu, e2fsprogs
# and xz for the system test's VM; openssl and ca-certificates for hashed CA directories, as a
# device keeps them (the TLS tests and the tight-loop bench); prometheus, the server that
# scrapes the running daemon in the metrics test; mmdebstrap, arch-test and qemu-user-static
# for the arm64 tier's Debian roots, run through qemu-user.
apt_packages=(portaudio19-dev python3-venv systemd debootstrap
              qemu-system-x86 e2fsprogs xz-utils openssl ca-certificates prometheus
              mmdebstrap arch-test qemu-user-static)
# Node.js runs the Firebase JS SDK against the emulator (machines of this kind ship Node 20).
command -v npm >/dev/null || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

venv=${EDGE_AGENT_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
# The soak (tests/soak/soak.py): the daemon against the emulator with faults for
# EDGE_AGENT_SOAK_S seconds (default 600), in the background from as soon as the package is
# installed (it uses little CPU) while the rest installs and the linters and the tests run;
# waited for before the benchmarks, and its failure fails the run. A developer who runs one
# tier (pytest arguments given) skips it.
soak_pid=""
soak_log=""
# The arm64 tier (tests/arm64/tier.py): the agent installed in Debian arm64 roots as the
# playbook installs it, and tests/arm64/subset.py run there under qemu-user. It needs root
# (binfmt_misc, mmdebstrap, chroot) and one core for about ten minutes from nothing, so it too
# runs in the background from here, niced below the tests, its output printed after them and
# its failure failing the run. EDGE_AGENT_ARM64 names the suites ("trixie bookworm" by default:
# Python 3.13 and 3.11), or "off". Skipped with pytest arguments, like the soak.
arm64_pid=""
arm64_log=""
stop_background() {
  if [ -n "$soak_pid" ]; then kill "$soak_pid" 2>/dev/null || true; wait "$soak_pid" || true; fi
  if [ -n "$soak_log" ]; then rm -f "$soak_log"; fi
  # SIGTERM: the tier takes its chroot mounts down before it exits.
  if [ -n "$arm64_pid" ]; then kill "$arm64_pid" 2>/dev/null || true; wait "$arm64_pid" || true; fi
  if [ -n "$arm64_log" ]; then rm -f "$arm64_log"; fi
}
trap stop_background EXIT
if [ -z "${*}" ]; then
  soak_log=$(mktemp "${TMPDIR:-/tmp}/edge-agent-soak.XXXXXX")
  echo "== soak: ${EDGE_AGENT_SOAK_S:-600} s in the background, its table after the tests"
  "$venv/bin/python" tests/soak/soak.py >"$soak_log" 2>&1 &
  soak_pid=$!
  arm64_suites=${EDGE_AGENT_ARM64:-trixie bookworm}
  if [ "$arm64_suites" = off ]; then
    echo "== arm64: off (EDGE_AGENT_ARM64=off)"
  elif [ "$(id -u)" -ne 0 ]; then
    echo "== arm64: skipped: it needs root (binfmt_misc, mmdebstrap, chroot)"
  else
    arm64_args=()
    for suite in $arm64_suites; do arm64_args+=(--suite "$suite"); done
    arm64_log=$(mktemp "${TMPDIR:-/tmp}/edge-agent-arm64.XXXXXX")
    echo "== arm64: $arm64_suites in the background, its output after the tests"
    nice -n 10 "$venv/bin/python" -m tests.arm64.tier "${arm64_args[@]}" >"$arm64_log" 2>&1 &
    arm64_pid=$!
  fi
fi

# The full ansible package: it bundles community.general's chroot connection.
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'ansible>=10,<13' 'ansible-lint>=24'

echo "== ruff"; "$venv/bin/ruff" check agent tests
echo "== mypy"; "$venv/bin/mypy"
echo "== pytest"; "$venv/bin/python" -m pytest -q "$@"
if [ -z "${*}" ]; then
  echo "== soak"
  soak_status=0
  wait "$soak_pid" || soak_status=$?
  soak_pid=""
  cat "$soak_log"
  if [ "$soak_status" -ne 0 ]; then
    echo "the soak failed (exit status $soak_status)"
    exit 1
  fi
  if [ -n "$arm64_pid" ]; then
    echo "== arm64"
    arm64_status=0
    wait "$arm64_pid" || arm64_status=$?
    arm64_pid=""
    cat "$arm64_log"
    if [ "$arm64_status" -ne 0 ]; then
      echo "the arm64 tier failed (exit status $arm64_status)"
      exit 1
    fi
  fi
  echo "== benchmarks"
  # Libraries pip has just written sit in the page cache in a way a booted Pi never sees them.
  "$venv/bin/python" tests/bench/page_cache.py
  "$venv/bin/python" -m pytest -q -s tests/bench
fi
