"""The machines the system test boots: what differs between the x86-64 VM and the aarch64 one.

* ``amd64``: Debian bookworm (Python 3.11) on an emulated x86-64, 2 vCPUs and 1.5 GB; its
  root is the provisioning tier's debootstrap minbase plus the VM's packages, made natively.
* ``arm64``: Debian trixie (Python 3.13) on qemu's ``virt`` board with the Cortex-A53 of a
  Raspberry Pi Zero 2 W, 4 vCPUs and 512 MB; its root is made with mmdebstrap through
  qemu-user (as the arm64 tier's), and everything run in it before the boot (the playbook,
  the gpio-sim build) runs on the emulated CPU too.

Both are emulated by TCG (no KVM on CI). The aarch64 guest is much slower (every aarch64
instruction is translated, on fewer host cores than vCPUs), so its waits are longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Arch:
    """One kind of VM the system test can build and boot."""

    name: str  # Debian's architecture name
    suite: str
    kernel_package: str
    qemu: tuple[str, ...]  # the emulator and its machine, CPU and accelerator arguments
    console: str  # the serial console's device in the guest
    memory_mb: int
    cpus: int
    # Environment for commands run in the root before the boot (qemu-user reads QEMU_CPU).
    chroot_env: tuple[tuple[str, str], ...]
    # How much longer than on x86 the in-VM steps may wait for anything (steps.sh's waits and
    # the steps unit's own timeout are multiplied by it).
    slowness: int
    qemu_package: str = "qemu-system-x86"
    # The gpio-sim chip's number (the agent's gpio.chip): the board's own GPIO controllers
    # come first.
    gpio_chip: int = 0

    @property
    def default_cache(self) -> Path:
        return REPO / ".cache" / ("system" if self.name == "amd64" else f"system-{self.name}")

    @property
    def emulated(self) -> bool:
        """Whether commands in the root run through qemu-user (a foreign architecture)."""
        return self.name != "amd64"


AMD64 = Arch(
    name="amd64", suite="bookworm", kernel_package="linux-image-amd64",
    qemu=("qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max"),
    console="ttyS0", memory_mb=1536, cpus=2, chroot_env=(), slowness=1)

ARM64 = Arch(
    name="arm64", suite="trixie", kernel_package="linux-image-arm64",
    # cortex-a53, not "max": the oldest supported board's instruction set, and qemu's "max"
    # has SVE, which trixie's glibc then uses for memcpy and the like (far slower emulated).
    qemu=("qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a53",
          "-accel", "tcg,thread=multi"),
    console="ttyAMA0", memory_mb=512, cpus=4, chroot_env=(("QEMU_CPU", "cortex-a53"),),
    slowness=4,
    # gpiochip0 is the virt board's PL061 (its power button).
    qemu_package="qemu-system-arm", gpio_chip=1)

ARCHES = {a.name: a for a in (AMD64, ARM64)}
