"""Where the event loop's time goes per audio chunk: our send path against websockets alone.

One 40 ms chunk (1,280 bytes of PCM) goes to the emulator over TLS on 127.0.0.1, the emulator
in a process of its own so that only the sender's work is counted: CPU of the sending thread
(``time.thread_time``) per chunk, for the frame written with websockets' ``send`` (the
library alone, the baseline), through ``LiveSession.send_audio_realtime`` (base64, the frame,
the send lock) and through ``ResilientSession.send_audio_realtime`` (what the daemon calls).
Each is measured back to back (warm) and one chunk every 40 ms, as a microphone sends them:
apart, a chunk finds the caches cold and each send wakes the receiving process through the
loopback, work the kernel charges to the sender and that grows with the number of messages,
not their size. Rounds alternate between the paths; the table gives medians.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import structlog
from websockets.asyncio.client import connect

from agent.live import protocol
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ResilientSession
from agent.live.types import GenerativeContentBlob
from tests.support.emulator_client import start_emulator_process

CHUNKS = 150
ROUNDS = 3
PACE_S = 0.04
BLOB = GenerativeContentBlob("audio/pcm;rate=16000", bytes(1280))
MODEL = "gemini-live-2.5-flash-preview"
DEVELOPER_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"

Send = Callable[[], Awaitable[None]]


async def cpu_per_send_us(send: Send, pace_s: float) -> float:
    total = 0.0
    for _ in range(CHUNKS):
        if pace_s:
            await asyncio.sleep(pace_s)
        start = time.thread_time()
        await send()
        total += time.thread_time() - start
    return total / CHUNKS * 1e6


async def measure(cert_dir: Path) -> tuple[dict[tuple[str, float], list[float]], int, int]:
    """Medians' inputs per (path, pace), and the resilient session's connections and drops."""
    process, url = await start_emulator_process("--tls", "--cert-dir", str(cert_dir))
    os.environ["SSL_CERT_FILE"] = str(cert_dir / "cert.pem")
    model = LiveGenerativeModel(
        backend=GeminiDeveloperBackend(api_key="bench-key", endpoint=url), model=MODEL
    )
    frame = protocol.realtime_audio_frame(BLOB)
    results: dict[tuple[str, float], list[float]] = {}
    try:
        # Without permessage-deflate, as the agent connects.
        async with connect(f"{url}{DEVELOPER_PATH}?key=bench-key", compression=None) as plain:
            await plain.send(f'{{"setup": {{"model": "models/{MODEL}"}}}}')
            assert "setupComplete" in str(await plain.recv())
            session = await model.connect()
            async with ResilientSession(model) as resilient:
                await resilient.wait_live()
                paths: dict[str, Send] = {
                    # The same text frame the session sends, already built.
                    "websockets send (baseline)": lambda: plain.send(frame, text=True),
                    "LiveSession": lambda: session.send_audio_realtime(BLOB),
                    "ResilientSession": lambda: resilient.send_audio_realtime(BLOB),
                }
                for _ in range(ROUNDS):
                    for pace in (0.0, PACE_S):
                        for name, send in paths.items():
                            results.setdefault((name, pace), []).append(
                                await cpu_per_send_us(send, pace)
                            )
                stats = resilient.stats
            await session.close()
    finally:
        process.terminate()
        await process.wait()
    return results, stats.connections, stats.dropped_chunks + stats.replayed_chunks


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bench_send_path_against_websockets_alone(tmp_path: Path) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    saved = os.environ.get("SSL_CERT_FILE")
    try:
        results, connections, lost = asyncio.run(measure(tmp_path))
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved
    median = {key: statistics.median(values) for key, values in results.items()}
    print("\n| path, CPU of the sending thread per 40 ms chunk | back to back | one every 40 ms |")
    print("|---|---|---|")
    names = dict.fromkeys(name for name, _ in median)
    for name in names:
        print(f"| {name} | {median[(name, 0.0)]:.1f} us | {median[(name, PACE_S)]:.1f} us |")
    base = "websockets send (baseline)"
    for pace, label in ((0.0, "back to back"), (PACE_S, "one every 40 ms")):
        ratio = median[("ResilientSession", pace)] / median[(base, pace)]
        print(f"ResilientSession / websockets alone, {label}: {ratio:.2f}x")
    paced = median[("ResilientSession", PACE_S)]
    print(f"at 25 chunks a second the daemon's send path costs {paced * 25 / 1e4:.2f} % of a core")
    # Every chunk went over the one connection it started with: none held back or replayed.
    assert (connections, lost) == (1, 0)
