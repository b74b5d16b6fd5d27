"""The real daemon (``edge-agent run`` as a subprocess) against a malicious Live server.

The server speaks just enough of the protocol to be connected to, then sends what no real
service would: audio at absurd or thousands of distinct rates, frames near the client's size
limit, thousands of parts and calls, 1 MB transcripts by the hundred, goAway storms. The daemon
must stay up, answer a normal tool call afterwards, keep its memory under a stated bound, and
connect no more often than its attempt limit allows; SIGTERM still ends it with 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from agent.live.resilient import ReconnectPolicy
from tests.support.daemon_process import Agent, start_agent, stop_agent

pytestmark = pytest.mark.slow

RSS_BOUND_MB = 150
"""The daemon's resident memory may not pass this, whatever the server sends (measured on x86-64:
about 50 MB at rest, a peak of about 62 MB under every attack here)."""

FRAME_LIMIT = 4 * 1024 * 1024  # the client's max_size (ConnectOptions.max_frame_bytes)
STEP = 30.0


def audio_part(pcm: bytes, mime: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": base64.b64encode(pcm).decode()}}


def audio_frame(pcm: bytes, mime: str) -> str:
    return json.dumps({"serverContent": {"modelTurn": {"parts": [audio_part(pcm, mime)]}}})


def content_frame(**content: Any) -> str:
    return json.dumps({"serverContent": content})


def tool_call(calls: list[dict[str, Any]]) -> str:
    return json.dumps({"toolCall": {"functionCalls": calls}})


def hostile_frames() -> dict[str, list[str | bytes]]:
    """Class 1: every field of a server frame is input. Each case is a list of frames."""
    speech = np.sin(np.arange(2400) / 5).astype("<i2").tobytes()  # 4.8 KB
    big_speech = bytes(96 * 1024)
    near_limit = bytes((FRAME_LIMIT - 1024) * 3 // 4)
    empty = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": ""}}
    return {
        "rate=-1": [audio_frame(speech, "audio/pcm;rate=-1")] * 5,
        "rate=0": [audio_frame(speech, "audio/pcm;rate=0")],
        "rate=1, 4.8 KB": [audio_frame(speech, "audio/pcm;rate=1")],
        "rate=1, 96 KB": [audio_frame(big_speech, "audio/pcm;rate=1")],
        "rate=2**64": [audio_frame(speech, f"audio/pcm;rate={2**64}")],
        "rate of 4000 digits": [audio_frame(speech, "audio/pcm;rate=" + "9" * 4000)],
        "rate=NaN": [audio_frame(speech, "audio/pcm;rate=NaN")],
        "2000 distinct valid rates": [
            audio_frame(speech[:960], f"audio/pcm;rate={rate}") for rate in range(8000, 48000, 20)
        ],
        "2000 distinct absurd rates": [
            audio_frame(speech[:960], f"audio/pcm;rate={rate}") for rate in range(1, 2001)
        ],
        "a 1 MB mime type": [audio_frame(speech, "audio/pcm;x=" + "y" * 1_000_000)],
        "audio near the frame limit at 8 kHz": [audio_frame(near_limit, "audio/pcm;rate=8000")],
        "60,000 empty parts": [
            json.dumps({"serverContent": {"modelTurn": {"parts": [empty] * 60_000}}})
        ],
        "odd and broken base64": [
            audio_frame(b"\1\2\3", "audio/pcm;rate=24000"),
            json.dumps({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": "audio/pcm", "data": "@@not base64@@"}}]}}}),
        ],
        "parts and turns of the wrong type": [
            content_frame(modelTurn={"parts": {"a": 1}}),
            content_frame(modelTurn=[1, 2]),
            content_frame(modelTurn={"parts": [1, "x", None, [], {"inlineData": 7}]}),
            content_frame(outputTranscription={"text": ["x"] * 1000}),
        ],
        "5000 function calls in one toolCall": [
            tool_call([{"name": "set_lamp", "args": {"action": "on"}, "id": f"c{n}"}
                       for n in range(5000)]),
        ],
        "a 100 KB call id and name": [
            tool_call([{"name": "set_lamp", "args": {}, "id": "i" * 100_000}]),
            tool_call([{"name": "n" * 100_000, "args": {}, "id": "long-name"}]),
        ],
        "args nested 1000 deep": [  # within orjson's limit of 1024 levels
            '{"toolCall":{"functionCalls":[{"name":"set_lamp","id":"deep","args":{"action":'
            + "[" * 1000 + "]" * 1000 + "}}]}}",
        ],
        "args of 3 MB": [
            tool_call([{"name": "set_lamp", "id": "huge", "args": {"action": "x" * 3_000_000}}]),
        ],
        "integers over 64 bits in args": [
            tool_call([{"name": "set_lamp", "id": "big1", "args": {"action": 2**70}}]),
            '{"toolCall":{"functionCalls":[{"name":"set_lamp","id":"big2","args":{"action":1'
            + "0" * 400 + "}}]}}",
        ],
        "100,000 cancelled ids": [
            json.dumps({"toolCallCancellation": {"ids": [f"id{n}" for n in range(100_000)]}}),
            json.dumps({"toolCallCancellation": {"ids": [{"a": [1] * 100}] * 1000}}),
        ],
        "a 3 MB resumption handle": [
            json.dumps({"sessionResumptionUpdate": {"newHandle": "h" * 3_000_000,
                                                    "resumable": True}}),
        ],
        "usage counts over 64 bits and huge details": [
            json.dumps({"usageMetadata": {"totalTokenCount": 10**30, "promptTokenCount": "9" * 400,
                                          "promptTokensDetails": [{"x": "y" * 100}] * 10_000}}),
        ],
        "not JSON, not an object, not UTF-8": [
            "{not json", "[1, 2, 3]", "12", b"\xff\xfe\x00garbage", "[" * 3000 + "]" * 3000,
        ],
        "transcripts and text of the wrong size and type": [
            content_frame(inputTranscription={"text": 12}, outputTranscription="x"),
            content_frame(modelTurn={"parts": [{"text": "t" * 2_000_000}]}),
        ],
        "voice activity and goAway of the wrong type": [
            json.dumps({"voiceActivity": {"voiceActivityType": ["x"] * 10_000}}),
            json.dumps({"goAway": []}),
        ],
    }


class HostileServer:
    """A Live server on 127.0.0.1: completes the setup, then runs ``behaviour`` on the
    connection while a reader drains what the client sends (keeping only tool responses)."""

    def __init__(self) -> None:
        self.port = 0
        self.connected_at: list[float] = []
        self.tool_responses: list[dict[str, Any]] = []
        self.live: ServerConnection | None = None
        self.behaviour: Callable[[ServerConnection, int], Awaitable[None]] = self.hold

    @property
    def connections(self) -> int:
        return len(self.connected_at)

    @property
    def endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def handler(self, ws: ServerConnection) -> None:
        self.connected_at.append(time.monotonic())
        number = self.connections
        reader: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(STEP):
                setup = json.loads(await ws.recv())
            assert "setup" in setup
            await ws.send(json.dumps({"setupComplete": {}}))
            reader = asyncio.create_task(self.read(ws))
            await self.behaviour(ws, number)
            await ws.wait_closed()
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            if reader is not None:
                reader.cancel()

    async def read(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if "toolResponse" in message[:64]:
                    self.tool_responses.append(json.loads(message)["toolResponse"])

    async def hold(self, ws: ServerConnection, number: int) -> None:
        self.live = ws

    def response_ids(self) -> list[str]:
        return [r.get("id") for t in self.tool_responses for r in t["functionResponses"]]


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    hostile = HostileServer()
    async with serve(hostile.handler, "127.0.0.1", 0, compression=None,
                     max_size=None) as running:  # fmt: skip
        hostile.port = running.sockets[0].getsockname()[1]
        yield hostile


def config_text(endpoint: str, tmp: Path, reconnect: str = "") -> str:
    return f"""
