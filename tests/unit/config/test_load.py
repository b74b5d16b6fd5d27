"""Loading config files: the example, defaults, where the file is found, typed values."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from agent.build.devices import build_camera
from agent.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    AgentConfig,
    ConfigError,
    example_config_path,
    example_config_text,
    load_config,
    parse_config,
    resolve_config_path,
)
from agent.config.model import BUDGET_STEPS, PRICE_KEYS
from agent.media.audio import CaptureFormat, mic_capture_format
from agent.media.camera import CameraStream
from agent.media.camera.sim import ImageFolderSource
from tests.unit.config.conftest import WriteConfig

REPO = Path(__file__).resolve().parents[3]


def test_the_example_config_loads_and_says_what_it_promises() -> None:
    config = load_config(REPO / "agent.example.toml")
    assert config.live.backend == "gemini"
    assert config.audio.mic == "inmp441"
    fmt = mic_capture_format(config.audio.mic, **config.audio.capture_overrides())
    assert fmt == CaptureFormat(
        rate=48000, channels=2, sample_format="int32", channel=0, shift=8, dc_block=True,
        gain_db=30.0, agc=False)
    assert config.camera.source == "picamera2"
    kinds = {tool.name: tool.kind for tool in config.tools}
    assert kinds == {"set_lamp": "digital_output", "dim_led_strip": "pwm",
                     "turn_camera": "servo", "read_desk_button": "digital_input"}
    assert config.gpio.status is not None and config.gpio.status.mute_button == 23


def test_the_packaged_example_is_the_repository_example() -> None:
    assert example_config_path().is_file()
    assert example_config_text() == (REPO / "agent.example.toml").read_text(encoding="utf-8")
    assert load_config(example_config_path()) == load_config(REPO / "agent.example.toml")


def test_every_key_the_parser_knows_is_in_the_example() -> None:
    """The example documents every key: written, or commented out with its default."""
    text = example_config_text()
    config = AgentConfig()
    for section in ("live", "reconnect", "audio", "listen", "camera", "logging", "health"):
        for field in dataclasses.fields(getattr(config, section)):
            name = {"vad": "[live.vad]", "compression": "[live.compression]",
                    "credentials": "[live.credentials]", "vad_gate": "[audio.vad_gate]",
                    "output": "[audio.output]", "aec": "[audio.aec]",
                    }.get(field.name, field.name + " = ")
            if field.name == "tone_hz":
                continue
            assert name in text, f"{section}.{field.name} is not documented"
    for section in ("metrics", "usage", "budget"):
        for field in dataclasses.fields(getattr(config, section)):
            if field.name not in ("prices", "steps"):
                assert f"{field.name} = " in text, f"{section}.{field.name} is not documented"
    for key in (*PRICE_KEYS, *BUDGET_STEPS):
        assert f"# {key} = " in text, f"{key} is not documented"
    for field in dataclasses.fields(config.live.credentials):
        assert f"# {field.name} = " in text or f"\n{field.name} = " in text, (
            f"live.credentials.{field.name} is not documented")


def test_an_empty_file_gives_the_defaults(write_config: WriteConfig) -> None:
    path = write_config("# nothing set\n")
    config = load_config(path)
    assert config == AgentConfig()
    assert config.source == path
    assert config.live.compression.enabled and config.audio.chunk_ms == 40
    assert config.reconnect.backoff_cap_s == 30.0 and config.reconnect.replay_audio_s == 5.0


def test_config_path_order_argument_then_environment_then_default() -> None:
    env = {CONFIG_ENV: "/srv/agent.toml"}
    assert resolve_config_path("/tmp/x.toml", env) == Path("/tmp/x.toml")
    assert resolve_config_path(None, env) == Path("/srv/agent.toml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH == Path(
        "/etc/edge-agent/agent.toml")


def test_the_environment_variable_is_read(write_config: WriteConfig) -> None:
    path = write_config('[logging]\nlevel = "debug"\n')
    assert load_config(environ={CONFIG_ENV: str(path)}).logging.level == "debug"


def test_relative_paths_are_taken_from_the_config_folder(write_config: WriteConfig,
                                                         tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    path = write_config('''
        [camera]
        source = "image-folder"
        path = "frames"
        [audio.output]
        device = "wav:out/reply.wav"
        [live.credentials]
        api_key_file = "keys/gemini"
    ''')
    (tmp_path / "out").mkdir()
    config = load_config(path)
    assert config.camera.path == tmp_path / "frames"
    camera = build_camera(config.camera)
    assert isinstance(camera, CameraStream) and isinstance(camera.source, ImageFolderSource)
    assert camera.source.path == tmp_path / "frames"
    assert config.audio.output.kind == "wav"
    assert config.audio.output.path == tmp_path / "out" / "reply.wav"
    assert config.live.credentials.api_key_file == tmp_path / "keys" / "gemini"


def test_audio_inputs_of_every_kind(write_config: WriteConfig, tmp_path: Path) -> None:
    wav = tmp_path / "say.wav"
    import wave

    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 160)
    cases = {'"wav:say.wav"': ("wav", None, wav), '"tone"': ("tone", None, None),
             '"silence"': ("silence", None, None), "3": ("device", 3, None),
             '"USB Mic"': ("device", "USB Mic", None), '"default"': ("device", None, None)}
    for raw, (kind, device, path) in cases.items():
        audio = load_config(write_config(f"[audio]\ninput = {raw}\n")).audio
        assert (audio.input.kind, audio.input.device, audio.input.path) == (kind, device, path)
    assert load_config(write_config('[audio]\ninput = "tone:1000"\n')).audio.input.tone_hz == 1000


def test_explicit_capture_keys_override_the_mic_profile(write_config: WriteConfig) -> None:
    config = load_config(write_config('''
        [audio]
        mic = "sph0645"
        channel = 1
        sample_format = "S32_LE"
        gain_db = 24
    '''))
    fmt = mic_capture_format(config.audio.mic, **config.audio.capture_overrides())
    assert (fmt.channel, fmt.sample_format, fmt.gain_db, fmt.shift) == (1, "int32", 24.0, 14)
    assert config.audio.capture_overrides() == {"channel": 1, "sample_format": "int32",
                                               "gain_db": 24.0}


def test_config_objects_are_frozen(write_config: WriteConfig) -> None:
    config = load_config(write_config("[audio]\nchunk_ms = 20\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.audio.chunk_ms = 30  # type: ignore[misc]


def test_a_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == (f"{tmp_path}/nope.toml: no such file (name another with "
                               "--config or $EDGE_AGENT_CONFIG; agent.example.toml documents "
                               "every key)")


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_an_unreadable_file_says_permission_denied(write_config: WriteConfig) -> None:
    path = write_config("[logging]\n")
    path.chmod(0o600)
    if os.geteuid() != 0:
        path.chmod(0o000)
        with pytest.raises(ConfigError, match="permission denied"):
            load_config(path)
        return
    # As root every file is readable: check as "nobody" (the effective uid decides).
    os.seteuid(65534)
    try:
        with pytest.raises(ConfigError) as info:
            load_config(path)
    finally:
        os.seteuid(0)
    assert str(info.value).startswith(f"{path}: permission denied")


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"[live]\nvoice = \"\xff\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text"


def test_a_toml_syntax_error_names_its_line(write_config: WriteConfig) -> None:
    path = write_config("[live]\nmodel = \"m\"\nvoice = Puck\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(path), 3)
    assert problem.message.startswith("not valid TOML: ")
    assert "at line" not in problem.message


def test_parse_config_from_text_names_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[audio]\nchunk_ms = 5\n", source="inline.toml")
    assert str(info.value) == "inline.toml:2: audio.chunk_ms: must be between 10 and 200, got 5"
