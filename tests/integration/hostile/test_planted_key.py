"""A recognisable key is planted in every place the agent takes one from (a key file saved with
a byte order mark, one with a Windows line end, the environment, ``$CREDENTIALS_DIRECTORY``),
and the real commands run with it: ``run`` against an emulator that refuses it,
``check-config``, ``devices`` and ``demo``. Every output is collected (stdout, stderr and the
JSON logs on it, the sd_notify datagrams of a NOTIFY_SOCKET the test binds, every file written
under the temp, state and runtime folders it hands them) together with the exception messages
of a session built in-process with the key. The key, URL-encoded or base64, appears nowhere."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from agent.build import Builder
from agent.config import ConfigError, load_api_key, load_config
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from tests.support.emulator_client import write_spoken_commands

# Printable ASCII that matches none of the log redaction's generic patterns: only the key
# registered at load time can hide it. "+" and "/" make its URL-encoded forms differ.
KEY = "PLANTED+key/7f3a9c2e41b8d6055e19ac"
FORMS = {
    "raw": KEY,
    "url-encoded": quote(KEY, safe=""),
    "form-encoded": quote_plus(KEY),
    "base64": base64.b64encode(KEY.encode()).decode().rstrip("="),
    "base64url": base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("="),
}
T = 40.0


@dataclass
class Outputs:
    """Everything one command left behind, by where it was found."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str) -> None:
        self.texts[where] = self.texts.get(where, "") + text

    def leaks(self) -> list[str]:
        return [f"{form} form in {where}" for where, text in self.texts.items()
                for form, value in FORMS.items() if value in text]


@dataclass
class Sandbox:
    """The folders a command gets: its home, temp, state, runtime and working folders."""

    root: Path
    planted: set[Path] = field(default_factory=set)  # the key's own files, not outputs
    commands: int = 0  # how many ran: each gets its own notify socket

    def __post_init__(self) -> None:
        for name in ("home", "tmp", "state", "run", "work", "creds"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("NOTIFY_", "WATCHDOG_", "GEMINI_", "CREDENTIALS_"))}
        keep.update(HOME=str(self.root / "home"), TMPDIR=str(self.root / "tmp"),
                    STATE_DIRECTORY=str(self.root / "state"),
                    RUNTIME_DIRECTORY=str(self.root / "run"),
                    XDG_RUNTIME_DIR=str(self.root / "run"), **extra)
        return keep

    def plant(self, path: Path, text: str) -> Path:
        path.write_text(text, encoding="utf-8", newline="")
        path.chmod(0o600)
        self.planted.add(path)
        return path

    def speak_commands(self) -> None:
        """The WAV file the configs' ``input`` plays (an input, not an output)."""
        write_spoken_commands(self.root / "work" / "commands.wav")
        self.planted.add(self.root / "work" / "commands.wav")

    def files_written(self, outputs: Outputs) -> None:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in self.planted:
                outputs.add(f"file {path.relative_to(self.root)}",
                            path.read_bytes().decode("latin-1"))


async def run_command(sandbox: Sandbox, args: list[str], env: dict[str, str], outputs: Outputs,
                      *, stop_after: float | None = None) -> int:
    """Run ``edge-agent ARGS`` under a NOTIFY_SOCKET; SIGTERM it after ``stop_after`` s."""
    sandbox.commands += 1
    notify_path = sandbox.root / "run" / f"notify-{sandbox.commands}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", *args, cwd=sandbox.root / "work",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**env, "NOTIFY_SOCKET": str(notify_path)},
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    datagrams: list[str] = []

    async def read_notes() -> None:
        while True:
            datagrams.append((await loop.sock_recv(notify, 65536)).decode("utf-8", "replace"))

    reader = asyncio.create_task(read_notes())
    communicate = asyncio.ensure_future(process.communicate())
    try:
        if stop_after is not None:
            done, _ = await asyncio.wait({communicate}, timeout=stop_after)
            if not done:
                process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(T):
            stdout, stderr = await communicate
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.sleep(0.1)
        reader.cancel()
        notify.close()
    name = " ".join(args[:1])
    outputs.add(f"{name} stdout", stdout.decode("utf-8", "replace"))
    outputs.add(f"{name} stderr", stderr.decode("utf-8", "replace"))
    outputs.add(f"{name} sd_notify", "\n".join(datagrams))
    assert process.returncode is not None
    return process.returncode


def config_text(endpoint: str, tmp: Path, credentials: str = "") -> str:
    return f"""
[live]
backend = "gemini"
endpoint = "{endpoint}"

[live.credentials]
{credentials}

[audio]
input = "wav:{tmp / "commands.wav"}"
echo = "none"

[audio.output]
device = "wav:{tmp / "reply.wav"}"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[logging]
level = "debug"
format = "json"
"""


@dataclass
class Variant:
    name: str
    credentials: str  # the [live.credentials] lines
    env: dict[str, str]


