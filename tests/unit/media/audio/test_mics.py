"""Mic profiles: the shipped ones load, and a bad one says which file and key are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.media.audio import MicProfileError, available_mic_profiles, load_mic_profile
from agent.media.audio.mics import read_mic_profile


def test_every_shipped_mic_profile_loads() -> None:
    names = available_mic_profiles()
    assert {"inmp441", "ics43434", "sph0645", "respeaker-2mic", "usb-generic"} <= set(names)
    assert load_mic_profile("sph0645").shift == 14
    inmp = load_mic_profile("inmp441")
    assert (inmp.rate, inmp.channels, inmp.sample_format, inmp.shift) == (48000, 2, "int32", 8)
    assert read_mic_profile("respeaker-2mic").device == "seeed2micvoicec"


def test_repository_hardware_mics_is_the_shipped_folder() -> None:
    repo_copy = Path(__file__).parents[4] / "hardware" / "mics"
    assert sorted(p.stem for p in repo_copy.glob("*.toml")) == available_mic_profiles()


def test_mic_profile_errors_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(MicProfileError, match="unknown mic profile 'nope'; known: ics43434"):
        load_mic_profile("nope")
    bad = tmp_path / "mine.toml"
    bad.write_text("[capture]\nrate = 48000\nchannels = 2\nchanel = 1\n")
    with pytest.raises(MicProfileError, match=r"mine\.toml: capture\.chanel: unknown key"):
        load_mic_profile(bad)
    bad.write_text('[capture]\nrate = "fast"\n')
    with pytest.raises(MicProfileError, match=r"capture\.rate: expected int"):
        load_mic_profile(bad)
    bad.write_text("[capture]\nchannels = 1\nchannel = 1\n")
    with pytest.raises(MicProfileError, match="channel must be"):
        load_mic_profile(bad)
    bad.write_text("[capture\n")
    with pytest.raises(MicProfileError, match=r"mine\.toml"):
        load_mic_profile(bad)
