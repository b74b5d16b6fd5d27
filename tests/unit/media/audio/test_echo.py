"""The echo policy and the half-duplex gate it puts between mic and speaker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agent.media.audio import HalfDuplexGate, NullSink, SilenceSource, apply_echo_policy
from agent.media.audio.echo import ChunkSource, PlaybackState

TIMEOUT = 10.0


async def test_half_duplex_gate_mutes_while_playing_and_for_the_tail(sig: Any) -> None:
    sink = NullSink(realtime=True, sample_rate=24000)
    source = SilenceSource(None, realtime=True, chunk_ms=20)
    gate = HalfDuplexGate(source, sink, tail_ms=200)
    assert isinstance(gate, ChunkSource) and isinstance(sink, PlaybackState)
    assert all(callable(getattr(sink, name)) for name in ("write", "flush", "start", "stop"))
    timeline: list[tuple[float, bool]] = []
    async with sink:
        started = time.monotonic()
        sink.write(sig.s16(sig.sine(440, 0.3, 24000)))

        async def run() -> None:
            async for _ in gate.chunks():
                timeline.append((time.monotonic() - started, True))
                if time.monotonic() - started > 0.9:
                    return

        await asyncio.wait_for(run(), TIMEOUT)
    passed = [t for t, _ in timeline]
    # Playing 0-0.3 s (+40 ms prebuffer-free start), then a 0.2 s tail: nothing before ~0.5 s.
    assert passed and min(passed) >= 0.48
    assert gate.muted_chunks >= 20


def test_echo_policy_names() -> None:
    source, sink = SilenceSource(), NullSink()
    assert apply_echo_policy(source, sink, "none") is source
    assert isinstance(apply_echo_policy(source, sink, "half_duplex"), HalfDuplexGate)
    with pytest.raises(ValueError, match="echo policy"):
        apply_echo_policy(source, sink, "aec")
