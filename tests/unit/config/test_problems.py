"""A bad config: every problem is found at once, each with file, line and key path."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.config import ConfigError, load_config
from tests.unit.config.conftest import WriteConfig

Problems = Callable[[str], list[str]]


def test_every_problem_is_reported_in_one_error(problems_of: Problems) -> None:
    assert problems_of('''
        [live]
        backend = "vertx"
        temperature = "hot"

        [live.vad]
        enabld = true

        [audio]
        chunk_ms = 500
        echo = "full"

        [camera]
        width = 767
        sorce = "v4l2"

        [loging]
        level = "debug"
    ''') == [
        'agent.toml:2: live.backend: must be one of "gemini", "vertex", "firebase-google", '
        '"firebase-vertex", "emulator", got "vertx" (did you mean "vertex"?)',
        'agent.toml:3: live.temperature: must be a number, got "hot"',
        'agent.toml:6: live.vad.enabld: unknown key; did you mean "enabled"?',
        "agent.toml:9: audio.chunk_ms: must be between 10 and 200, got 500",
        'agent.toml:10: audio.echo: must be one of "aec", "half_duplex", "none", got "full"',
        "agent.toml:13: camera.width: must be an even number of pixels, got 767",
        'agent.toml:14: camera.sorce: unknown key; did you mean "source"?',
        'agent.toml:16: loging: unknown section; did you mean "logging"?',
    ]


def test_an_unknown_key_without_a_near_miss_lists_the_known_ones(problems_of: Problems) -> None:
    [problem] = problems_of("[health]\nping = true\n")
    assert problem == "agent.toml:2: health.ping: unknown key; expected one of: watchdog"


@pytest.mark.parametrize(("toml", "line", "expected"), [
    ("[audio]\nchunk_ms = 40.5", 2, "audio.chunk_ms: must be a whole number, got 40.5"),
    ("[audio]\nagc = 1", 2, "audio.agc: must be true or false, got 1"),
    ("[audio]\ngain_db = 90", 2, "audio.gain_db: must be between -40 and 60, got 90"),
    ("[audio]\nchannel = 2\nchannels = 2", 1, "audio: channel must be 'mix' or 0..1, got 2"),
    ('[audio]\nshift = 9\nsample_format = "int16"', 1,
     "audio: shift must be 0..7 for int16, got 9"),
    ('[audio]\nmic = "inmp442"', 2,
     "audio.mic: unknown mic profile 'inmp442'; known: ics43434, inmp441, respeaker-2mic, "
     "sph0645, usb-generic"),
    ("[audio]\ninput = true", 2, 'audio.input: must be a device name or index, "wav:PATH", '
     '"tone", "tone:HZ" or "silence", got true'),
    ('[audio]\ninput = "tone:90000"', 2,
     'audio.input: a tone must be "tone" or "tone:HZ" with 20 <= HZ <= 7900, got "tone:90000"'),
    ('[audio.output]\ndevice = "wav:/nonexistent/dir/x.wav"', 2,
     "audio.output.device: the folder for /nonexistent/dir/x.wav does not exist"),
    ('[camera]\nsource = "image-folder"', 1,
     'camera.path: is required with source = "image-folder" (a folder of JPEG/PNG files, '
     "or one file)"),
    ('[camera]\ndevice = "/dev/video2"', 2, 'camera.device: is only used with source = "v4l2"'),
    ("[camera]\ninterval_s = 5\nmax_interval_s = 2", 3,
     "camera.max_interval_s: must be at least interval_s (5), got 2"),
    ('[live]\nbackend = "vertex"', 1, 'live.project_id: is required with backend = "vertex"'),
    ('[live]\napp_id = "1:2:web:3"', 2,
     "live.app_id: is only used with the firebase-google and firebase-vertex backends"),
    ('[live]\nendpoint = "http://localhost"', 2,
     'live.endpoint: must be a WebSocket URL (ws://... or wss://...), got "http://localhost"'),
    ('[live]\nresponse_modalities = ["AUDIO", "TEXT"]', 2,
     'live.response_modalities: must be ["AUDIO"] or ["TEXT"] (a Live session answers in one '
     "modality)"),
    ("[live.compression]\ntrigger_tokens = 10000\ntarget_tokens = 20000", 3,
     "live.compression.target_tokens: must be less than trigger_tokens (10000), got 20000"),
    ('[live.credentials]\nenv = "GEMINI KEY"', 2,
     'live.credentials.env: must be an environment variable name, got "GEMINI KEY"'),
    ("[reconnect]\nbackoff_base_s = 10\nbackoff_cap_s = 5", 3,
     "reconnect.backoff_cap_s: must be at least backoff_base_s (10), got 5"),
    ("[reconnect]\nbackoff_base_s = 0", 2,
     "reconnect.backoff_base_s: must be greater than 0 and at most 60, got 0"),
    ('[logging]\nlevel = "verbose"', 2, 'logging.level: must be one of "debug", "info", '
     '"warning", "error", got "verbose"'),
    ("audio = 5", 1, "audio: must be a table, got 5"),
])
def test_one_bad_value(problems_of: Problems, toml: str, line: int, expected: str) -> None:
    """A problem sits on its key's line, or on its table's header when the key is absent."""
    assert problems_of(toml + "\n") == [f"agent.toml:{line}: {expected}"]


def test_a_wav_input_that_is_not_a_wav_file(problems_of: Problems, write_config: WriteConfig
                                            ) -> None:
    path = write_config("")
    (path.parent / "notes.wav").write_text("hello")
    [problem] = problems_of('[audio]\ninput = "wav:notes.wav"\n')
    assert problem == "agent.toml:2: audio.input: not a WAV file: notes.wav"


def test_a_pin_used_twice_names_both_places(problems_of: Problems) -> None:
    assert problems_of('''
        [gpio.status]
        leds = { connected = 5, error = 6 }

        [[tools]]
        name = "lamp"
        description = "The lamp."
        kind = "digital_output"
        pin = 17

        [[tools]]
        name = "fan"
        description = "The fan."
        kind = "pwm"
        pin = 6
    ''') == ["agent.toml:2: gpio.status.leds.error: GPIO6 is already used by tools[1].pin; "
             "each pin can be claimed once"]


def test_tool_problems_get_lines_and_suggestions(problems_of: Problems) -> None:
    assert problems_of('''
        [gpio]
        pin_factory = "mock"

        [[tools]]
        name = "lamp"
        description = "The lamp."
        kind = "digital_output"
        pin = 17
        activ_low = true

        [[tools]]
        name = "servo"
        description = "A servo."
        kind = "servo"
        pin = 40
        limits = [-100, 100]
    ''') == [
        'agent.toml:9: tools[0].activ_low: unknown key for kind "digital_output"; '
        'did you mean "active_low"?',
        "agent.toml:15: tools[1].pin: must be a BCM GPIO number from 0 to 27, got 40",
        "agent.toml:16: tools[1].limits: must be [low, high] with -90 <= low < high <= 90, "
        "got [-100, 100]",
    ]


def test_gpio_and_tools_of_the_wrong_shape(problems_of: Problems) -> None:
    assert problems_of('gpio = "lgpio"\ntools = 3\n') == [
        'agent.toml:1: gpio: must be a table, got "lgpio"',
        "agent.toml:2: tools: must be an array of tables ([[tools]]), got 3",
    ]


def test_push_to_talk_needs_its_button(problems_of: Problems, write_config: WriteConfig
                                       ) -> None:
    assert problems_of("[audio]\npush_to_talk = true\n") == [
        "agent.toml:2: audio.push_to_talk: needs a button: set "
        "gpio.status.push_to_talk_button to its GPIO number"]
    ok = load_config(write_config(
        "[audio]\npush_to_talk = true\n[gpio.status]\npush_to_talk_button = 24\n"))
    assert ok.audio.push_to_talk


ADVICE = ("secrets do not belong in the config file; put the key in a file only root can "
          "read and name it in live.credentials.api_key_file, or load it with the unit's "
          "LoadCredential=api-key:/etc/edge-agent/api-key (live.credentials.credential), or "
          "set the GEMINI_API_KEY environment variable (live.credentials.env)")


def test_secrets_written_inline_are_refused_with_directions(problems_of: Problems) -> None:
    fake_key = "AIza" + "Sy" + "B" * 33
    problems = problems_of(f'''
        [live]
        api_key = "abc123"

        [live.credentials]
        token = "xyz"
        api_key_file = "{fake_key}"

        [[tools]]
        name = "door"
        description = "Door."
        kind = "custom"
        handler = "door:open"
        parameters.type = "object"
        parameters.properties.code.type = "string"
        parameters.properties.code.enum = ["{fake_key}"]
    ''')
    assert [p for p in problems if ADVICE in p] == [
        f"agent.toml:2: live.api_key: {ADVICE}",
        f"agent.toml:5: live.credentials.token: {ADVICE}",
        f"agent.toml:6: live.credentials.api_key_file: {ADVICE}",
        f"agent.toml:15: tools[0].parameters.properties.code.enum[0]: {ADVICE}",
    ]
    # Reported as a secret, not as an unknown key as well.
    assert not any("unknown key" in p for p in problems)
    assert not any(fake_key in p for p in problems)


def test_problems_carry_file_line_and_key_apart(write_config: WriteConfig) -> None:
    path = write_config("[audio]\n\nchunk_ms = 500\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.key, problem.key_path) == (
        str(path), 3, "audio.chunk_ms", ("audio", "chunk_ms"))
    assert problem.message == "must be between 10 and 200, got 500"
