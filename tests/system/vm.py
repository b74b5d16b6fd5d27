"""Boot the image under qemu (TCG: no KVM on CI) until it powers itself off, and read the
test's logs out of the image afterwards with debugfs (nothing is mounted)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import structlog

from tests.system.arch import AMD64, Arch
from tests.system.image import BootFiles
from tests.system.plumbing import SystemTestError, kill_group, run

log = structlog.get_logger(__name__)

LOG_DIR = "/var/log/system-test"
KERNEL_ARGS = "root=/dev/vda rw quiet loglevel=4 systemd.show_status=auto panic=-1"


def qemu_command(boot: BootFiles, console: Path, arch: Arch = AMD64) -> list[str]:
    """qemu's arguments: no network device at all (the VM has only its loopback interface),
    the serial console to a file, and no reboot (a panic or poweroff ends qemu)."""
    return [*arch.qemu,
            "-m", str(arch.memory_mb), "-smp", str(arch.cpus), "-display", "none",
            "-monitor", "none", "-serial", f"file:{console}", "-no-reboot", "-nic", "none",
            "-kernel", str(boot.kernel), "-initrd", str(boot.initrd),
            "-append", f"{KERNEL_ARGS} console={arch.console}",
            "-drive", f"file={boot.image},format=raw,if=virtio,cache=unsafe"]


def boot_until_poweroff(boot: BootFiles, console: Path, timeout: float,
                        arch: Arch = AMD64) -> float:
    """Run the VM until it powers off; kill it and raise when ``timeout`` runs out.
    Returns the seconds it ran. qemu runs under timeout(1) as well, so it ends even if this
    process is killed before it can kill qemu."""
    started = time.monotonic()
    stderr = console.with_name("qemu-stderr.txt")
    guard = ["timeout", "--kill-after=10", f"{timeout + 30:.0f}"]
    with stderr.open("w") as err, subprocess.Popen(
            [*guard, *qemu_command(boot, console, arch)], stdin=subprocess.DEVNULL, stdout=err,
            stderr=err, start_new_session=True) as proc:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise SystemTestError(f"the VM did not power off within {timeout:.0f} s "
                                  f"(console: {console})") from None
        finally:
            if proc.poll() is None:  # an exception from anywhere: never leave qemu running
                kill_group(proc)
    took = time.monotonic() - started
    if code != 0:
        raise SystemTestError(f"qemu exited {code}: {stderr.read_text()[-2000:]}")
    return took


def read_logs(image: Path, dest: Path) -> Path:
    """Copy ``/var/log/system-test`` out of the (no longer running) image into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["debugfs", "-R", f"rdump {LOG_DIR} {dest}", image], timeout=120)
    logs = dest / Path(LOG_DIR).name
    if not logs.is_dir():
        raise SystemTestError(f"{LOG_DIR} is not in {image}: the test steps never ran")
    return logs
