"""Config files built to break the loader: huge numbers, runaway nesting, paths that name no
file or a file without end, endpoints that cannot be connected to. Each is one problem with
file, line and key, `edge-agent check-config` exits 2, and nothing blocks or reads without
bound."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import ConfigError, load_config, parse_config
from agent.config.document import MAX_NESTING
from agent.config.load import MAX_CONFIG_BYTES
from tests.unit.config.conftest import WriteConfig

# file:line: key: message, the form of every problem with a line.
_PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<rest>.+)$")

HOSTILE: list[tuple[str, str, int, str]] = [
    # (case, TOML, line, the start of what follows "file:line: ")
    ("5000-digit integer", "[audio]\nchunk_ms = " + "9" * 5000 + "\n", 2,
     "a number with thousands of digits"),
    ("5000-digit integer with underscores",
     "# a comment\n\n[live]\ntemperature = 1" + "_000" * 1500 + "\n", 4,
     "a number with thousands of digits"),
    ("arrays nested past the stack", "[camera]\nwidth = " + "[" * 5000 + "]" * 5000 + "\n", 2,
     "not valid TOML here: arrays or inline tables nested too deeply"),
    ("inline tables nested past the stack", "[gpio]\nx = " + "{a=" * 3000 + "1" + "}" * 3000,
     2, "not valid TOML here: arrays or inline tables nested too deeply"),
    ("arrays nested deeper than the config goes",
     "[camera]\n\nwidth = " + "[" * 40 + "]" * 40 + "\n", 3,
     f"camera.width[0]{'[0]' * (MAX_NESTING - 2)}: nested deeper than {MAX_NESTING} levels"),
    ("400-digit integer where a float goes", "[live]\ntemperature = " + "9" * 400 + "\n", 2,
     "live.temperature: must be between 0 and 2, got a number of 400 digits"),
    ("400-digit integer in a tool's float", '[[tools]]\nname = "p"\ndescription = "d"\n'
     'kind = "pulse"\npin = 5\nmax_duration_s = ' + "9" * 400 + "\n", 6,
     "tools[0].max_duration_s: must be greater than 0 and at most 600, got a number of 400"),
    ("400-digit float", "[live]\ntemperature = " + "9" * 400 + ".5\n", 2,
     "live.temperature: must be a number, got inf"),
    ("~nosuchuser key file", '[live.credentials]\napi_key_file = "~nosuchuser/key"\n', 2,
     'live.credentials.api_key_file: "~nosuchuser" names no user'),
    ("~nosuchuser camera folder",
     '[camera]\nsource = "image-folder"\npath = "~nosuchuser/pics"\n', 3,
     'camera.path: "~nosuchuser" names no user'),
    ("~nosuchuser mic profile", '[audio]\nmic = "~nosuchuser/mic.toml"\n', 2,
     'audio.mic: "~nosuchuser" names no user'),
    ("~nosuchuser wav input", '[audio]\ninput = "wav:~nosuchuser/a.wav"\n', 2,
     'audio.input: "~nosuchuser" names no user'),
    ("~nosuchuser wav output", '[audio.output]\ndevice = "wav:~nosuchuser/a.wav"\n', 2,
     'audio.output.device: "~nosuchuser" names no user'),
    ("NUL in the key file", '[live.credentials]\napi_key_file = "/etc/a\\u0000b"\n', 2,
     "live.credentials.api_key_file: a path must not contain a NUL character"),
    ("NUL in the wav input", '[audio]\ninput = "wav:/tmp/a\\u0000b.wav"\n', 2,
     "audio.input: a path must not contain a NUL character"),
    ("NUL in the wav output", '[audio.output]\ndevice = "wav:/tmp/a\\u0000b/x.wav"\n', 2,
     "audio.output.device: a path must not contain a NUL character"),
    ("NUL in the mic path", '[audio]\nmic = "/tmp/a\\u0000b.toml"\n', 2,
     "audio.mic: a path must not contain a NUL character"),
    ("NUL in the mic name", '[audio]\nmic = "inmp\\u0000441"\n', 2,
     "audio.mic: must not contain a NUL character"),
    ("NUL in the camera folder", '[camera]\nsource = "image-folder"\npath = "/a\\u0000b"\n', 3,
     "camera.path: a path must not contain a NUL character"),
    ("mic profile /dev/zero", '[audio]\nmic = "/dev/zero"\n', 2,
     "audio.mic: /dev/zero: a mic profile must be a regular file"),
    ("wav input /dev/zero", '[audio]\ninput = "wav:/dev/zero"\n', 2,
     "audio.input: is not a regular file"),
    ("unterminated string at the end", '[live]\nmodel = "gemini', 2,
     "not valid TOML: unterminated string"),
    ("unterminated multi-line string at the end", '[live]\n\nsystem_instruction = """x\ny', 3,
     "not valid TOML: unterminated string"),
    ("endpoint with a port that is not a number",
     '[live]\nendpoint = "ws://127.0.0.1:notaport"\n', 2,
     "live.endpoint: must be a WebSocket URL (ws://... or wss://...), with a port from 1"),
]


