"""Which tests the arm64 tier runs under qemu-user, and why.

The tier's question is narrow: does the agent, installed on aarch64 the way the playbook
installs it on a Pi (Debian's python3-pyaudio and python3-numpy, every other dependency an
aarch64 wheel), behave as it does on x86-64, on the Python a Pi runs (3.13 on Trixie, 3.11
on Bookworm)? So a test is in when what it checks runs through native code that differs per
architecture (a wheel's or Debian's compiled library) or through Python behaviour that
changed between 3.11 and 3.13. A test is out when it checks only pure-Python logic that the
x86 tiers already run on the same interpreter family: under qemu-user every test costs five
to ten times its x86 time, and repeating it proves nothing new.

To add a test, append a line to `IN` with the reason; the driver passes these paths to pytest
as they are, less the tests named in `DESELECT`.
"""

from __future__ import annotations

# (path under the checkout, why it is in)
IN: tuple[tuple[str, str], ...] = (
    ("tests/unit/media/audio/test_convert_capture.py",
     "microphone conversion: numpy int32/int16 maths and soxr's aarch64 build (NEON paths)"),
    ("tests/unit/media/audio/test_convert_playback.py",
     "speaker conversion and resampling: soxr's aarch64 build, numpy clipping and dtypes"),
    ("tests/unit/media/audio/test_mics.py",
     "the I2S and USB mic formats (byte order, 32-bit samples, channel picking in numpy), and "
     "the mic profiles the wheel ships matching hardware/mics"),
    ("tests/unit/media/audio/test_wakeword.py",
     "the wake word: pymicro-wakeword's bundled TFLite runtime and models for aarch64"),
    ("tests/unit/media/audio/test_wake_model.py",
     "the wake models run through ctypes with our buffers: pointers, int8 quantisation and "
     "the dequantised levels must match the library's loop on aarch64 too"),
    ("tests/unit/media/audio/test_aec.py",
     "echo cancellation: WebRTC AEC3 from pywebrtc-audio's aarch64 wheel (its NEON paths), "
     "the reference tap's resampling and the pairing's numpy maths"),
    ("tests/unit/media/audio/test_echo.py",
     "the echo gate's level maths on numpy from Debian's arm64 package"),
    ("tests/unit/media/camera/test_sources.py",
     "frames to JPEG and back: simplejpeg's aarch64 libjpeg-turbo (SIMD differs per arch), "
     "fitting and colour conversion in numpy, decoded with Pillow's aarch64 build"),
    ("tests/unit/tools/test_pins.py",
     "tools on gpiozero's mock pins: the same gpiozero the device imports"),
    ("tests/unit/tools/test_handlers.py",
     "tool handlers' argument checks: the regex wheel (a C extension) with its timeout"),
    ("tests/unit/config/test_load.py",
     "loading the config and the example file: tomllib and dataclasses on the suite's Python"),
    ("tests/unit/config/test_syntax.py",
     "TOML syntax errors reported with their lines, from tomllib's errors on the suite's "
     "Python"),
    ("tests/unit/live/test_protocol.py",
     "the wire protocol: orjson and pybase64 (C extensions) for aarch64"),
    ("tests/integration/live/test_conversation.py",
     "a conversation against the emulator over real WebSockets on uvloop (C) for aarch64"),
    ("tests/integration/live/test_resilient.py",
     "the resilient session: reconnects, GoAway, resumption under asyncio on the suite's Python"),
    ("tests/integration/media/test_pyaudio_audio.py",
     "real PyAudio streams from Debian's python3-pyaudio through alsa-lib's plugins"),
)

# Tests of the files above left out: wall-clock timing that emulation cannot keep.
DESELECT: tuple[tuple[str, str], ...] = (
    ("tests/integration/media/test_pyaudio_audio.py::test_i2s_mic_through_pyaudio_real_time",
     "capture paced against the wall clock within a quarter second: emulation cannot keep it; "
     "the same stream's format and conversion are checked by the plug-device tests"),
    ("tests/integration/media/test_pyaudio_audio.py::test_capture_latency_is_one_chunk_plus_a_little",
     "a chunk's age within one chunk plus 15 ms of wall time: emulation on a busy machine "
     "cannot keep it (91 ms once)"),
    ("tests/integration/media/test_pyaudio_audio.py::test_flush_silences_the_speaker_within_50ms",
     "silence within 50 ms of wall time: the same; flush() is the same Python on both"),
)

# What stays out, by group, and why.
OUT: tuple[tuple[str, str], ...] = (
    ("tests/unit/emulator, tests/integration/emulator",
     "the emulator is test equipment; its own behaviour is pure Python"),
    ("tests/unit/live (except test_protocol.py)",
     "recovery, bounds, memory and histogram logic: pure Python, no native code"),
    ("tests/unit/tools (except pins and handlers), tests/unit/usage, tests/unit/token_server",
     "registries, schemas, budgets, the token server's settings: pure Python"),
    ("tests/unit/config (except test_load.py and test_syntax.py)",
     "the checks of each section and hostile values: pure Python over what tomllib gives"),
    ("tests/unit/media/audio (capture queues, device thread, jitter, sim, speech)",
     "threading and queue logic around the devices: pure Python, covered on x86"),
    ("tests/unit/media/camera/test_stream.py",
     "the camera's pacing, change-skip and back-off: asyncio timing that emulation (ten or "
     "more times slower) cannot keep; the encoding it calls is in test_sources.py"),
    ("tests/integration/daemon, tests/integration/e2e",
     "the whole daemon: tier 2 (the aarch64 VM) runs the installed service for real"),
    ("tests/integration/ansible, tests/integration/systemd",
     "host-side tooling (Ansible, systemd-analyze): not part of what runs on the device"),
    ("tests/integration/credentials, tests/integration/hostile, tests/unit/test_*.py",
     "token and key handling, hostile servers, import layering: pure Python on top of "
     "cryptography, which the device installs only with the vertex extra"),
    ("tests/fuzz, tests/soak, tests/bench",
     "long or timing-bound: under qemu-user timings mean nothing"),
)

# What the tests need on top of the agent (the device never has these).
TEST_REQUIREMENTS = ("pytest>=8", "pytest-asyncio>=0.24", "pillow>=10")
# What the tests read from the checkout besides tests/ (the agent comes from the wheel).
CHECKOUT_FILES = ("pyproject.toml", "agent.example.toml", "README.md", "hardware")


def paths() -> list[str]:
    """The paths to hand to pytest."""
    return [path for path, _ in IN]


def pytest_args() -> list[str]:
    """The paths and the deselections to hand to pytest."""
    return [*paths(), *(f"--deselect={node}" for node, _ in DESELECT)]
