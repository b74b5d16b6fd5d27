"""Helpers for tests against the emulator: speech-like audio and a raw WebSocket Live client.

The client is plain ``websockets`` code, independent of :mod:`agent.live`, so tests of the
emulator pin the wire behaviour itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

STEP = 5.0  # every wait is bounded by this
ROOT = Path(__file__).parents[2]


def tone(seconds: float, amplitude: float = 8000.0, hz: float = 220.0) -> npt.NDArray[np.int16]:
    """A loud tone at 16 kHz: speech as far as energy detection goes."""
    t = np.arange(round(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2")


def silence(seconds: float) -> npt.NDArray[np.int16]:
    """Digital silence at 16 kHz."""
    return np.zeros(round(seconds * 16000), dtype="<i2")


def utterance(speech_s: float = 0.4, pause_s: float = 0.8) -> npt.NDArray[np.int16]:
    """Speech then enough silence to end the turn with the default 600 ms silence."""
    return np.concatenate([tone(speech_s), silence(pause_s)])


LAMP_SCENARIO: dict[str, Any] = {
    "name": "lamp",
    "turn": [
        {"spoken": 1, "said": "hello there", "reply": "Hi!"},
        {
            "spoken": 2,
            "said": "switch the lamp on",
            "call": [{"name": "set_lamp", "args": {"action": "on"}}],
            "reply": "The lamp is on.",
        },
    ],
}
"""Two spoken turns: a greeting, then a command that calls ``set_lamp`` (a digital output)."""


def write_spoken_commands(path: Path, count: int = 2, *, gap_s: float = 3.0) -> None:
    """A WAV of ``count`` voice-like 0.6 s bursts, as a USB mic records them (48 kHz stereo
    S16), with ``gap_s`` of silence after each: room for the model's reply."""
    rate = 48_000
    t = np.arange(int(0.6 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 0.6)
    gap = np.zeros(int(gap_s * rate))
    mono = np.concatenate([gap[: rate // 4], *([burst, gap] * count), gap])
    stereo = np.repeat((mono * 32767).astype("<i2")[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(stereo.tobytes())


def audio_message(pcm: npt.NDArray[np.int16], *, snake: bool = False) -> dict[str, Any]:
    """A realtimeInput audio frame (snake_case and URL-safe base64, like google-genai)."""
    if snake:
        data = base64.urlsafe_b64encode(pcm.tobytes()).decode()
        return {"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}
    data = base64.b64encode(pcm.tobytes()).decode()
    return {"realtimeInput": {"audio": {"data": data, "mimeType": "audio/pcm;rate=16000"}}}


def setup_message(
    model: str = "models/gemini-live-2.5-flash-preview", **fields: Any
) -> dict[str, Any]:
    """A setup message with the given extra fields."""
    return {"setup": {"model": model, **fields}}


class LiveClient:
    """A minimal Live client over one WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.setup_complete: dict[str, Any] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message as a text frame."""
        await self.ws.send(json.dumps(message))

    async def send_audio(
        self, pcm: npt.NDArray[np.int16], frame_ms: int = 40, snake: bool = False
    ) -> None:
        """Send 16 kHz PCM as ``frame_ms`` realtime audio frames, as fast as possible."""
        step = 16 * frame_ms
        for i in range(0, pcm.size, step):
            await self.send(audio_message(pcm[i : i + step], snake=snake))

    async def recv(self, within: float = STEP) -> dict[str, Any]:
        """The next server message, parsed."""
        async with asyncio.timeout(within):
            frame = await self.ws.recv()
        message = json.loads(frame)
        assert isinstance(message, dict)
        return message

    async def recv_until(
        self, done: Callable[[dict[str, Any]], bool], within: float = STEP
    ) -> list[dict[str, Any]]:
        """Messages up to and including the first one for which ``done`` is true."""
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while True:
                message = await self.recv(within)
                out.append(message)
                if done(message):
                    return out

    async def turn(self, within: float = STEP) -> list[dict[str, Any]]:
        """Messages up to the next turnComplete."""
        return await self.recv_until(is_turn_complete, within)

    async def closed(self, within: float = STEP) -> tuple[int | None, str | None]:
        """Wait for the server to close; the close code and reason it sent (None: no frame)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, None
            return exc.rcvd.code, exc.rcvd.reason
        raise AssertionError("unreachable")  # pragma: no cover


def is_turn_complete(message: dict[str, Any]) -> bool:
    """Whether a message carries ``serverContent.turnComplete``."""
    return bool(message.get("serverContent", {}).get("turnComplete"))


def content(messages: list[dict[str, Any]], key: str) -> list[Any]:
    """The values of ``serverContent[key]`` across messages, in order."""
    return [m["serverContent"][key] for m in messages if key in m.get("serverContent", {})]


def audio_bytes(messages: list[dict[str, Any]]) -> bytes:
    """All model audio in ``messages``, decoded."""
    out = b""
    for turn in content(messages, "modelTurn"):
        for part in turn["parts"]:
            if "inlineData" in part:
                out += base64.b64decode(part["inlineData"]["data"])
    return out


def transcript(messages: list[dict[str, Any]], key: str) -> str:
    """A transcription (``inputTranscription`` or ``outputTranscription``) joined up."""
    return "".join(t["text"] for t in content(messages, key))


async def start_emulator_process(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m agent.emulator`` with ``args`` (``--port 0`` is added), as a process of its
    own; returns it and its URL once it says where it listens. Its log is not kept: a pipe
    nobody reads would stall it once full."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.emulator", "--port", "0", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
            while "listening on" not in line:
                assert line, "the emulator exited before listening"
                line = (await process.stdout.readline()).decode()
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, line.rsplit(" ", 1)[1].strip()
