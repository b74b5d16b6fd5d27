"""[audio] echo and [audio.aec]: the default follows the output, every key is checked."""

from __future__ import annotations

import pytest

from agent.config import load_config
from agent.config.model import AudioConfig, AudioOutput
from tests.unit.config.conftest import WriteConfig
from tests.unit.config.test_problems import Problems


@pytest.mark.parametrize(("output", "policy"), [
    ("", "aec"),  # the default output is the default device
    ('device = "default"', "aec"),
    ('device = "USB"', "aec"),
    ("device = 2", "aec"),
    ('device = "null"', "half_duplex"),
    ('device = "wav:out.wav"', "half_duplex"),
])
def test_aec_is_the_default_with_a_speaker_device(write_config: WriteConfig, output: str,
                                                  policy: str) -> None:
    config = load_config(write_config(f"[audio.output]\n{output}\n"))
    assert config.audio.echo is None and config.audio.echo_policy == policy


def test_a_written_policy_wins_and_the_canceller_settings_are_read(
        write_config: WriteConfig) -> None:
    audio = load_config(write_config('''
        [audio]
        echo = "half_duplex"
        [audio.aec]
        delay_ms = 60
        noise_suppression = "high"
        [audio.aec.gain_control]
        enabled = true
        gain_db = 3
        max_gain_db = 20
    ''')).audio
    assert audio.echo_policy == "half_duplex"
    assert audio.aec.delay_ms == 60 and audio.aec.noise_suppression == "high"
    gain = audio.aec.gain_control
    assert (gain.enabled, gain.gain_db, gain.max_gain_db) == (True, 3.0, 20.0)
    assert AudioConfig().echo_policy == "aec"
    assert AudioConfig(output=AudioOutput(kind="null")).echo_policy == "half_duplex"


def test_every_canceller_key_is_checked_at_its_key(problems_of: Problems) -> None:
    assert problems_of('''
        [audio]
        echo = "aec"
        chunk_ms = 25
        [audio.aec]
        delay_ms = 900
        noise_suppression = "loud"
        gain_controll = 1
        [audio.aec.gain_control]
        enabled = "yes"
        max_gain_db = 70
        gain_db = -1
    ''') == [
        'agent.toml:3: audio.chunk_ms: must be a multiple of 10 with echo = "aec" (the '
        "canceller works in 10 ms frames), got 25",
        "agent.toml:5: audio.aec.delay_ms: must be between 0 and 400, got 900",
        'agent.toml:6: audio.aec.noise_suppression: must be one of "off", "low", "moderate", '
        '"high", "very_high", got "loud"',
        'agent.toml:7: audio.aec.gain_controll: unknown key; did you mean "gain_control"?',
        'agent.toml:9: audio.aec.gain_control.enabled: must be true or false, got "yes"',
        "agent.toml:10: audio.aec.gain_control.max_gain_db: must be between 0 and 50, got 70",
        "agent.toml:11: audio.aec.gain_control.gain_db: must be between 0 and 30, got -1",
    ]


def test_aec_with_a_simulated_speaker_is_refused(problems_of: Problems) -> None:
    assert problems_of('''
        [audio]
        echo = "aec"
        [audio.output]
        device = "null"
    ''') == ['agent.toml:2: audio.echo: "aec" needs a speaker device to take its reference '
             'from, and a null output makes no echo: use "half_duplex" or "none"']


def test_a_missing_library_is_a_problem_at_echo(problems_of: Problems,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pywebrtc_audio" else real(name, *a))
    problems = problems_of("[audio]\nchunk_ms = 40\n")
    assert len(problems) == 1 and "pip install pywebrtc-audio" in problems[0]
    assert problems[0].startswith("agent.toml: audio.echo:") or "audio.echo" in problems[0]