@pytest.mark.parametrize(("toml", "line", "message"),
                         [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_a_hostile_config_is_one_problem_with_its_line(
        write_config: WriteConfig, toml: str, line: int, message: str) -> None:
    path = write_config(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    match = _PROBLEM.match(str(problem))
    assert match, str(problem)
    assert (match["file"], int(match["line"])) == (str(path), line)
    assert match["rest"].startswith(message), match["rest"]


@pytest.mark.usefixtures("restore_logging")  # check-config sets up logging
@pytest.mark.parametrize("toml", [HOSTILE[0][1], HOSTILE[2][1], HOSTILE[8][1], HOSTILE[19][1]],
                         ids=["digits", "nesting", "no-such-user", "dev-zero-mic"])
def test_check_config_exits_2_with_the_problem(write_config: WriteConfig, toml: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(toml)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and "Traceback" not in err
    assert "1 problem(s)" in err


@pytest.mark.parametrize("kind", ["device", "fifo", "huge", "huge-text"])
def test_the_config_file_is_read_bounded_and_never_blocks(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "agent.toml"
    if kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking open would wait for ever
    else:
        path.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"not a regular file|larger than 1024 KiB") as info:
        if kind == "huge-text":
            parse_config(path.read_text(), source=path)
        else:
            load_config(path)
    assert len(info.value.problems) == 1


@pytest.mark.parametrize("target", ["mic", "wav"])
def test_a_fifo_named_by_the_config_never_blocks(write_config: WriteConfig, tmp_path: Path,
                                                 target: str) -> None:
    fifo = tmp_path / ("mic.toml" if target == "mic" else "in.wav")
    os.mkfifo(fifo)
    toml = f'[audio]\nmic = "{fifo}"\n' if target == "mic" else f'[audio]\ninput = "wav:{fifo}"\n'
    with pytest.raises(ConfigError, match="regular file"):
        load_config(write_config(toml))


def test_a_mic_profile_larger_than_any_profile_is_refused(write_config: WriteConfig,
                                                          tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("[capture]\n" + "# padding\n" * 10_000)
    with pytest.raises(ConfigError, match="larger than 64 KiB: not a mic profile"):
        load_config(write_config(f'[audio]\nmic = "{big}"\n'))


ENDPOINTS_REFUSED = [
    ("ws://127.0.0.1:notaport", "with a port from 1 to 65535"),
    ("ws://127.0.0.1:99999", "with a port from 1 to 65535"),
    ("ws://127.0.0.1:0", "with a port from 1 to 65535"),
    ("ws://127.0.0.1:-1", "with a port from 1 to 65535"),
    ("ws://127.0.0.1:", "with a port from 1 to 65535"),
    ("ws://", "with a host"),
    ("ws:///path", "with a host"),
    ("http://localhost", 'got "http://localhost"'),
    ("ws://user:hunter2-planted@host", "without user:password@"),
    ("wss://host/ws?key=planted-endpoint-key", "without a key in it"),
    ("wss://host/ws?access_token=planted-endpoint-key", "without a key in it"),
    ("wss://host/ws?alt=json", "without ?query or #fragment"),
    ("wss://host/ws#x", "without ?query or #fragment"),
    ("wss://host name", "printable ASCII without spaces"),
    ("wss://h\u00f6st", "printable ASCII without spaces"),
    ("wss://[::1", "must be a WebSocket URL"),
]


@pytest.mark.parametrize(("endpoint", "reason"), ENDPOINTS_REFUSED,
                         ids=[e for e, _ in ENDPOINTS_REFUSED])
def test_an_endpoint_is_validated_fully(problems_of: object, endpoint: str,
                                        reason: str) -> None:
    assert callable(problems_of)
    [problem] = problems_of(f'[live]\nendpoint = "{endpoint}"\n')
    assert problem.startswith("agent.toml:2: live.endpoint: must be a WebSocket URL")
    assert reason in problem
    assert "planted" not in problem  # a credential written in it is never repeated


@pytest.mark.parametrize("endpoint", ["ws://127.0.0.1:9000", "wss://host", "wss://host/prefix/",
                                      "ws://[::1]:8080", "ws://localhost:65535/x"])
def test_a_good_endpoint_is_kept(write_config: WriteConfig, endpoint: str) -> None:
    config = load_config(write_config(f'[live]\nendpoint = "{endpoint}"\n'))
    assert config.live.endpoint == endpoint
