"""systemd service notifications (sd_notify) without dependencies.

A ``Type=notify`` service tells systemd when it is ready (``READY=1``), what it is doing
(``STATUS=...``, shown by ``systemctl status``), that it is alive (``WATCHDOG=1``, at least
every ``WatchdogSec=``) and that it is stopping (``STOPPING=1``). Each is one datagram to the
AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract name starting with "@").

Any local user can read ``STATUS=`` (``systemctl status``), so every value goes through the
logs' redaction (`agent.logs.redact_text`) and is cut to `MAX_VALUE_CHARS` on one line.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op. Sends never block: the
socket is non-blocking and a failure is logged once per kind of error (``systemd.notify_failed``)
and counted, never raised into the caller and never silently dropped.

`watchdog_task` pings from the event loop itself, so a stalled loop (a blocking call, a busy
loop) stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

import structlog

from agent.logs import redact_text

__all__ = [
    "MAX_VALUE_CHARS",
    "Notifier",
    "default_notifier",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_interval",
    "watchdog_ping",
    "watchdog_task",
]

log = structlog.get_logger(__name__)

MAX_VALUE_CHARS = 400
"""The longest value sent (``systemctl status`` shows one line of it)."""


class Notifier:
    """Sends sd_notify messages to one socket.

    Args:
        address: the socket (``$NOTIFY_SOCKET`` form: a path or ``@abstract``); default: the
            environment's ``NOTIFY_SOCKET``. None or empty: notifications are disabled.
    """

    def __init__(self, address: str | None = None, *,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = address if address is not None else env.get("NOTIFY_SOCKET") or None
        self.sent = 0
        """Messages delivered to the socket."""
        self.failures = 0
        """Messages that could not be sent."""
        self._sock: socket.socket | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify (the process runs under a notify unit)."""
        return bool(self.address)

    def notify(self, **fields: str | int) -> bool:
        """Send one message of ``NAME=value`` lines: ``notify(READY=1, STATUS="live")``.

        Returns True when the datagram was sent; False when disabled or it failed (the
        failure is logged once per kind of error).
        """
        if not self.address or not fields:
            return False
        message = "\n".join(f"{name}={_one_line(value)}" for name, value in fields.items())
        with self._lock:
            try:
                sock = self._socket()
                sock.sendto(message.encode("utf-8"), _sockaddr(self.address))
            except OSError as exc:
                self.failures += 1
                self._log_failure(exc)
                return False
            self.sent += 1
            return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup finished (send once the devices are open)."""
        return self.notify(READY=1) if status is None else self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line for ``systemctl status``."""
        return self.notify(STATUS=text)

    def reloading(self) -> bool:
        """``RELOADING=1``: a config reload started; send `ready` when it is done."""
        return self.notify(RELOADING=1, MONOTONIC_USEC=_monotonic_usec())

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown started."""
        return self.notify(STOPPING=1)

    def watchdog_ping(self) -> bool:
        """``WATCHDOG=1``: the service is alive."""
        return self.notify(WATCHDOG=1)

    def close(self) -> None:
        """Close the socket (it is reopened by the next message)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
            self._sock = sock
        return self._sock

    def _log_failure(self, exc: OSError) -> None:
        kind = type(exc).__name__ + (f":{exc.errno}" if exc.errno else "")
        if kind in self._logged:
            return
        self._logged.add(kind)
        log.warning("systemd.notify_failed", socket=self.address, error=str(exc),
                    failures=self.failures,
                    note="logged once per kind of error; later failures are only counted")


def _one_line(value: str | int) -> str:
    # A newline would start a new NAME=value assignment inside the datagram.
    text = redact_text(str(value)).replace("\n", " ")
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text


def _sockaddr(address: str) -> str:
    if address.startswith("@"):
        return "\0" + address[1:]  # Linux abstract namespace
    return address


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout in seconds from ``$WATCHDOG_USEC``, or None when the watchdog is
    off, or meant for another process (``$WATCHDOG_PID`` is not ours)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    try:
        value = int(usec)
        if pid and int(pid) != os.getpid():
            return None
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


async def watchdog_task(
    notifier: Notifier | None = None,
    interval_s: float | None = None,
    *,
    healthy: Callable[[], bool] | None = None,
) -> None:
    """Ping the watchdog every half interval from the event loop, until cancelled.

    Args:
        notifier: where to send (default: `default_notifier`).
        interval_s: the watchdog timeout (default: `watchdog_interval`). Without one, the
            task returns at once.
        healthy: when given and it returns False, pings are withheld (logged once per spell),
            so systemd restarts a service whose loop runs but whose work is stuck.
    """
    notifier = notifier or default_notifier()
    timeout = interval_s if interval_s is not None else watchdog_interval()
    if timeout is None or timeout <= 0 or not notifier.enabled:
        log.debug("systemd.watchdog_off")
        return
    period = timeout / 2
    log.info("systemd.watchdog_on", timeout_s=timeout, period_s=period)
    withheld = False
    while True:
        if healthy is None or healthy():
            notifier.watchdog_ping()
            if withheld:
                log.info("systemd.watchdog_resumed")
            withheld = False
        elif not withheld:
            withheld = True
            log.warning("systemd.watchdog_withheld", reason="health check failed")
        await asyncio.sleep(period)


_default: Notifier | None = None


def default_notifier() -> Notifier:
    """The process-wide notifier for ``$NOTIFY_SOCKET`` (created on first use)."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def notify(**fields: str | int) -> bool:
    """`Notifier.notify` on the process-wide notifier."""
    return default_notifier().notify(**fields)


def ready(status: str | None = None) -> bool:
    """``READY=1`` (and an optional ``STATUS=``) on the process-wide notifier."""
    return default_notifier().ready(status)


def status(text: str) -> bool:
    """``STATUS=text`` on the process-wide notifier."""
    return default_notifier().status(text)


def reloading() -> bool:
    """``RELOADING=1`` on the process-wide notifier."""
    return default_notifier().reloading()


def stopping() -> bool:
    """``STOPPING=1`` on the process-wide notifier."""
    return default_notifier().stopping()


def watchdog_ping() -> bool:
    """``WATCHDOG=1`` on the process-wide notifier."""
    return default_notifier().watchdog_ping()
