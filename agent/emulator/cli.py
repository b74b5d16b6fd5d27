"""``edge-agent emulator``: run the Live API emulator from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import structlog

from agent.emulator import scenario as scenario_module
from agent.emulator.config import CLIENT_CONTENT_RULES, EmulatorConfig
from agent.emulator.scenario import Scenario, ScenarioError
from agent.emulator.server import Emulator

log = structlog.get_logger(__name__)

DESCRIPTION = """\
A local Live API server speaking the Gemini Live wire protocol (BidiGenerateContent over
WebSocket), for developing and testing without network access or an API key. It serves the
Developer API (v1, v1beta, v1alpha, Constrained), Vertex AI and both Firebase AI Logic proxy
paths, answers with a deterministic fake model (energy-based speech detection, a synthetic
24 kHz voice, transcriptions, tool calls), sends session resumption handles and goAway, and
injects faults on demand.

Point a client at ws://HOST:PORT (or wss:// with --tls; google-genai needs TLS and the
printed certificate). Example: the Developer API endpoint is
  ws://127.0.0.1:8765/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=K
"""

EXAMPLE = Path(__file__).with_name("scenarios") / "lamp.toml"


def _epilog() -> str:
    doc = scenario_module.__doc__ or ""
    _, _, body = doc.partition("Format (every key optional)::")
    return (
        "scenario files (--scenario FILE, TOML):\n"
        + body.rstrip()
        + f"\n\nAn example ships with the package: {EXAMPLE}\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options (and its help text) to ``parser``."""
    parser.description = DESCRIPTION
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one")
    parser.add_argument("--scenario", type=Path, help="TOML scenario file (format below)")
    parser.add_argument("--tls", action="store_true", help="serve wss:// with a self-signed cert")
    parser.add_argument("--cert-dir", type=Path, help="where to keep the TLS certificate")
    parser.add_argument("--api-key", help="the only key accepted (default: any key)")
    parser.add_argument(
        "--model", action="append", dest="models", help="accepted model id (repeatable)"
    )
    parser.add_argument(
        "--lifetime", type=float, default=600.0, help="connection lifetime in s (600)"
    )
    parser.add_argument(
        "--go-away-before", type=float, default=60.0, help="goAway lead time in s (60)"
    )
    parser.add_argument(
        "--handle-ttl", type=float, default=7200.0,
        help="resumption handles are refused this many s after their session's last "
        "connection ended (7200)",
    )
    parser.add_argument(
        "--token-budget", type=int, default=128_000, help="context window in tokens (128000)"
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply every duration (0.1: 10x faster)"
    )
    parser.add_argument(
        "--client-content", choices=CLIENT_CONTENT_RULES, default="any",
        help="initial_history_only: refuse clientContent (1007) except as the initial history "
        "the setup declares in historyConfig, like gemini-3.1-flash-live (any)",
    )
    parser.add_argument(
        "--text-frames", action="store_true", help="send JSON in text frames, not binary"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="keep what clients send in memory (for tests; at most 256 MB and 1000 "
        "connections, the oldest closed ones forgotten first)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build the config; ScenarioError if the scenario file is bad."""
    scenario = Scenario.load(args.scenario) if args.scenario else None
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        tls=args.tls,
        cert_dir=args.cert_dir,
        api_key=args.api_key,
        models=tuple(args.models) if args.models else None,
        scenario=scenario,
        connection_lifetime_s=args.lifetime,
        go_away_before_s=args.go_away_before,
        session_token_budget=args.token_budget,
        handle_ttl_s=args.handle_ttl,
        time_scale=args.time_scale,
        client_content=args.client_content,
        binary_frames=not args.text_frames,
        record=args.record,
    )


async def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad arguments."""
    try:
        config = config_from_args(args)
    except ScenarioError as exc:
        sys.stderr.write(f"edge-agent emulator: {exc}\n")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with Emulator(config) as emulator:
            sys.stdout.write(f"emulator listening on {emulator.url}\n")
            if emulator.cert_path is not None:
                sys.stdout.write(f"TLS certificate (trust it as a CA): {emulator.cert_path}\n")
            sys.stdout.flush()
            await stop.wait()
    except OSError as exc:
        sys.stderr.write(f"edge-agent emulator: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    log.info("emulator.stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m agent.emulator``."""
    parser = argparse.ArgumentParser(prog="edge-agent emulator")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))
