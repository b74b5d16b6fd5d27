"""The hardware profiles and their selector (hardware/select_profile.py), without Ansible.

Every combination of board, mic, speaker and camera either gives an agent.toml the agent's
own loader accepts, or is refused with the reason; the rules that make a combination work
(an I2S amplifier sharing the mic's card, the speaker of a HAT) are checked one by one.
"""

from __future__ import annotations

import itertools
import math
import shutil
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agent.config import parse_config
from agent.media.audio import available_mic_profiles

HARDWARE = Path(__file__).resolve().parents[3] / "hardware"


def _select(sp: ModuleType, board: str = "pi5", mic: str = "inmp441",
            speaker: str = "max98357a", camera: str = "camera-module-3",
            hardware: Path = HARDWARE) -> Any:
    return sp.select_hardware(hardware, board=board, mic=mic, speaker=speaker, camera=camera)


def test_lists_every_profile_of_each_kind(select_profile: ModuleType) -> None:
    found = select_profile.available_profiles(HARDWARE)
    assert found["board"] == ["pi4", "pi5", "zero2w"]
    assert set(found["speaker"]) >= {"max98357a", "usb"}
    assert set(found["camera"]) >= {"camera-module-2", "camera-module-3", "usb-webcam", "none"}
    # A mic profile the agent ships but provisioning does not know would be unselectable.
    assert found["mic"] == available_mic_profiles()


def test_every_camera_file_has_provisioning_data(select_profile: ModuleType) -> None:
    files = sorted(p.stem for p in (HARDWARE / "cameras").glob("*.toml"))
    assert sorted(set(select_profile.available_profiles(HARDWARE)["camera"]) - {"none"}) == files


def test_every_combination_gives_a_config_the_agent_accepts(
        select_profile: ModuleType) -> None:
    found = select_profile.available_profiles(HARDWARE)
    accepted, refused = 0, []
    for board, mic, speaker, camera in itertools.product(
            found["board"], found["mic"], found["speaker"], found["camera"]):
        try:
            selection = _select(select_profile, board, mic, speaker, camera)
        except select_profile.ProfileError as exc:
            refused.append((mic, speaker, str(exc)))
            continue
        text = select_profile.to_toml(selection.settings)
        config = parse_config(text, source=f"{board}+{mic}+{speaker}+{camera}")
        assert config.audio.mic == mic
        assert len(selection.boot_config) == len(set(selection.boot_config))
        # Every overlay the profiles load is an audio overlay on the one I2S bus.
        overlays = [line for line in selection.boot_config if line.startswith("dtoverlay=")]
        assert len(overlays) <= 1, ("two overlays would claim the I2S bus", overlays)
        accepted += 1
    assert accepted > 0
    # Only two kinds of refusal exist: an amplifier behind the ReSpeaker's bus, and the
    # ReSpeaker's own output without the ReSpeaker.
    for mic, speaker, message in refused:
        assert (mic, speaker) == ("respeaker-2mic", "max98357a") or (
            speaker == "respeaker-2mic" and mic != "respeaker-2mic"), message


def test_an_i2s_amplifier_plays_through_the_i2s_mics_card(select_profile: ModuleType) -> None:
    selection = _select(select_profile, mic="inmp441", speaker="max98357a")
    assert selection.boot_config == [
        "dtparam=i2s=on", "dtoverlay=googlevoicehat-soundcard", "camera_auto_detect=1"]
    assert 'slave.pcm "hw:CARD=sndrpigooglevoi,DEV=0"' in selection.alsa
    # That card plays 48 kHz only: the agent resamples, not ALSA's plug.
    assert selection.settings["audio"]["output"] == {"device": "edge_speaker", "rate": 48000}
    assert set(selection.reserved_pins) == {16, 18, 19, 20, 21}


def test_an_i2s_amplifier_alone_loads_its_own_overlay(select_profile: ModuleType) -> None:
    selection = _select(select_profile, mic="usb-generic", speaker="max98357a",
                        camera="usb-webcam")
    assert selection.boot_config == ["dtparam=i2s=on", "dtoverlay=max98357a,no-sdmode"]
    assert 'slave.pcm "hw:CARD=MAX98357A,DEV=0"' in selection.alsa
    assert selection.settings["audio"]["output"] == {"device": "edge_speaker"}
    assert selection.packages == ["v4l-utils"]


def test_usb_audio_needs_no_boot_config_and_no_alsa_file(select_profile: ModuleType) -> None:
    selection = _select(select_profile, board="pi4", mic="usb-generic", speaker="usb",
                        camera="none")
    assert selection.boot_config == []
    assert selection.alsa == ""
    assert selection.settings["camera"] == {"enabled": False}
    assert selection.reserved_pins == {}


def test_the_respeaker_hat_takes_the_bus(select_profile: ModuleType) -> None:
    with pytest.raises(select_profile.ProfileError, match="takes the I2S bus"):
        _select(select_profile, board="zero2w", mic="respeaker-2mic", speaker="max98357a")
    with pytest.raises(select_profile.ProfileError, match="needs mic profile respeaker-2mic"):
        _select(select_profile, mic="inmp441", speaker="respeaker-2mic")
    selection = _select(select_profile, board="zero2w", mic="respeaker-2mic",
                        speaker="respeaker-2mic", camera="none")
    assert "dtoverlay=seeed-2mic-voicecard" in selection.boot_config
    assert "seeed2micvoicec" in selection.alsa
    assert any("seeed-voicecard" in d for d in selection.drivers)


def test_camera_settings_are_the_camera_profiles_own_table(select_profile: ModuleType) -> None:
    for name in ("camera-module-2", "camera-module-3", "usb-webcam"):
        table = tomllib.loads((HARDWARE / "cameras" / f"{name}.toml").read_text())["camera"]
        assert _select(select_profile, camera=name).settings["camera"] == table


