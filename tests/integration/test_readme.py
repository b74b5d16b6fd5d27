"""The README's examples work as written."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator

README = Path(__file__).parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


async def test_the_client_example_runs_against_the_emulator(tmp_path: Path) -> None:
    [example] = [b for b in python_blocks() if "LiveGenerativeModel" in b]
    assert "ws://127.0.0.1:8765" in example
    async with Emulator(EmulatorConfig()) as emulator:
        script = tmp_path / "example.py"
        script.write_text(example.replace("ws://127.0.0.1:8765", emulator.url))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "Hello from the Pi" in out.decode(), out.decode()


def test_the_test_command_is_what_ci_runs() -> None:
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash tests/run.sh" in text
    assert "exec bash tests/run.sh" in ci


def test_the_config_examples_are_accepted(tmp_path: Path) -> None:
    from agent.config import parse_config

    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert any("[[tools]]" in b for b in blocks)
    for block in blocks:
        text = block
        if "[[tools]]" in block:  # tools need a pin factory that exists off a Pi
            text = '[gpio]\npin_factory = "mock"\n\n' + block
        config = parse_config(text, base_dir=tmp_path)
        assert config is not None
    tools = next(b for b in blocks if "[[tools]]" in b)
    config = parse_config('[gpio]\npin_factory = "mock"\n\n' + tools, base_dir=tmp_path)
    kinds = {tool.kind for tool in config.gpio.tools}
    assert kinds == {
        "digital_output", "pulse", "pwm", "servo", "rgb_led", "digital_input", "buzzer", "custom"
    }  # fmt: skip


def code_blocks(language: str = "") -> list[str]:
    """The README's fenced code blocks in ``language`` ("" for plain output blocks)."""
    blocks: list[str] = []
    fence: str | None = None  # the language of the open block
    lines: list[str] = []
    for line in README.read_text().splitlines():
        if not line.startswith("```"):
            lines.append(line)
        elif fence is None:
            fence, lines = line[3:].strip(), []
        else:
            if fence == language:
                blocks.append("\n".join(lines))
            fence = None
    return blocks


def output_block(starting_with: str) -> list[str]:
    """The lines of the README's plain code block whose first line starts so."""
    [block] = [b for b in code_blocks() if b.startswith(starting_with)]
    return block.splitlines()


def _shape(line: str) -> str:
    """A printed line with what varies from run to run masked: times, counts, temp paths."""
    line = re.sub(r"^\s*\d+\.\ds  ", "<t>  ", line)
    line = re.sub(r"/\S*reply\.wav", "<wav>", line)
    if line.lstrip().startswith("audio "):
        line = re.sub(r"\d+", "<n>", line)
    return line


def test_the_demo_prints_what_the_readme_shows(tmp_path: Path) -> None:
    shown = output_block("edge-agent demo:")
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--reply-wav", str(tmp_path / "reply.wav")],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [_shape(line) for line in result.stdout.splitlines()] == [_shape(x) for x in shown]


def test_check_config_prints_what_the_readme_shows(tmp_path: Path) -> None:
    shown = output_block("/etc/edge-agent/agent.toml:")
    lines = ["# padding"] * 40
    lines[10], lines[11] = "[audio]", "chunk_ms = 500"
    lines[29], lines[30] = "[camera]", "widht = 640"
    config = tmp_path / "agent.toml"
    config.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    printed = result.stderr.replace(str(config), "/etc/edge-agent/agent.toml").splitlines()
    assert printed == shown


def test_the_status_line_reads_as_the_readme_shows() -> None:
    from agent.live.resilient import SessionState, SessionStats

    [shown] = re.findall(r'Status: "(.*)"', README.read_text())
    stats = SessionStats(state=SessionState.LIVE, connections=3, resumptions=2,
                         replayed_chunks=12)
    assert stats.status_line() == shown


def test_try_it_installs_with_or_without_sudo(tmp_path: Path) -> None:
    [block] = [b for b in code_blocks("sh") if "edge-agent demo" in b]
    setup = "\n".join(line for line in block.splitlines() if "apt-get" in line or "sudo=" in line)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text('#!/bin/sh\necho "apt-get $*" >> "$LOG"\n')
    with_sudo = tmp_path / "with-sudo"
    with_sudo.mkdir()
    (with_sudo / "sudo").write_text('#!/bin/sh\necho sudo >> "$LOG"\nexec "$@"\n')
    for path in (*bin_dir.iterdir(), *with_sudo.iterdir()):
        path.chmod(0o755)
    for extra, expected in (([], ["apt-get"]), ([with_sudo], ["sudo", "apt-get"])):
        log = tmp_path / f"log-{len(extra)}"
        # Only the test's folders on PATH: this machine's own sudo, if any, stays out.
        env = {"PATH": ":".join([str(bin_dir), *map(str, extra)]), "LOG": str(log)}
        subprocess.run(["/bin/sh", "-c", setup], env=env, check=True, timeout=10)
        words = [line.split()[0] for line in log.read_text().splitlines()]
        assert words == expected
        assert "portaudio19-dev" in log.read_text()

