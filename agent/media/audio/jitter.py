"""A bounded, thread-safe jitter buffer for outgoing PCM.

The model's speech arrives in bursts, usually faster than real time; the speaker drains it at
exactly real time. The buffer starts releasing audio once ``prebuffer_ms`` is queued (or the
first byte has waited that long, for a short last piece), which rides out network jitter
without adding more than ``prebuffer_ms`` of latency. When ``max_s`` of audio is queued, the
oldest audio is dropped to make room: playback stays in step with what the model says now, and
memory stays bounded (30 s of 24 kHz mono is 1.4 MB). Dropped bytes are counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class JitterBuffer:
    """Byte FIFO with prebuffering, drop-oldest overflow and instant ``clear()``."""

    def __init__(
        self,
        bytes_per_second: int,
        frame_bytes: int = 2,
        *,
        max_s: float = 30.0,
        prebuffer_ms: int = 40,
    ) -> None:
        self.bytes_per_second = bytes_per_second
        self.frame_bytes = frame_bytes
        self.max_bytes = _align(int(bytes_per_second * max_s), frame_bytes)
        self.prebuffer_bytes = _align(bytes_per_second * prebuffer_ms // 1000, frame_bytes)
        self.prebuffer_s = prebuffer_ms / 1000.0
        self.dropped_bytes = 0
        self._pieces: deque[bytes] = deque()
        self._head = 0  # bytes already consumed from _pieces[0]
        self._size = 0
        self._first_at = 0.0  # when the oldest queued byte arrived while idle
        self._flowing = False
        self._cond = threading.Condition()

    @property
    def nbytes(self) -> int:
        """Bytes queued."""
        with self._cond:
            return self._size

    @property
    def seconds(self) -> float:
        """Audio queued, in seconds."""
        return self.nbytes / self.bytes_per_second

    def push(self, data: bytes) -> int:
        """Queue ``data`` (whole frames); return how many old bytes were dropped for room."""
        if not data:
            return 0
        with self._cond:
            if self._size == 0 and not self._flowing:
                self._first_at = time.monotonic()
            self._pieces.append(data)
            self._size += len(data)
            dropped = 0
            if self._size > self.max_bytes:
                dropped = self._discard(_align(self._size - self.max_bytes, self.frame_bytes))
                self.dropped_bytes += dropped
            self._cond.notify_all()
            return dropped

    def pull(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` (whole frames) of the oldest audio; b"" while prebuffering."""
        with self._cond:
            if self._size == 0:
                self._flowing = False
                return b""
            if not self._flowing:
                waited = time.monotonic() - self._first_at
                if self._size < self.prebuffer_bytes and waited < self.prebuffer_s:
                    return b""
                self._flowing = True
            want = min(_align(max_bytes, self.frame_bytes), self._size)
            out = bytearray()
            while len(out) < want:
                piece = self._pieces[0]
                take = min(want - len(out), len(piece) - self._head)
                out += piece[self._head : self._head + take]
                self._head += take
                if self._head == len(piece):
                    self._pieces.popleft()
                    self._head = 0
            self._size -= want
            return bytes(out)

    def wait(self, timeout: float) -> None:
        """Sleep until something is pushed or cleared, or ``timeout`` passes."""
        with self._cond:
            self._cond.wait(timeout)

    def clear(self) -> int:
        """Drop everything queued at once; return the bytes dropped."""
        with self._cond:
            dropped = self._discard(self._size)
            self._flowing = False
            self._cond.notify_all()
            return dropped

    def _discard(self, nbytes: int) -> int:
        left = nbytes
        while left and self._pieces:
            piece_left = len(self._pieces[0]) - self._head
            if piece_left <= left:
                self._pieces.popleft()
                self._head = 0
                left -= piece_left
            else:
                self._head += left
                left = 0
        self._size -= nbytes - left
        return nbytes - left


def _align(n: int, frame_bytes: int) -> int:
    return n - n % frame_bytes
