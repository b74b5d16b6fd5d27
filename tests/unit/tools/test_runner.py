"""The daemon worker pool that runs handlers off the event loop."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.tools.runner import ThreadRunner


async def test_results_and_exceptions_come_back_on_the_loop() -> None:
    runner = ThreadRunner(2)
    loop = asyncio.get_running_loop()
    try:
        name = await asyncio.wait_for(
            runner.submit(lambda: threading.current_thread().name, loop), 2.0)
        assert name.startswith("gpio-")
        with pytest.raises(ZeroDivisionError):
            await asyncio.wait_for(runner.submit(lambda: 1 / 0, loop), 2.0)
    finally:
        runner.close()


async def test_at_most_max_workers_run_at_once(wait_until: Any) -> None:
    runner = ThreadRunner(2)
    loop = asyncio.get_running_loop()
    gate = threading.Event()
    running: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> int:
        with lock:
            running.append(i)
        gate.wait(2.0)
        return i

    try:
        futures = [runner.submit(functools.partial(job, i), loop) for i in range(3)]
        await wait_until(lambda: len(running) == 2)
        await asyncio.sleep(0.02)
        assert len(running) == 2  # the third waits for a free worker
        gate.set()
        assert await asyncio.wait_for(asyncio.gather(*futures), 2.0) == [0, 1, 2]
    finally:
        runner.close()


async def test_a_cancelled_future_does_not_break_the_worker() -> None:
    runner = ThreadRunner(1)
    loop = asyncio.get_running_loop()
    gate = threading.Event()
    try:
        first = runner.submit(lambda: gate.wait(2.0), loop)
        first.cancel()
        gate.set()
        assert await asyncio.wait_for(runner.submit(lambda: "next", loop), 2.0) == "next"
    finally:
        runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit(lambda: None, loop)


def test_a_stuck_handler_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(textwrap.dedent("""
        import asyncio, threading
        from agent.tools.runner import ThreadRunner

        async def main():
            runner = ThreadRunner(1)
            fut = runner.submit(threading.Event().wait, asyncio.get_running_loop())
            try:
                await asyncio.wait_for(fut, 0.05)
            except TimeoutError:
                print("timed out")
            runner.close(timeout=0.05)

        asyncio.run(main())
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=30, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "timed out"
