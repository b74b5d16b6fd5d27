"""Drop the interpreter's and the venv's shared libraries from the page cache.

File-backed RSS depends on how the kernel holds a file in its page cache. Kernels whose ext4
caches files in large folios (6.16 and later; not Raspberry Pi OS's 6.6 or 6.12) keep a file
that pip has just written in folios of up to 2 MB, and a process maps such a folio whole:
the same numpy and OpenBLAS map about 5 MB more than when read back from disk in pages, as
after a boot. tests/run.sh runs this before the benchmarks (no process then maps the files),
and the daemon benchmark again before it starts the daemon; pages that a running process
maps stay where they are.

    python tests/bench/page_cache.py
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def evict_shared_libraries() -> int:
    """``posix_fadvise(DONTNEED)`` every shared library under the venv and the interpreter's
    prefix; return how many files were advised."""
    count = 0
    for root in {Path(sys.prefix), Path(sys.base_prefix)}:
        for path in root.rglob("*.so*"):
            if not path.is_file() or path.is_symlink():
                continue
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    count += 1
                finally:
                    os.close(fd)
    return count


if __name__ == "__main__":
    print(f"page cache: dropped {evict_shared_libraries()} shared libraries")
