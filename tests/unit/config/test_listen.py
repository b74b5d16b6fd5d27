"""[listen]: the mode, the wake words, and the older keys that chose a mode before it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from agent.config import AgentConfig, ListenConfig, diff_sections, load_config, parse_config
from agent.media.audio import wakeword
from tests.unit.config.conftest import WriteConfig

Problems = Callable[[str], list[str]]
PTT_BUTTON = "[gpio.status]\npush_to_talk_button = 24\n"


def test_an_empty_file_listens_always_and_names_okay_nabu() -> None:
    listen = AgentConfig().listen
    assert listen == ListenConfig()
    assert listen.mode == "always" and listen.wake_words == ("okay_nabu",)
    assert parse_config("").listen == listen


def test_wake_word_mode_with_its_options() -> None:
    listen = parse_config("""
[listen]
mode = "wake_word"
wake_words = ["okay_nabu", "hey_jarvis"]
refractory_s = 1.5
wake_batch_ms = 40
pre_roll_ms = 500
conversation_timeout_s = 20
chime = true
camera = "always"
""").listen
    assert listen == ListenConfig(mode="wake_word", wake_words=("okay_nabu", "hey_jarvis"),
                                  refractory_s=1.5, wake_batch_ms=40, pre_roll_ms=500,
                                  conversation_timeout_s=20, chime=True, camera="always")


def test_the_older_keys_still_choose_the_mode() -> None:
    ptt = parse_config("[audio]\npush_to_talk = true\n" + PTT_BUTTON).listen
    assert ptt.mode == "push_to_talk"
    gate = parse_config("[audio.vad_gate]\nenabled = true\npreroll_ms = 500\n").listen
    assert (gate.mode, gate.pre_roll_ms) == ("vad_gate", 500)
    both = parse_config("[audio]\npush_to_talk = true\n[audio.vad_gate]\nenabled = true\n"
                        + PTT_BUTTON).listen
    assert both.mode == "push_to_talk"  # as before: the button wins


def test_an_older_key_beside_listen_mode_says_what_to_write(problems_of: Problems) -> None:
    assert problems_of("""
        [audio]
        push_to_talk = true

        [audio.vad_gate]
        enabled = true

        [listen]
        mode = "wake_word"
    """) == [
        'agent.toml:2: audio.push_to_talk: listen.mode chooses how the device listens: remove '
        'this key (listen.mode = "push_to_talk" does what it did)',
        'agent.toml:5: audio.vad_gate.enabled: listen.mode chooses how the device listens: '
        'remove this key (listen.mode = "vad_gate" does what it did)',
    ]
    # Written false they say nothing listen.mode contradicts.
    config = parse_config('[audio]\npush_to_talk = false\n[listen]\nmode = "vad_gate"\n')
    assert config.listen.mode == "vad_gate"


def test_bad_listen_values(problems_of: Problems) -> None:
    assert problems_of("""
        [listen]
        mode = "wakeword"
        wake_words = ["okay_nabo", "hey_jarvis"]
        conversation_timeout_s = 0
        camera = "never"
    """) == [
        'agent.toml:2: listen.mode: must be one of "wake_word", "always", "vad_gate", '
        '"push_to_talk", got "wakeword" (did you mean "wake_word"?)',
        "agent.toml:3: listen.wake_words[0]: unknown wake word 'okay_nabo': one of alexa, "
        "hey_jarvis, hey_mycroft, okay_nabu or the path of a microWakeWord model's .json",
        "agent.toml:4: listen.conversation_timeout_s: must be between 1 and 3600, got 0",
        'agent.toml:5: listen.camera: must be one of "conversation", "always", got "never"',
    ]
    [empty] = problems_of("[listen]\nwake_words = []\n")
    assert "listen.wake_words: must be a list of 1 to 8 wake words" in empty
    [many] = problems_of("[listen]\nwake_words = " + json.dumps(["alexa"] * 9) + "\n")
    assert "must be a list of 1 to 8" in many
    [numbers] = problems_of("[listen]\nwake_words = [1]\n")
    assert "must be a list" in numbers
    [batch] = problems_of("[listen]\nwake_batch_ms = 600\n")
    assert "listen.wake_batch_ms: must be between 0 and 500, got 600" in batch


def test_push_to_talk_mode_needs_its_button(problems_of: Problems) -> None:
    assert problems_of('[listen]\nmode = "push_to_talk"\n') == [
        "agent.toml:2: listen.mode: needs a button: set gpio.status.push_to_talk_button to its "
        "GPIO number"]
    assert problems_of("[audio]\npush_to_talk = true\n") == [
        "agent.toml:2: audio.push_to_talk: needs a button: set gpio.status.push_to_talk_button "
        "to its GPIO number"]


def test_a_custom_model_is_found_beside_the_config(write_config: WriteConfig,
                                                    problems_of: Problems) -> None:
    path = write_config('[listen]\nmode = "wake_word"\nwake_words = ["models/computer.json"]\n')
    models = path.parent / "models"
    models.mkdir()
    bundled = wakeword._bundled_dir()
    assert bundled is not None
    shutil.copy(bundled / "alexa.tflite", models / "computer.tflite")
    doc = json.loads((bundled / "alexa.json").read_text())
    (models / "computer.json").write_text(json.dumps({**doc, "model": "computer.tflite"}))
    assert load_config(path).listen.wake_words == (models / "computer.json",)
    (models / "computer.tflite").write_bytes(b"not a model")
    [problem] = problems_of('[listen]\nwake_words = ["models/computer.json"]\n')
    assert "listen.wake_words[0]" in problem and "not a TensorFlow Lite model" in problem


def test_a_listen_change_is_its_own_section(tmp_path: Path) -> None:
    old = parse_config("")
    new = parse_config('[listen]\nmode = "wake_word"\n')
    assert diff_sections(old, new) == {"listen"}
