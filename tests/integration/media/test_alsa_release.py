"""PortAudio's device scan loads every ALSA plugin module; the agent unloads them afterwards.

A real external ALSA plugin, built here with the C compiler PyAudio's build needs, stands in
for libasound2-plugins' modules (the a52 encoder among them pulls in FFmpeg). Each case runs in
a fresh interpreter: alsa-lib reads its configuration once per process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_C = r"""
#include <errno.h>
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>

/* Found by PortAudio's scan, opened and refused: alsa-lib keeps the module loaded. */
SND_PCM_PLUGIN_DEFINE_FUNC(probe)
{
    (void)pcmp; (void)name; (void)root; (void)conf; (void)stream; (void)mode;
    return -ENODEV;
}
SND_PCM_PLUGIN_SYMBOL(probe);
"""

ASOUNDRC = """
pcm_type.probe {{ lib "{module}" }}
pcm.probe {{ type probe }}
pcm.quiet {{ type null }}
"""

CHILD = """
import sys
from pathlib import Path
import pyaudio
from agent.media.audio.devices import PortAudio, silence_native_audio_errors

silence_native_audio_errors()
pa = PortAudio().pa if sys.argv[1] == "agent" else pyaudio.PyAudio()
loaded = "libasound_module_pcm_probe" in Path("/proc/self/maps").read_text()
index = next(i for i in range(pa.get_device_count())
             if pa.get_device_info_by_index(i)["name"] == "quiet")
stream = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, input=True,
                 input_device_index=index, frames_per_buffer=160)
data = stream.read(160)
stream.close()
print("loaded" if loaded else "released", len(data))
"""


@pytest.fixture(scope="module")
def alsa_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (PyAudio's build needs one; install gcc)")
    home = tmp_path_factory.mktemp("alsa-home")
    source = home / "probe.c"
    source.write_text(PLUGIN_C)
    module = home / "libasound_module_pcm_probe.so"
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-DPIC", "-o", str(module), str(source), "-lasound"],
        check=True,
        capture_output=True,
    )
    (home / "alsa").mkdir()
    (home / "alsa" / "asoundrc").write_text(ASOUNDRC.format(module=module))
    return home


def scan(alsa_home: Path, mode: str) -> tuple[str, int]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(alsa_home))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, check=True
    )
    state, size = result.stdout.split()
    return state, int(size)


def test_plain_pyaudio_keeps_the_scanned_plugin_loaded(alsa_home: Path) -> None:
    # The control: PortAudio's scan opened pcm.probe, and its module stays in memory.
    assert scan(alsa_home, "pyaudio") == ("loaded", 320)


def test_the_agent_releases_plugins_after_the_scan_and_devices_still_open(
    alsa_home: Path,
) -> None:
    # Released, and alsa-lib reads its configuration again for the next open: a device
    # defined there opens and delivers 160 frames of 16-bit audio.
    assert scan(alsa_home, "agent") == ("released", 320)