def test_pi_cameras_need_picamera2_from_the_pi_archive(select_profile: ModuleType) -> None:
    assert _select(select_profile, camera="camera-module-3").pi_packages == ["python3-picamera2"]
    assert _select(select_profile, camera="usb-webcam").pi_packages == []


def test_unknown_names_list_the_choices(select_profile: ModuleType) -> None:
    with pytest.raises(select_profile.ProfileError, match=r"no board profile 'pi3'.*pi4, pi5"):
        _select(select_profile, board="pi3")
    with pytest.raises(select_profile.ProfileError, match="no camera profile 'webcam'"):
        _select(select_profile, camera="webcam")
    with pytest.raises(select_profile.ProfileError, match="not a profile name"):
        _select(select_profile, mic="../mics/inmp441")


def test_a_malformed_profile_is_named_with_its_key(select_profile: ModuleType,
                                                    tmp_path: Path) -> None:
    copy = tmp_path / "hardware"
    shutil.copytree(HARDWARE, copy, symlinks=False)
    board = copy / "boards" / "pi5.toml"
    board.write_text(board.read_text() + 'boot_confg = ["dtparam=audio=off"]\n')
    with pytest.raises(select_profile.ProfileError, match=r"pi5\.toml: unknown key boot_confg"):
        _select(select_profile, hardware=copy)
    board.write_text('name = "pi5"\ndescription = "x"\nboot_config = "dtparam=audio=off"\n')
    with pytest.raises(select_profile.ProfileError, match="boot_config must be a list"):
        _select(select_profile, hardware=copy)


def test_pins_the_hardware_takes_are_refused_to_tools_and_leds(
        select_profile: ModuleType) -> None:
    selection = _select(select_profile, mic="inmp441")
    settings = {
        "tools": [{"name": "lamp", "kind": "digital_output", "pin": 17},
                  {"name": "mood", "kind": "rgb_led", "pins": {"red": 9, "green": 16, "blue": 11}},
                  {"name": "fan", "kind": "digital_output", "pin": 21}],
        "gpio": {"status": {"leds": {"connected": 5, "error": 19}, "mute_button": 23}},
    }
    problems = select_profile.pin_conflicts(settings, selection.as_dict())
    assert problems == [
        "tools[1] (mood) pins uses GPIO16, which the mic inmp441 profile takes "
        "(see hardware/WIRING.md)",
        "tools[2] (fan) pin uses GPIO21, which the mic inmp441 profile takes "
        "(see hardware/WIRING.md)",
        "gpio.status.leds uses GPIO19, which the mic inmp441 profile takes "
        "(see hardware/WIRING.md)",
    ]
    usb = _select(select_profile, mic="usb-generic", speaker="usb")
    assert select_profile.pin_conflicts(settings, usb) == []


def test_toml_round_trips_what_an_inventory_can_hold(select_profile: ModuleType) -> None:
    doc: dict[str, Any] = {
        "live": {"backend": "gemini", "temperature": 0.7, "system_instruction":
                 "Line one.\nSay \"hi\" to O'Brien\\n, then stop.\n",
                 "vad": {"enabled": True, "silence_duration_ms": 800},
                 "endpoint": None},
        "audio": {"mic": "inmp441", "channel": "mix", "gain_db": -3.5,
                  "output": {"device": "tab\there", "rate": 48000}},
        "gpio": {"status": {"leds": {"connected": 5}}},
        "tools": [
            {"name": "set_mood_light", "kind": "rgb_led", "pins": {"red": 9, "green": 10},
             "rate_limit": {"calls": 10, "per_s": 60}, "safe_state": "off"},
            {"name": "water", "kind": "custom", "parameters": {
                "type": "object", "required": ["seconds"],
                "properties": {"seconds": {"type": "number", "minimum": 1e-3}}}},
        ],
        "odd keys": {"a.b": "ünïcödé ☃ and \x7f and \x01", "": [1, [2, 3], {"x": False}]},
        "empty": {},
        "floats": {"big": 1e300, "inf": math.inf},
    }
    text = select_profile.to_toml(doc)
    back = tomllib.loads(text)
    expected = {**doc, "live": {k: v for k, v in doc["live"].items() if v is not None}}
    assert back == expected
    # Sections come in agent.example.toml's order whatever order the dict had.
    headers = [line for line in text.splitlines() if line.startswith("[")]
    assert headers.index("[live]") < headers.index("[audio]") < headers.index("[[tools]]")


def test_toml_refuses_what_toml_cannot_hold(select_profile: ModuleType) -> None:
    with pytest.raises(select_profile.ProfileError, match="cannot write"):
        select_profile.to_toml({"when": object()})


def test_command_line_prints_each_part(select_profile: ModuleType,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--board", "pi5", "--mic", "sph0645", "--speaker", "usb", "--camera", "none"]
    assert select_profile.main([*args, "--part", "boot"]) == 0
    assert capsys.readouterr().out == (
        "[all]\ndtparam=i2s=on\ndtoverlay=googlevoicehat-soundcard\n")
    assert select_profile.main([*args, "--part", "toml"]) == 0
    toml_text = capsys.readouterr().out
    assert tomllib.loads(toml_text)["audio"] == {"mic": "sph0645", "output": {"device": "USB"}}
    assert select_profile.main(args) == 0
    report = capsys.readouterr().out
    assert "GPIO16 (mic sph0645)" in report and "/etc/alsa/conf.d" in report
    assert select_profile.main(["--board", "pi5", "--mic", "nope", "--speaker", "usb",
                                "--camera", "none"]) == 2
    assert "no mic profile 'nope'" in capsys.readouterr().err
