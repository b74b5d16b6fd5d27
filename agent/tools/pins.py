"""Pin factories: gpiozero's default (lgpio on a Pi), lgpio on an explicit chip, or mock pins.

Notes for the Pi:

* gpiozero 2.x uses the lgpio factory by default; it is the only one that works on a Pi 5.
  lgpio is the apt package ``python3-lgpio`` (PyPI has no aarch64 wheel), so the venv needs
  ``--system-site-packages``.
* ``LG_WD``: importing lgpio creates a notify pipe ``.lgd-nfy*`` in the working directory.
  Under systemd the working directory is ``/`` and the import fails ("xCreatePipe: Can't set
  permissions"), so before lgpio is imported `ensure_lg_wd` points ``LG_WD`` at a writable
  directory (``$RUNTIME_DIRECTORY`` from the unit's ``RuntimeDirectory=``, else the temp dir).
* Chip numbering: the header is ``gpiochip0`` on a Pi 4 and Zero 2 W. On a Pi 5 it was
  ``gpiochip4`` before kernel 6.6.45 and is ``gpiochip0`` (``pinctrl-rp1``) since, sometimes
  with a ``gpiochip4`` symlink left behind. `find_header_chip` looks the chip up by its label
  instead of guessing from the board.
* Do not fork after lgpio is imported ("GPIO busy").

Off the Pi, ``kind="mock"`` gives gpiozero's `MockFactory` with PWM-capable mock pins, so
every handler kind (PWM, servo, tone) works in tests and in the demo.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import tempfile
from typing import Any, Literal

import structlog

from agent.tools.errors import GpioError

__all__ = ["HEADER_CHIP_LABELS", "ensure_lg_wd", "find_header_chip", "make_pin_factory"]

log = structlog.get_logger(__name__)

# struct gpiochip_info { char name[32]; char label[32]; __u32 lines; } -> _IOR(0xB4, 0x01, ...)
_GPIO_GET_CHIPINFO_IOCTL = 0x8044B401
_CHIPINFO_SIZE = 68
HEADER_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2712", "pinctrl-bcm2711", "pinctrl-bcm2835")


def ensure_lg_wd() -> str | None:
    """Set ``LG_WD`` to a writable directory unless it is set or the cwd is writable.

    Returns the directory chosen, or None when nothing had to change. Call before lgpio is
    imported (gpiozero imports it when the first device is created).
    """
    if os.environ.get("LG_WD") or os.access(os.getcwd(), os.W_OK):
        return None
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    target = runtime if runtime and os.access(runtime, os.W_OK) else tempfile.gettempdir()
    os.environ["LG_WD"] = target
    log.info("gpio.lg_wd", path=target, reason="working directory is not writable")
    return target


def _chip_label(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = fcntl.ioctl(fd, _GPIO_GET_CHIPINFO_IOCTL, bytes(_CHIPINFO_SIZE))
    except OSError:
        return None
    finally:
        os.close(fd)
    return info[32:64].split(b"\0", 1)[0].decode("ascii", "replace")


def pick_header_chip(labels: dict[int, str]) -> int | None:
    """The chip number whose label is a known 40-pin-header controller, preferring the Pi 5's."""
    for wanted in HEADER_CHIP_LABELS:
        for number in sorted(labels):
            if labels[number].startswith(wanted):
                return number
    return None


def find_header_chip(dev_dir: str = "/dev") -> int | None:
    """Find the gpiochip that drives the 40-pin header by its label; None if there is none."""
    labels: dict[int, str] = {}
    for path in glob.glob(os.path.join(dev_dir, "gpiochip*")):
        m = re.fullmatch(r"gpiochip(\d+)", os.path.basename(path))
        if m is None or os.path.islink(path):  # a compatibility symlink, not a chip
            continue
        label = _chip_label(path)
        if label is not None:
            labels[int(m.group(1))] = label
    return pick_header_chip(labels)


def make_pin_factory(
    kind: Literal["default", "lgpio", "mock"] | str = "default",
    chip: int | Literal["auto"] | None = None,
) -> Any:
    """Build the pin factory for ``kind``; None means "gpiozero's default".

    * ``"mock"``: `MockFactory` whose pins all support PWM (`MockPWMPin`).
    * ``"lgpio"``: gpiozero's `LGPIOFactory` on ``chip`` (a number; ``"auto"``/None finds the
      header chip by label and falls back to gpiozero's own choice), with pins that claim an
      output at its initial level (`agent.tools.pins_lgpio`).
    * ``"default"``: what gpiozero would choose: the ``"lgpio"`` factory above where lgpio is
      installed and can open the chip, else None, so devices use gpiozero's default factory
      (or the one ``GPIOZERO_PIN_FACTORY`` names, which always wins); ``LG_WD`` is prepared.
    """
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    if kind not in ("default", "lgpio"):
        raise ValueError(f"unknown pin factory {kind!r}; use 'default', 'lgpio' or 'mock'")
    ensure_lg_wd()
    if kind == "default":
        if os.environ.get("GPIOZERO_PIN_FACTORY"):
            return None
        try:
            return _lgpio_factory(chip)
        except GpioError as exc:
            log.info("gpio.factory.gpiozero_default", reason=str(exc))
            return None
    return _lgpio_factory(chip)


def _lgpio_factory(chip: int | Literal["auto"] | None) -> Any:
    try:
        from agent.tools.pins_lgpio import LevelClaimingLGPIOFactory
    except ImportError as exc:
        raise GpioError("the lgpio pin factory needs lgpio: apt install python3-lgpio and "
                        "create the venv with --system-site-packages (or set "
                        '[gpio] pin_factory = "mock")') from exc
    number = chip if isinstance(chip, int) else find_header_chip()
    log.info("gpio.factory", kind="lgpio", chip=number if number is not None else "gpiozero")
    try:
        return LevelClaimingLGPIOFactory(chip=number)
    except Exception as exc:  # lgpio.error: no chip, no permission
        raise GpioError(f"cannot open gpiochip{number if number is not None else ''} with "
                        f"lgpio: {exc} (is the user in the gpio group?)") from exc
