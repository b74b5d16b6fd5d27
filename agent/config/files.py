"""Reading the files a config names (the config itself, key files, WAV headers): bounded,
never blocking, and every failure said in words.

A file is opened non-blocking, so a FIFO cannot hang the loader, and must be a regular file,
so ``/dev/zero`` cannot feed it without end; no more than the caller's limit is ever read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileProblem", "read_bounded", "read_head"]


class FileProblem(Exception):
    """A file cannot be used; ``str()`` says why, without the path (the caller names it).

    ``missing`` is true when there is no such file (some callers look further then).
    """

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.missing = missing


def read_bounded(path: Path, limit: int, *, what: str = "file") -> bytes:
    """The whole of ``path``, at most ``limit`` bytes.

    Raises:
        FileProblem: missing, unreadable, not a regular file, or longer than ``limit``.
    """
    data = _read(path, limit + 1, what)
    if len(data) > limit:
        raise FileProblem(f"is larger than {_size(limit)}: not a {what}")
    return data


def read_head(path: Path, size: int, *, what: str = "file") -> bytes:
    """The first ``size`` bytes of ``path`` (fewer when it is shorter).

    Raises:
        FileProblem: missing, unreadable, or not a regular file.
    """
    return _read(path, size, what)


def _read(path: Path, size: int, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileProblem("no such file", missing=True) from None
    except PermissionError:
        raise FileProblem("permission denied") from None
    except ValueError:  # a NUL character in the path
        raise FileProblem("the path contains a NUL character") from None
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileProblem(f"is a directory, not a {what}")
        if not stat.S_ISREG(mode):
            raise FileProblem(f"is not a regular file (a device, FIFO or socket), not a {what}")
        chunks: list[bytes] = []
        left = size
        while left > 0:
            chunk = os.read(fd, min(left, 64 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