def variants(sandbox: Sandbox) -> list[Variant]:
    bom = sandbox.plant(sandbox.root / "key-bom", "\ufeff" + KEY + "\n")
    crlf = sandbox.plant(sandbox.root / "key-crlf", KEY + "\r\n")
    sandbox.plant(sandbox.root / "creds" / "api-key", "\ufeff" + KEY + "\n")
    return [
        Variant("file with a byte order mark", f'api_key_file = "{bom}"', {}),
        Variant("file with a Windows line end", f'api_key_file = "{crlf}"', {}),
        Variant("environment", "", {"GEMINI_API_KEY": "\ufeff" + KEY}),
        Variant("systemd credential", "",
                {"CREDENTIALS_DIRECTORY": str(sandbox.root / "creds")}),
    ]


@pytest.fixture
async def refusing_emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(api_key="the-one-key-it-accepts")) as emulator:
        yield emulator


async def test_a_planted_key_appears_in_no_output(refusing_emulator: Emulator,
                                                  tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.speak_commands()
    outputs = Outputs()
    codes: dict[str, int] = {}
    for variant in variants(sandbox):
        config = sandbox.root / "work" / f"{variant.name.replace(' ', '-')}.toml"
        config.write_text(config_text(refusing_emulator.url, sandbox.root / "work",
                                      variant.credentials))
        env = sandbox.env(**variant.env)
        codes[f"run {variant.name}"] = await run_command(
            sandbox, ["run", "--config", str(config)], env, outputs, stop_after=20.0)
        codes[f"check-config {variant.name}"] = await run_command(
            sandbox, ["check-config", "--config", str(config)], env, outputs)
    env = sandbox.env(GEMINI_API_KEY=KEY)
    codes["devices"] = await run_command(sandbox, ["devices"], env, outputs)
    codes["demo"] = await run_command(sandbox, ["demo", "--timeout", "30"], env, outputs)
    sandbox.files_written(outputs)

    assert outputs.leaks() == []
    # Not vacuous: each run reached the emulator with the key and was refused (EX_CONFIG),
    # said so in its logs and its STATUS, and check-config found the key.
    runs = {name: code for name, code in codes.items() if name.startswith("run ")}
    assert set(runs.values()) == {78}, codes
    assert refusing_emulator.connections >= len(runs)
    assert "session.failed" in outputs.texts["run stderr"]
    assert "STATUS=" in outputs.texts["run sd_notify"]
    assert outputs.texts["check-config stdout"].count("API key: found") == len(runs)
    assert codes["devices"] == 0 and codes["demo"] == 0


async def test_a_key_that_is_not_a_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.speak_commands()
    bad = sandbox.plant(sandbox.root / "key", KEY[:10] + "\u00e9" + KEY[10:] + "\n")
    config = sandbox.root / "work" / "agent.toml"
    config.write_text(config_text("ws://127.0.0.1:9", sandbox.root / "work",
                                  f'api_key_file = "{bad}"'))
    outputs = Outputs()
    code = await run_command(sandbox, ["run", "--config", str(config)], sandbox.env(), outputs)
    checked = await run_command(sandbox, ["check-config", "--config", str(config)],
                                sandbox.env(), outputs)
    with pytest.raises(ConfigError) as info:
        load_api_key(load_config(config), environ={})
    outputs.add("exception", str(info.value) + repr(info.value))
    sandbox.files_written(outputs)
    assert outputs.leaks() == []
    assert (code, checked) == (2, 0)
    assert f"{bad}: character 11 of the key is not printable ASCII" in outputs.texts["run stderr"]


async def test_a_session_refused_in_process_keeps_the_key_out_of_its_exceptions(
        refusing_emulator: Emulator, tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    write_spoken_commands(sandbox.root / "work" / "commands.wav")
    config_path = sandbox.root / "work" / "agent.toml"
    config_path.write_text(config_text(refusing_emulator.url, sandbox.root / "work"))
    config = load_config(config_path)
    key = load_api_key(config, environ={"GEMINI_API_KEY": "\ufeff" + KEY + "\n"})
    assert key == KEY, "normalised when loaded"
    outputs = Outputs()
    builder = Builder(api_key=key)
    parts = await builder.build(config)
    try:
        with pytest.raises(Exception) as info:
            async with asyncio.timeout(T):
                await parts.session.wait_live()
        failure = parts.session.failure
        assert failure is not None
        outputs.add("wait_live", f"{info.value}\n{info.value!r}")
        outputs.add("failure", f"{failure}\n{failure!r}\n{failure.__cause__!r}")
        outputs.add("status line", parts.session.stats.status_line())
        outputs.add("last error", str(parts.session.stats.last_error))
    finally:
        await builder.tear_down(parts)
    assert outputs.leaks() == []
    assert "API key" in outputs.texts["failure"]
