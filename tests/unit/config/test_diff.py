"""diff_sections: which parts a SIGHUP reload must restart."""

from __future__ import annotations

from agent.config import diff_sections, load_config
from tests.unit.config.conftest import WriteConfig

BASE = '''
[live]
voice = "Puck"
[audio]
input = "tone"
[camera]
source = "test-pattern"
[gpio]
pin_factory = "mock"
[gpio.status]
leds = { connected = 5 }
[[tools]]
name = "lamp"
description = "The lamp."
kind = "digital_output"
pin = 17
'''


def test_the_same_file_changes_nothing(write_config: WriteConfig) -> None:
    assert diff_sections(load_config(write_config(BASE)), load_config(write_config(BASE))) == set()


def test_each_changed_section_is_named(write_config: WriteConfig) -> None:
    old = load_config(write_config(BASE))
    cases = {
        ('voice = "Puck"', 'voice = "Kore"'): {"live"},
        ('input = "tone"', 'input = "silence"'): {"audio"},
        ('source = "test-pattern"', 'source = "test-pattern"\ninterval_s = 2.0'): {"camera"},
        ("leds = { connected = 5 }", "leds = { connected = 6 }"): {"gpio"},
        ("pin = 17", "pin = 27"): {"tools"},
        ("[audio]", "[logging]\nlevel = \"debug\"\n[reconnect]\nbackoff_cap_s = 10\n[audio]"):
            {"logging", "reconnect"},
        ("[audio]", "[health]\nwatchdog = false\n[audio]"): {"health"},
    }
    for (before, after), expected in cases.items():
        new = load_config(write_config(BASE.replace(before, after)))
        assert diff_sections(old, new) == expected, (before, after)


def test_comments_and_order_do_not_count(write_config: WriteConfig) -> None:
    old = load_config(write_config(BASE))
    reordered = BASE.replace('[live]\nvoice = "Puck"\n', "") + '# moved\n[live]\nvoice = "Puck"\n'
    assert diff_sections(old, load_config(write_config(reordered))) == set()
