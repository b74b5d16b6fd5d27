"""The Firebase JS SDK's own LiveSession (npm ``firebase@12`` on Node) against the emulator.

The SDK's Live URL is fixed to ``wss://firebasevertexai.googleapis.com/...``; a small
WebSocket shim (js/websocket-shim.mjs) gives Node 20 a global WebSocket from the ``ws``
package and points it at the emulator's Firebase proxy path.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from agent.emulator import Emulator, EmulatorConfig, Scenario
from tests.support.emulator_client import utterance

JS = Path(__file__).with_name("js")
SCENARIO = Scenario.parse(
    """
    [[turn]]
    spoken = 1
    said = "switch the lamp on"
    call = [{ name = "set_lamp", args = { on = true } }]
    reply = "The lamp is on."

    [[turn]]
    text = "colour"
    reply = "Warm white."
    """
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` into js/ once (kept there, git-ignored); fail clearly without npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("this test needs Node.js >= 20 and npm on PATH (apt-get install nodejs npm)")
    modules = JS / "node_modules"
    if not (modules / "firebase").is_dir() or not (modules / "ws").is_dir():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {JS}:\n{result.stderr[-2000:]}")
    return modules


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(out, format="JPEG")
    return out.getvalue()


async def _drive(emu: Emulator, input_path: Path) -> dict[str, Any]:
    env = {**os.environ, "EMULATOR_URL": emu.url, "INPUT_JSON": str(input_path)}
    process = await asyncio.create_subprocess_exec(
        "node",
        "drive-live-session.mjs",
        cwd=JS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def test_firebase_live_session_runs_a_whole_conversation(
    node_modules: Path, tmp_path: Path
) -> None:
    pcm, jpeg = utterance(), _jpeg()
    frames = [pcm[i : i + 640] for i in range(0, pcm.size, 640)]
    input_path = tmp_path / "input.json"
    input_path.write_text(
        json.dumps(
            {
                "audio": [base64.b64encode(f.tobytes()).decode() for f in frames],
                "jpeg": base64.b64encode(jpeg).decode(),
            }
        )
    )
    config = EmulatorConfig(api_key="fake-key", scenario=SCENARIO, time_scale=0.05)
    async with Emulator(config) as emu:
        summary = await _drive(emu, input_path)
        rec = emu.recordings.session()

    assert len(summary["urls"]) == 1
    assert (
        "/ws/google.firebase.vertexai.v1beta.GenerativeService/BidiGenerateContent"
        in (summary["urls"][0])
    )
    first, second = summary["turns"]
    assert first["input"] == "switch the lamp on"
    assert [(c["name"], c["args"]) for c in first["calls"]] == [("set_lamp", {"on": True})]
    assert first["output"] == "The lamp is on."
    assert first["audioBytes"] > 24000 and set(first["mimeTypes"]) == {"audio/pcm;rate=24000"}
    assert first["types"][-1] == "serverContent" and "toolCall" in first["types"]
    assert second["output"] == "Warm white." and not second.get("ended")
    assert summary["closedBefore"] is False and summary["closedAfter"] is True

    connection = rec.connections[0]
    setup = connection.received[0].message["setup"]
    assert setup["model"] == "projects/demo-project/models/gemini-live-2.5-flash-preview"
    assert [v.data for v in rec.video] == [jpeg]
    assert np.array_equal(rec.audio_samples(), pcm)
    assert connection.kinds()[-2:] == ["toolResponse", "realtimeInput.text"]
    assert connection.close_code == 1000  # "Client closed session."
