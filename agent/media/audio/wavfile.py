"""A small streaming WAV reader that accepts what the standard ``wave`` module refuses.

Handles integer PCM of 8, 16, 24 and 32 bits, IEEE float of 32 and 64 bits, and
``WAVE_FORMAT_EXTENSIBLE`` headers (common from audio editors and arecord), and skips unknown
chunks. Samples come out as int16 or int32 so the capture converter can take them as if they
came from a device. Malformed files raise :class:`WavFormatError` naming the file and problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


class WavFormatError(ValueError):
    """The file is not a WAV file this reader can play."""


@dataclass(frozen=True)
class WavInfo:
    """What the header says."""

    rate: int
    channels: int
    bits: int
    is_float: bool
    frames: int

    @property
    def frame_bytes(self) -> int:
        """Bytes per interleaved frame in the file."""
        return self.bits // 8 * self.channels

    @property
    def sample_format(self) -> str:
        """The format :meth:`WavReader.read` returns: ``int16`` for <=16 bits, else ``int32``."""
        return "int16" if self.bits <= 16 and not self.is_float else "int32"

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.rate


class WavReader:
    """Open a WAV file and read it in blocks of frames (``rewind()`` to loop)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = self.path.open("rb")
        except OSError as exc:
            raise WavFormatError(f"{self.path}: cannot open: {exc.strerror}") from exc
        try:
            self.info, self._data_start, self._data_len = self._parse()
        except BaseException:
            self._file.close()
            raise
        self._left = self._data_len

    def _fail(self, why: str) -> WavFormatError:
        return WavFormatError(f"{self.path}: {why}")

    def _parse(self) -> tuple[WavInfo, int, int]:
        f = self._file
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise self._fail("not a RIFF/WAVE file")
        fmt: tuple[int, int, int, int] | None = None
        while True:
            header = f.read(8)
            if len(header) < 8:
                raise self._fail("no data chunk")
            cid, size = header[:4], struct.unpack("<I", header[4:])[0]
            if cid == b"fmt ":
                body = f.read(size + size % 2)
                if len(body) < 16:
                    raise self._fail("fmt chunk too short")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == _EXTENSIBLE:
                    if len(body) < 26:
                        raise self._fail("extensible fmt chunk too short")
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, bits)
            elif cid == b"data":
                if fmt is None:
                    raise self._fail("data chunk before fmt chunk")
                tag, channels, rate, bits = fmt
                is_float = tag == _FLOAT
                if tag not in (_PCM, _FLOAT):
                    raise self._fail(f"unsupported encoding 0x{tag:04x} (need PCM or float)")
                sizes = (32, 64) if is_float else (8, 16, 24, 32)
                if bits not in sizes:
                    raise self._fail(f"unsupported sample size {bits} bits")
                if channels < 1 or not 1000 <= rate <= 384000:
                    raise self._fail(f"implausible header: {channels} ch at {rate} Hz")
                start = f.tell()
                end = f.seek(0, 2)
                size = min(size, end - start)  # a header left unpatched by a crash
                f.seek(start)
                frame_bytes = bits // 8 * channels
                size -= size % frame_bytes
                return WavInfo(rate, channels, bits, is_float, size // frame_bytes), start, size
            else:
                f.seek(size + size % 2, 1)

    def read(self, frames: int) -> bytes:
        """Up to ``frames`` frames as little-endian int16/int32 (see ``info.sample_format``)."""
        want = min(frames * self.info.frame_bytes, self._left)
        raw = self._file.read(want)
        raw = raw[: len(raw) - len(raw) % self.info.frame_bytes]
        self._left -= len(raw)
        return _transcode(raw, self.info)

    def rewind(self) -> None:
        """Go back to the first frame."""
        self._file.seek(self._data_start)
        self._left = self._data_len

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _transcode(raw: bytes, info: WavInfo) -> bytes:
    bits = info.bits
    if info.is_float:
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8")
        return bytes((np.clip(x, -1.0, 1.0 - 2.0**-31) * 2.0**31).astype("<i4").tobytes())
    if bits == 8:  # unsigned
        return ((np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8).astype("<i2").tobytes()
    if bits == 24:  # left-justify into 32-bit slots, as an I2S mic delivers
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        out = np.zeros((len(b), 4), np.uint8)
        out[:, 1:] = b
        return bytes(out.tobytes())
    return raw
