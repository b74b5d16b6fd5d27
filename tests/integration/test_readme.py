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
