"""The playback jitter buffer: prebuffering, drop-oldest overflow and instant clearing."""

from __future__ import annotations

import time

from agent.media.audio.jitter import JitterBuffer


def test_jitter_buffer_prebuffers_drops_oldest_and_clears() -> None:
    buf = JitterBuffer(1000, 2, max_s=1.0, prebuffer_ms=100)
    buf.push(b"\x01\x00" * 10)  # 20 bytes < 100 bytes of prebuffer
    assert buf.pull(50) == b""
    buf.push(b"\x02\x00" * 50)
    assert buf.pull(50) == b"\x01\x00" * 10 + b"\x02\x00" * 15  # oldest first, whole frames
    assert buf.push(b"\x03\x00" * 600) == 270  # 1000-byte cap: the oldest bytes go
    assert buf.dropped_bytes == 270
    assert buf.nbytes == 1000
    assert buf.pull(4) == b"\x03\x00" * 2  # all 70 bytes of 0x02 were among the dropped
    assert buf.clear() == 996
    assert buf.nbytes == 0 and buf.pull(10) == b""


def test_jitter_buffer_releases_a_short_tail_after_the_prebuffer_time() -> None:
    buf = JitterBuffer(1000, 2, prebuffer_ms=30)
    buf.push(b"\x01\x00")
    assert buf.pull(10) == b""
    time.sleep(0.04)
    assert buf.pull(10) == b"\x01\x00"
