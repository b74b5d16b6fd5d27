"""A dead link is noticed within 5 s while audio streams, and a slow link raises no false alarm.

Sessions reach a Live server on 127.0.0.1 through a TCP proxy that adds 150-400 ms of latency
in each direction and can blackhole a connection: stop forwarding both ways, drop what is in
flight, close nothing (Wi-Fi gone, no RST). Four sessions take five blackholes each, twenty in
all, while a fifth streams for 60 s over the slow link alone and must never drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import structlog
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState
from agent.live.types import GenerativeContentBlob

pytestmark = pytest.mark.slow

log = structlog.get_logger(__name__)

LATENCY_S = (0.150, 0.400)
"""Added one way, drawn per chunk: round trips of 300-800 ms."""
DETECT_WITHIN_S = 5.0
SESSIONS, FAULTS_EACH = 4, 5
SLOW_LINK_S = 60.0
CHUNK = GenerativeContentBlob("audio/pcm;rate=16000", bytes(1280))  # 40 ms of audio
# Connections here live a few seconds: "stable" is scaled down so that the backoff after each
# fault stays at its first step and the test measures detection, not backoff.
POLICY = ReconnectPolicy(stable_after_s=1.0)


@dataclass
class Link:
    """One proxied TCP connection; ``blackhole()`` silences it for good."""

    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    dead: bool = False

    def blackhole(self) -> None:
        self.dead = True

    def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class SlowProxy:
    """Forwards 127.0.0.1:port to ``target_port`` with latency; blackholes on demand."""

    def __init__(self, target_port: int, rng: random.Random) -> None:
        self.target_port = target_port
        self.rng = rng
        self.port = 0
        self.links: list[Link] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        link = Link([writer, up_writer])
        self.links.append(link)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: Link
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        last = 0.0

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if data == b"":
                    if not link.dead:
                        sink.close()
                    return
                if not link.dead:  # in flight when the link died: lost
                    sink.write(data)
                    await sink.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await source.read(65536):
                if link.dead:
                    continue  # swallowed: no answer, no error, no close
                last = max(last, loop.time() + self.rng.uniform(*LATENCY_S))
                queue.put_nowait((last, data))
            queue.put_nowait((last, b""))
            await delivering
        except (ConnectionError, OSError):
            pass
        finally:
            delivering.cancel()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SlowProxy]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for link in self.links:
                link.close()
            for task in list(self._tasks):
                task.cancel()


async def live_server(ws: ServerConnection) -> None:
    """Just enough of the service: complete the setup, hand out a handle, read everything."""
    try:
        await ws.recv()
        await ws.send(b'{"setupComplete": {}}')
        await ws.send(b'{"sessionResumptionUpdate": {"newHandle": "h", "resumable": true}}')
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


def model(port: int) -> LiveGenerativeModel:
    backend = GeminiDeveloperBackend(api_key="test-key", endpoint=f"ws://127.0.0.1:{port}")
    return LiveGenerativeModel(backend=backend, model="m")


async def stream(session: ResilientSession, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await session.send_audio_realtime(CHUNK)
        await asyncio.sleep(0.04)


class LiveWatch:
    """When the session last left ``LIVE``, and how many times it did."""

    def __init__(self, session: ResilientSession) -> None:
        self.left_at: float | None = None
        self.drops = 0
        self._was_live = False
        session.add_listener(self._changed)

    def _changed(self, stats: object) -> None:
        state = getattr(stats, "state", None)
        if state is SessionState.LIVE:
            self._was_live = True
        elif self._was_live:
            self._was_live = False
            self.left_at = time.monotonic()
            self.drops += 1


async def faults(server_port: int, seed: int) -> list[float]:
    """Detection times of ``FAULTS_EACH`` blackholes of one streaming session."""
    times: list[float] = []
    stop = asyncio.Event()
    async with (
        SlowProxy(server_port, random.Random(seed)).running() as proxy,
        ResilientSession(model(proxy.port), POLICY) as session,
    ):
        watch = LiveWatch(session)
        streamer = asyncio.create_task(stream(session, stop))
        try:
            for _ in range(FAULTS_EACH):
                async with asyncio.timeout(30):
                    await session.wait_live()
                await asyncio.sleep(1.5)  # streaming, and stable
                assert session.state is SessionState.LIVE
                before = watch.drops
                struck = time.monotonic()
                proxy.links[-1].blackhole()
                async with asyncio.timeout(DETECT_WITHIN_S * 3):
                    while watch.drops == before:
                        await asyncio.sleep(0.01)
                assert watch.left_at is not None
                times.append(watch.left_at - struck)
        finally:
            stop.set()
            await streamer
    return times


async def slow_link(server_port: int) -> ResilientSession:
    """A session that streams over the slow link for ``SLOW_LINK_S``; returned closed."""
    stop = asyncio.Event()
    async with (
        SlowProxy(server_port, random.Random(99)).running() as proxy,
        ResilientSession(model(proxy.port), POLICY) as session,
    ):
        async with asyncio.timeout(30):
            await session.wait_live()
        streamer = asyncio.create_task(stream(session, stop))
        await asyncio.sleep(SLOW_LINK_S)
        stop.set()
        await streamer
    return session


async def test_a_blackholed_link_is_noticed_within_5_s_and_a_slow_one_never() -> None:
    async with serve(live_server, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        slow = asyncio.create_task(slow_link(port))
        runs = await asyncio.gather(*(faults(port, seed) for seed in range(SESSIONS)))
        quiet = await slow
    times = sorted(t for run in runs for t in run)
    log.info(
        "blackhole.detection",
        faults=len(times),
        median_s=round(statistics.median(times), 3),
        max_s=round(times[-1], 3),
        min_s=round(times[0], 3),
    )
    print(  # the figures, for the record (-s shows them)
        f"\nblackhole detection over {len(times)} faults: median "
        f"{statistics.median(times):.2f} s, max {times[-1]:.2f} s, min {times[0]:.2f} s"
    )
    assert len(times) == SESSIONS * FAULTS_EACH
    assert times[-1] < DETECT_WITHIN_S
    # Over the slow link alone, one connection for the whole stream: no false alarm.
    assert quiet.stats.connections == 1
    assert quiet.stats.failures == 0
    assert quiet.stats.dropped_chunks == 0
