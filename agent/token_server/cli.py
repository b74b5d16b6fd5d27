"""``edge-agent token-server --config FILE``: serve tokens until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import structlog

from agent.token_server.settings import SettingsError, load_settings

log = structlog.get_logger(__name__)

DEFAULT_SETTINGS = Path("/etc/edge-agent-token/token-server.toml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_SETTINGS,
                        help=f"the token server's TOML file (default {DEFAULT_SETTINGS})")
    parser.add_argument("--check", action="store_true",
                        help="check the files and exit (2 when they have problems)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        from agent.token_server.mint import Minter, MintError
    except ImportError:
        print("edge-agent: the token server needs google-genai: "
              "pip install 'edge-agent[token-server]'", file=sys.stderr)
        return 2
    from agent.token_server.devices import Devices
    from agent.token_server.server import TokenService, make_server

    try:
        devices = Devices(settings.devices_file)
        minter = Minter(settings)
    except (ValueError, MintError) as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: OK")
        return 0
    server = make_server(settings, TokenService(settings, devices, minter.mint))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("token_server.listening", host=settings.host, port=server.server_address[1],
             tls=settings.tls_cert_file is not None)
    server.serve_forever()
    server.server_close()
    return 0
