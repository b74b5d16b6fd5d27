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
# for the arm64 tier's Debian roots, run through qemu-user, and qemu-system-arm for the
# aarch64 system test's VM.
apt_packages=(portaudio19-dev python3-venv systemd debootstrap
              qemu-system-x86 e2fsprogs xz-utils openssl ca-certificates prometheus
              mmdebstrap arch-test qemu-user-static qemu-system-arm)
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
# The full ansible package: it bundles community.general's chroot connection. Installed before
# anything starts in the background: the aarch64 VM's image build runs the playbook.
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'ansible>=10,<13' 'ansible-lint>=24'
# The soak (tests/soak/soak.py): the daemon against the emulator with faults for
# EDGE_AGENT_SOAK_S seconds (default 600), in the background from as soon as the package is
# installed (it uses little CPU) while the linters and the tests run;
# waited for before the benchmarks, and its failure fails the run. A developer who runs one
# tier (pytest arguments given) skips it.
soak_pid=""
soak_log=""
# The arm64 tier (tests/arm64/tier.py): the agent installed in Debian arm64 roots as the
# playbook installs it, and tests/arm64/subset.py run there under qemu-user. It needs root
# (binfmt_misc, mmdebstrap, chroot) and one core for about ten minutes from nothing, so it too
# runs in the background from here, niced below the tests, its output printed after them and
# its failure failing the run. The aarch64 system test (tests/system --system-arch arm64: the
# provisioned trixie arm64 image booted on an emulated Cortex-A53 with 512 MB) builds its image
# in the background too, beside the tier (each has its own apt downloads: two mmdebstrap runs
# must not sync one folder at once); its VM boots after the tests, when it has the machine to
# itself (the guest runs at real time).
# EDGE_AGENT_ARM64 names the tier's suites and "vm" ("trixie bookworm vm" by default: Python
# 3.13 and 3.11, and the VM), or "off". Skipped with pytest arguments, like the soak.
arm64_pid=""
arm64_log=""
arm64_vm_pid=""
arm64_vm_log=""
stop_background() {
  if [ -n "$soak_pid" ]; then kill "$soak_pid" 2>/dev/null || true; wait "$soak_pid" || true; fi
  if [ -n "$soak_log" ]; then rm -f "$soak_log"; fi
  # SIGTERM: the tier and the image build take their chroot mounts down before they exit.
  if [ -n "$arm64_pid" ]; then kill "$arm64_pid" 2>/dev/null || true; wait "$arm64_pid" || true; fi
  if [ -n "$arm64_log" ]; then rm -f "$arm64_log"; fi
  if [ -n "$arm64_vm_pid" ]; then
    kill "$arm64_vm_pid" 2>/dev/null || true; wait "$arm64_vm_pid" || true
  fi
  if [ -n "$arm64_vm_log" ]; then rm -f "$arm64_vm_log"; fi
}
trap stop_background EXIT
if [ -z "${*}" ]; then
  soak_log=$(mktemp "${TMPDIR:-/tmp}/edge-agent-soak.XXXXXX")
  echo "== soak: ${EDGE_AGENT_SOAK_S:-600} s in the background, its table after the tests"
  "$venv/bin/python" tests/soak/soak.py >"$soak_log" 2>&1 &
  soak_pid=$!
  arm64_words=${EDGE_AGENT_ARM64:-trixie bookworm vm}
  arm64_args=()
  arm64_vm=no
  for word in $arm64_words; do
    case $word in
      off) ;;
      vm) arm64_vm=yes ;;
      *) arm64_args+=(--suite "$word") ;;
    esac
  done
  if [ "$arm64_words" = off ]; then
    echo "== arm64: off (EDGE_AGENT_ARM64=off)"
  elif [ "$(id -u)" -ne 0 ]; then
    echo "== arm64: skipped: it needs root (binfmt_misc, mmdebstrap, chroot)"
  else
    if ((${#arm64_args[@]})); then
      arm64_log=$(mktemp "${TMPDIR:-/tmp}/edge-agent-arm64.XXXXXX")
      echo "== arm64: ${arm64_args[*]} in the background, its output after the tests"
      nice -n 10 "$venv/bin/python" -m tests.arm64.tier "${arm64_args[@]}" >"$arm64_log" 2>&1 &
      arm64_pid=$!
    fi
    if [ "$arm64_vm" = yes ]; then
      arm64_vm_log=$(mktemp "${TMPDIR:-/tmp}/edge-agent-arm64-vm.XXXXXX")
      echo "== arm64 vm: its image built in the background, booted after the tests"
      nice -n 10 "$venv/bin/python" -m tests.system.run --arch arm64 --build-only \
        >"$arm64_vm_log" 2>&1 &
      arm64_vm_pid=$!
    fi
  fi
fi


echo "== ruff"; "$venv/bin/ruff" check agent tests
echo "== mypy"; "$venv/bin/mypy"
echo "== pytest"; "$venv/bin/python" -m pytest -q "$@"
# Wait for a background job started above and stop the run if it failed; its log is shown
# whole, or with "failed-only" only when it failed (and its last lines otherwise).
finish_background() {  # pid-variable log failure-message [failed-only]
  local -n job_pid=$1
  local status=0
  wait "$job_pid" || status=$?
  job_pid=""  # reaped: nothing for stop_background to kill
  if [ "${4:-}" != failed-only ] || [ "$status" -ne 0 ]; then cat "$2"; else tail -n 20 "$2"; fi
  if [ "$status" -ne 0 ]; then
    echo "$3 (exit status $status)"
    exit 1
  fi
}

if [ -z "${*}" ]; then
  echo "== soak"
  finish_background soak_pid "$soak_log" "the soak failed"
  if [ -n "$arm64_pid" ]; then
    echo "== arm64"
    finish_background arm64_pid "$arm64_log" "the arm64 tier failed"
  fi
  if [ -n "$arm64_vm_pid" ]; then
    echo "== arm64 vm"
    finish_background arm64_vm_pid "$arm64_vm_log" "the arm64 VM's image was not built" \
      failed-only
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/system --system-arch arm64 \
      --system-prebuilt
  fi
  echo "== benchmarks"
  # Libraries pip has just written sit in the page cache in a way a booted Pi never sees them.
  "$venv/bin/python" tests/bench/page_cache.py
  "$venv/bin/python" -m pytest -q -s tests/bench
fi
