"""Pin factory selection, the LG_WD guard and the header-chip lookup."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPWMPin

from agent.tools.errors import GpioError
from agent.tools.pins import ensure_lg_wd, find_header_chip, make_pin_factory, pick_header_chip


def test_mock_factory_gives_pwm_capable_pins() -> None:
    factory = make_pin_factory("mock")
    try:
        assert isinstance(factory, MockFactory)
        led = LED(4, pin_factory=factory)
        assert isinstance(led.pin, MockPWMPin)
        led.close()
    finally:
        factory.close()


def test_default_factory_is_left_to_gpiozero() -> None:
    assert make_pin_factory("default") is None


def test_unknown_factory_kind() -> None:
    with pytest.raises(ValueError, match="unknown pin factory 'gpiod'"):
        make_pin_factory("gpiod")


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed")
def test_lgpio_missing_is_a_clear_error() -> None:
    with pytest.raises(GpioError, match="apt install python3-lgpio"):
        make_pin_factory("lgpio", chip=0)


def test_lg_wd_is_left_alone_when_set_or_not_needed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LG_WD", "/somewhere")
    assert ensure_lg_wd() is None
    monkeypatch.delenv("LG_WD")
    monkeypatch.chdir(tmp_path)  # writable working directory
    assert ensure_lg_wd() is None
    assert "LG_WD" not in os.environ


def test_lg_wd_points_at_the_runtime_directory_when_cwd_is_read_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LG_WD", raising=False)
    monkeypatch.chdir("/")
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    real_access = os.access
    # as under systemd with WorkingDirectory=/ (root here can write anywhere)
    monkeypatch.setattr(os, "access", lambda p, m: p != "/" and real_access(p, m))
    assert ensure_lg_wd() == str(tmp_path)
    assert os.environ["LG_WD"] == str(tmp_path)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({0: "pinctrl-bcm2711", 1: "raspberrypi-exp-gpio"}, 0),  # Pi 4
        ({0: "pinctrl-bcm2835"}, 0),  # Zero 2 W / Pi 3
        ({0: "pinctrl-rp1", 10: "gpio-brcmstb@107d508500", 11: "gpio-brcmstb@107d508500"},
         0),  # Pi 5, kernel >= 6.6.45
        ({0: "gpio-brcmstb@107d508500", 1: "gpio-brcmstb@107d517c00", 4: "pinctrl-rp1"},
         4),  # Pi 5, older kernels
        ({0: "gpio-mockup-A"}, None),
        ({}, None),
    ],
)
def test_header_chip_is_picked_by_label(labels: dict[int, str], expected: int | None) -> None:
    assert pick_header_chip(labels) == expected


def test_find_header_chip_without_gpio_devices(tmp_path: Path) -> None:
    assert find_header_chip(str(tmp_path)) is None
    (tmp_path / "gpiochip0").write_bytes(b"")  # not a character device: the ioctl fails
    (tmp_path / "gpiochip4").symlink_to(tmp_path / "gpiochip0")
    assert find_header_chip(str(tmp_path)) is None
