"""tune_malloc changes what glibc does, seen through glibc's own statistics.

Each case runs in a fresh interpreter (the settings are process-wide) and is checked against the
same program without the settings, so the test shows the difference rather than a constant.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import ctypes, ctypes.util, json, sys, threading
from agent.allocator import tune_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = MallInfo2
tuned = tune_malloc() if sys.argv[1] == "tuned" else None

# A freed 1 MiB block raises glibc's adaptive threshold; is the next one still a mapping?
size = 1 << 20
libc.free(libc.malloc(size))
before = libc.mallinfo2().hblkhd
block = libc.malloc(size)
mapped = libc.mallinfo2().hblkhd - before >= size
libc.free(block)

# Six threads allocating at once: how many arenas do they end up in?
barrier = threading.Barrier(6)
def work():
    barrier.wait()
    kept = [libc.malloc(1000) for _ in range(100)]
    barrier.wait()
    for pointer in kept:
        libc.free(pointer)
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"tuned": tuned, "mapped": mapped}), flush=True)
libc.malloc_stats()  # to stderr: one "Arena N:" block per arena
"""


def run_child(mode: str) -> tuple[dict[str, object], int]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    arenas = sum(1 for line in result.stderr.splitlines() if line.startswith("Arena "))
    return json.loads(result.stdout), arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_blocks_stay_mappings_and_threads_share_two_arenas() -> None:
    default, default_arenas = run_child("default")
    tuned, tuned_arenas = run_child("tuned")
    assert tuned["tuned"] is True
    # glibc's defaults, the control: the threshold followed the freed block, threads spread out.
    assert default["mapped"] is False
    assert default_arenas > 2
    # Tuned: the block is its own mapping (returned to the kernel on free), two arenas at most.
    assert tuned["mapped"] is True
    assert 1 <= tuned_arenas <= 2
