"""The token server's HTTP side: ``POST /token`` with a device's Basic credentials.

It is the standard library's ``ThreadingHTTPServer``: a token is minted about once per device
connection (every ten minutes or so per device), the mint itself is a blocking call to the
Gemini API, and a thread per request with a bound on how many run at once is the simplest
correct server for that, with no dependency beyond google-genai (websockets' server serves
only GET, aiohttp is not used by the project, h11 would be hand-driven for a handful of
requests an hour).

Bounds: `max_in_flight` requests at once (more are answered 503 at once), `READ_TIMEOUT_S`
for a client to send its request, `MAX_BODY_BYTES` of body, the standard library's limits on
the request line (64 KiB) and header count (100); per device a token bucket
(``per_device_per_minute``, ``per_device_burst``; 429 with Retry-After beyond it); failed
sign-ins per client address `FAILURES_PER_MINUTE`, tracked for `MAX_TRACKED_ADDRESSES`.

Answers never hold the API key, and a device's secret or token is never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog

from agent.token_server.devices import Devices
from agent.token_server.mint import Minted, MintError
from agent.token_server.settings import Settings

log = structlog.get_logger(__name__)

READ_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 4096
FAILURES_PER_MINUTE = 10
MAX_TRACKED_ADDRESSES = 1024


class Bucket:
    """A token bucket: ``burst`` at once, then ``per_minute``."""

    def __init__(self, per_minute: float, burst: int, now: float) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.level = float(burst)
        self.at = now

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class TokenService:
    """What the handler asks: who is this device, may it have a token now, mint one."""

    def __init__(self, settings: Settings, devices: Devices, mint: Callable[[], Minted],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.devices = devices
        self.mint = mint
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self._failures: OrderedDict[str, Bucket] = OrderedDict()
        self.in_flight = threading.BoundedSemaphore(settings.max_in_flight)
        self.minted = 0
        self.refused = 0
        self.limited = 0

    def allow_failure(self, address: str) -> bool:
        """Count a failed sign-in from ``address``; False once it has failed too often."""
        with self._lock:
            bucket = self._failures.pop(address, None) or Bucket(
                FAILURES_PER_MINUTE, FAILURES_PER_MINUTE, self.clock())
            self._failures[address] = bucket
            while len(self._failures) > MAX_TRACKED_ADDRESSES:
                self._failures.popitem(last=False)
            return bucket.take(self.clock()) == 0.0

    def blocked(self, address: str) -> bool:
        with self._lock:
            bucket = self._failures.get(address)
            if bucket is None:
                return False
            now = self.clock()
            level = min(bucket.burst, bucket.level + (now - bucket.at) * bucket.rate)
            return level < 1.0

    def wait_for(self, device: str) -> float:
        """0 when ``device`` may have a token now, else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(device)
            if bucket is None:
                bucket = self._buckets[device] = Bucket(
                    self.settings.per_device_per_minute, self.settings.per_device_burst,
                    self.clock())
            return bucket.take(self.clock())


def make_handler(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT_S
        server_version = "edge-agent-token-server"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # every request is logged once, below, without its headers

        def do_GET(self) -> None:
            self._answer(405, {"error": "use POST /token"})

        def do_POST(self) -> None:
            if not service.in_flight.acquire(blocking=False):
                self._answer(503, {"error": "busy, try again"}, retry_after=1)
                return
            try:
                self._token()
            finally:
                service.in_flight.release()

        def _token(self) -> None:
            started = time.perf_counter()
            address = self.client_address[0]
            if self.path.split("?", 1)[0] != "/token":
                self._answer(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._answer(413, {"error": f"a body of at most {MAX_BODY_BYTES} bytes"})
                return
            self.rfile.read(length)
            if service.blocked(address):
                self._answer(429, {"error": "too many failed sign-ins"}, retry_after=60)
                return
            device = self._device()
            if device is None:
                service.refused += 1
                allowed = service.allow_failure(address)
                log.warning("token_server.refused", address=address, limited=not allowed)
                self._answer(401, {"error": "unknown device or wrong secret"},
                             extra={"WWW-Authenticate": 'Basic realm="edge-agent"'})
                return
            wait = service.wait_for(device)
            if wait > 0:
                service.limited += 1
                log.warning("token_server.rate_limited", device=device,
                            retry_after_s=round(wait, 1))
                self._answer(429, {"error": "too many tokens for this device"},
                             retry_after=max(1, round(wait)))
                return
            try:
                minted = service.mint()
            except MintError as exc:
                log.error("token_server.mint_failed", device=device, error=str(exc))
                self._answer(exc.status, {"error": "no token could be minted now"},
                             retry_after=5)
                return
            service.minted += 1
            log.info("token_server.minted", device=device,
                     took_ms=round((time.perf_counter() - started) * 1000, 1))
            self._answer(200, {
                "token": minted.token,
                "expire_time": minted.expire_time.isoformat(),
                "new_session_expire_time": minted.new_session_expire_time.isoformat(),
            })

        def _device(self) -> str | None:
            scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "basic" or len(encoded) > 1024:
                return None
            try:
                device, sep, secret = base64.b64decode(encoded, validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            if not sep or not service.devices.verify(device, secret):
                return None
            return device

        def _answer(self, status: int, body: dict[str, str], *, retry_after: int | None = None,
                    extra: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if retry_after is not None and status != 200:
                self.send_header("Retry-After", str(retry_after))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that hung up or spoke no TLS: one line, no traceback."""
        log.info("token_server.client_error", address=client_address[0],
                 error=type(sys.exception()).__name__)


def make_server(settings: Settings, service: TokenService) -> ThreadingHTTPServer:
    """Bound, not yet serving; TLS when the settings name a certificate."""
    server = _Server((settings.host, settings.port), make_handler(service))
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        # The handshake runs in the request's thread, under its timeout, not in the accept loop.
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
    return server
