"""What the daemon's integration tests share: a config against the emulator with simulated
devices, and a free port."""

from __future__ import annotations

import socket

LAMP = """
[[tools]]
name = "lamp"
description = "The lamp."
kind = "digital_output"
pin = 17
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emulator_config(endpoint: str, extra: str = "", *, audio_input: str = "tone:300",
                    camera: str = "enabled = false", live: str = "") -> str:
    """A config of simulated devices and mock pins against the emulator at ``endpoint``, with
    ``live`` (more [live] keys) and ``extra`` (more sections) at its end."""
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"
{live}

[audio]
input = "{audio_input}"
echo = "none"

[audio.output]
device = "null"

[camera]
{camera}

[gpio]
pin_factory = "mock"

[health]
watchdog = false

{extra}
"""
