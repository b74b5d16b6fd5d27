"""``edge-agent run`` as a real subprocess under a fake systemd: a NOTIFY_SOCKET the test binds,
the JSON log lines read from stderr as they come."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

T = 30.0


@dataclass
class Agent:
    process: asyncio.subprocess.Process
    notify: socket.socket
    logs: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    notes: list[tuple[float, str]] = field(default_factory=list)

    async def read_logs(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                self.logs.append(json.loads(line))
            except ValueError:
                self.logs.append({"event": "non-json", "line": line.decode(errors="replace")})

    async def read_notes(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.notify, 4096)
            self.notes.append((time.monotonic(), data.decode()))

    def events(self, name: str) -> list[dict]:  # type: ignore[type-arg]
        return [entry for entry in self.logs if entry.get("event") == name]

    async def wait_for(self, predicate, what: str) -> None:  # type: ignore[no-untyped-def]
        try:
            async with asyncio.timeout(T):
                while not predicate():
                    if self.process.returncode is not None:
                        raise AssertionError(f"the agent exited early waiting for {what}")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            tail = "\n".join(json.dumps(e) for e in self.logs[-15:])
            raise AssertionError(f"timed out waiting for {what}; last logs:\n{tail}") from None


async def start_agent(config: Path, tmp: Path, *, pass_fds: tuple[int, ...] = (),
                      **env: str) -> Agent:
    notify_path = tmp / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    environ.update(NOTIFY_SOCKET=str(notify_path), **env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=environ, limit=1 << 20, pass_fds=pass_fds,
    )  # fmt: skip
    agent = Agent(process, notify)
    agent.tasks = [  # type: ignore[attr-defined]
        asyncio.create_task(agent.read_logs()),
        asyncio.create_task(agent.read_notes()),
    ]
    return agent


async def stop_agent(agent: Agent) -> int:
    if agent.process.returncode is None:
        agent.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(T):
        code = await agent.process.wait()
    await asyncio.sleep(0.1)
    for task in agent.tasks:  # type: ignore[attr-defined]
        task.cancel()
    agent.notify.close()
    return code
