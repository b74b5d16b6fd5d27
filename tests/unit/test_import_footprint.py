"""What `edge-agent run` loads: the emulator, the camera sources and the metrics it does not
use stay out.

Each check runs in a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import sys
from agent.cli import build_parser
import agent.build, agent.daemon
from agent.media.camera import make_frame_source

build_parser("run").parse_args(["run"])
make_frame_source("test-pattern")
print(" ".join(sorted(m for m in sys.modules
                      if m.startswith(("agent.", "prometheus_client", "pywebrtc_audio")))))
"""


def loaded_modules() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_the_daemon_loads_no_emulator_and_only_the_camera_source_it_uses() -> None:
    loaded = loaded_modules()
    assert "agent.daemon" in loaded and "agent.media.camera.sim" in loaded
    assert not {m for m in loaded if m.startswith("agent.emulator")}
    assert "agent.metrics" not in loaded  # metrics are off unless configured
    assert not {m for m in loaded if m.startswith("prometheus_client")}
    assert "agent.media.camera.v4l2" not in loaded
    assert "agent.media.camera.picamera2" not in loaded
    # the echo canceller and its library load when a conversation uses echo = "aec"
    assert "agent.media.audio.aec" not in loaded and "pywebrtc_audio" not in loaded


def test_the_emulator_command_still_has_its_options() -> None:
    from agent.cli import build_parser

    args = build_parser("emulator").parse_args(["emulator", "--port", "0", "--tls"])
    assert (args.port, args.tls) == (0, True)