[live]
backend = "gemini"
endpoint = "{endpoint}"

[audio]
input = "wav:{tmp / "mic.wav"}"
echo = "none"

[audio.output]
device = "wav:{tmp / "reply.wav"}"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[[tools]]
name = "set_lamp"
description = "Switch the lamp."
kind = "digital_output"
pin = 17

[reconnect]
{reconnect}

[logging]
level = "info"
format = "json"
"""


def write_mic(path: Path, seconds: float = 180.0) -> None:
    """Quiet noise at 16 kHz: the microphone streams the whole test long."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(int(seconds * 16000)) * 30).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(samples.tobytes())


class RssProbe:
    """Samples the daemon's VmRSS from /proc every 100 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.task = asyncio.create_task(self._sample())

    def now_mb(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    async def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.now_mb())
            await asyncio.sleep(0.1)


async def started(server: HostileServer, tmp: Path, reconnect: str = "") -> tuple[Agent, RssProbe]:
    write_mic(tmp / "mic.wav")
    config = tmp / "agent.toml"
    config.write_text(config_text(server.endpoint, tmp, reconnect))
    agent = await start_agent(config, tmp, GEMINI_API_KEY="a-test-key")
    probe = RssProbe(agent.process.pid)
    await agent.wait_for(lambda: server.live is not None, "the first connection")
    await agent.wait_for(lambda: agent.events("session.state") and
                         agent.events("session.state")[-1]["state"] == "live", "a live session")
    return agent, probe


async def answers_normal_traffic(agent: Agent, server: HostileServer, call_id: str) -> None:
    """A normal tool call gets its response: the conversation is alive."""
    await agent.wait_for(lambda: server.live is not None, "a connection")
    assert server.live is not None
    await server.live.send(tool_call([{"name": "set_lamp", "args": {"action": "on"},
                                       "id": call_id}]))
    await agent.wait_for(lambda: call_id in server.response_ids(), f"the response to {call_id}")


async def finish(agent: Agent, probe: RssProbe) -> int:
    try:
        code = await stop_agent(agent)
    finally:
        probe.task.cancel()
    assert not agent.events("non-json"), agent.events("non-json")[:3]
    return code


async def test_hostile_frames_leave_the_daemon_up_and_bounded(
    server: HostileServer, tmp_path: Path
) -> None:
    agent, probe = await started(server, tmp_path)
    rest_mb = probe.now_mb()
    try:
        for case, frames in hostile_frames().items():
            assert server.live is not None
            for frame in frames:
                await server.live.send(frame)
            await answers_normal_traffic(agent, server, f"after {case}")
            assert agent.process.returncode is None, f"the daemon died of: {case}"
        await server.live.send(audio_frame(bytes(48_000), "audio/pcm;rate=24000"))
    finally:
        code = await finish(agent, probe)
    assert code == 0
    assert server.connections == 1, "no hostile frame cost the connection"
    assert probe.peak_mb < RSS_BOUND_MB, f"peak RSS {probe.peak_mb:.0f} MB (at rest {rest_mb:.0f})"
    warnings = [e for e in agent.logs if e.get("level") in ("warning", "error")]
    assert len(warnings) < 300, "bad input is logged with a rate limit, not line by line"
    # A tool handler that raised is answered with its error and logged with its traceback on
    # purpose (conversation.tool_failed); nothing else may end in a traceback.
    assert not [e for e in agent.logs
                if "Traceback" in json.dumps(e) and e.get("event") != "conversation.tool_failed"]
    assert {"big1", "big2"} <= set(server.response_ids()), "over-64-bit arguments are answered"
    assert not agent.events("conversation.message_failed")
    print(f"\nhostile frames: RSS at rest {rest_mb:.0f} MB, peak {probe.peak_mb:.0f} MB, "
          f"{len(warnings)} warning lines")


async def test_three_hundred_1mb_transcripts_leave_no_growth(
    server: HostileServer, tmp_path: Path
) -> None:
    agent, probe = await started(server, tmp_path)
    rest_mb = probe.now_mb()
    text = "word " * 200_000  # 1 MB
    try:
        frame = content_frame(inputTranscription={"text": text},
                              outputTranscription={"text": text})
        sent = 0
        while sent < 300:
            live = server.live
            assert live is not None
            try:
                await live.send(frame)
                sent += 1
            except ConnectionClosed:
                # On a busy machine the pong can wait behind the flood long enough for the
                # agent to judge the link dead and reconnect: the flood goes on over the new one.
                await agent.wait_for(lambda old=live: server.live is not old, "a new connection")
        await answers_normal_traffic(agent, server, "after the transcripts")
        await asyncio.sleep(1.0)
        after_mb = probe.now_mb()
    finally:
        code = await finish(agent, probe)
    assert code == 0
    assert after_mb - rest_mb < 30, f"RSS {rest_mb:.0f} MB -> {after_mb:.0f} MB"
    assert probe.peak_mb < RSS_BOUND_MB
    print(f"\n300 x 1 MB transcripts: RSS {rest_mb:.0f} -> {after_mb:.0f} MB, "
          f"peak {probe.peak_mb:.0f} MB")


STORM_S = 20.0
ABSURD_TIME_LEFT: list[Any] = [
    "0s", "-5s", "NaN", "1e300s", 1e308, "99999999999s", -1, "s", None, {"seconds": "x"},
]


async def test_a_go_away_storm_cannot_drive_the_connection_rate(
    server: HostileServer, tmp_path: Path
) -> None:
    """The worst [reconnect] the config allows (no backoff to speak of, every connection
    "stable"): only the attempt limit stands between a goAway storm and a hot loop."""
    time_left = itertools.cycle(ABSURD_TIME_LEFT)

    async def go_away(ws: ServerConnection, number: int) -> None:
        await ws.send(json.dumps({"sessionResumptionUpdate": {"newHandle": f"h{number}",
                                                              "resumable": True}}))
        await ws.send(json.dumps({"goAway": {"timeLeft": next(time_left)}}))

    reconnect = "backoff_base_s = 0.01\nbackoff_cap_s = 0.01\nstable_after_s = 0\n"
    agent, probe = await started(server, tmp_path, reconnect)
    try:
        server.behaviour = go_away
        first = server.connections
        assert server.live is not None
        await go_away(server.live, first)
        storm_started = time.monotonic()
        await asyncio.sleep(STORM_S)
        storm = server.connections - first
        server.live = None
        server.behaviour = server.hold
        await answers_normal_traffic(agent, server, "after the storm")
    finally:
        code = await finish(agent, probe)
    assert code == 0
    policy = ReconnectPolicy()
    bound = policy.attempt_burst + policy.attempts_per_minute * STORM_S / 60
    in_window = sum(1 for t in server.connected_at if storm_started <= t <= storm_started + STORM_S)
    assert in_window <= bound, f"{in_window} connections in {STORM_S:g} s (bound {bound:g})"
    assert probe.peak_mb < RSS_BOUND_MB
    print(f"\ngoAway storm: {storm} connections in {STORM_S:g} s (bound {bound:g})")
