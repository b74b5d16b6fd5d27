"""The ``edge-agent`` command: run | demo | check-config | status | devices | emulator |
token-server | version."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent import __version__

# Before numpy loads: its arrays here hold a few thousand samples, so OpenBLAS's worker threads
# (one per extra core) would only hold memory and wake. The unit sets the same.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DESCRIPTION = """\
A live, talking, seeing, acting Gemini agent for the Raspberry Pi.

Start with `edge-agent demo` (no hardware, no API key), then describe your device in
/etc/edge-agent/agent.toml (`edge-agent devices` lists what to put there) and
`edge-agent check-config` it before `edge-agent run`."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; the emulator's options only when ``command`` is ``emulator``
    (they import the emulator, which ``run`` on a device never needs in memory)."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the agent (as the systemd service does)")
    _config_argument(run)

    demo = commands.add_parser(
        "demo", help="the whole agent with simulated devices and the built-in emulator"
    )
    demo.add_argument(
        "--reply-wav", type=Path, help="write the model's speech here (default: a temp file)"
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="give up after this many s")

    check = commands.add_parser("check-config", help="check a config file and report every error")
    _config_argument(check)

    status = commands.add_parser(
        "status", help="the running agent's state, counters and today's usage")
    _config_argument(status)

    commands.add_parser(
        "devices", help="list audio inputs and outputs, cameras and GPIO chips for the config"
    )

    emulator = commands.add_parser("emulator", help="run the local Live API emulator")
    if command == "emulator":
        from agent.emulator.cli import add_arguments

        add_arguments(emulator)

    token_server = commands.add_parser(
        "token-server", help="mint ephemeral tokens for devices (on the owner's machine)")
    if command == "token-server":
        from agent.token_server.cli import add_arguments as add_token_server_arguments

        add_token_server_arguments(token_server)

    commands.add_parser("version", help="print the version")
    return parser


def _print(text: object = "", *, file: Any = None) -> None:
    """``print``, through the logs' redaction: a problem can quote a value the user wrote,
    and a device or error text can carry a credential."""
    from agent.logs import redact_text

    print(redact_text(str(text)), file=file if file is not None else sys.stdout)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="the TOML file (default: $EDGE_AGENT_CONFIG, else /etc/edge-agent/agent.toml)",
    )


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    first = next((word for word in words if not word.startswith("-")), None)
    args = build_parser(first).parse_args(words)
    command: str = args.command
    handlers = {
        "run": cmd_run,
        "demo": cmd_demo,
        "check-config": cmd_check_config,
        "status": cmd_status,
        "devices": cmd_devices,
        "emulator": cmd_emulator,
        "token-server": cmd_token_server,
        "version": cmd_version,
    }
    return handlers[command](args)


def _load(args: argparse.Namespace, *, consequence: str = "nothing was started") -> Any:
    """The config, or None after printing every problem."""
    from agent.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            _print(problem, file=sys.stderr)
        _print(f"edge-agent: {len(exc.problems)} problem(s); {consequence}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    from agent.allocator import tune_malloc
    from agent.config import ConfigError, load_api_key
    from agent.daemon import Daemon
    from agent.logs import configure_logging

    tune_malloc()  # before the devices and their buffers exist
    config = _load(args)
    if config is None:
        return 2
    configure_logging(config.logging.level, config.logging.format)
    try:
        api_key = load_api_key(config)  # fail before opening any device
    except ConfigError as exc:
        for problem in exc.problems:
            _print(problem, file=sys.stderr)
        return 2
    return _run_loop(Daemon(config, api_key=api_key).run())


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo
    from agent.logs import configure_logging

    configure_logging("warning", "console")
    reply = args.reply_wav
    if reply is None:
        reply = Path(tempfile.mkdtemp(prefix="edge-agent-demo-")) / "reply.wav"
    return _run_loop(run_demo(sys.stdout, reply, args.timeout))


def cmd_check_config(args: argparse.Namespace) -> int:
    from agent.config import ConfigError, load_api_key
    from agent.config.credentials import credential_file_problems
    from agent.logs import configure_logging

    configure_logging("warning", "console")  # a key file others can read is worth a warning
    config = _load(args, consequence="fix them and check again")
    if config is None:
        return 2
    _print(f"{config.source}: OK")
    source = config.live.credentials.source
    if config.live.backend != "emulator" and source == "key":
        try:
            load_api_key(config)
            _print("API key: found")
        except ConfigError as exc:
            for problem in exc.problems:
                _print(f"warning: {problem}", file=sys.stderr)
    elif source != "key":
        _print(f"credentials: {source} (fetched when the agent connects)")
    for problem in credential_file_problems(config):
        _print(f"warning: {problem}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The service's metrics when it serves or writes them; else today's usage from its file.
    Exit 0 when the service answered, 3 (systemctl's "not running") when it did not."""
    from agent.logs import configure_logging
    from agent.metrics import budget_line, read_metrics_text, status_lines, today_line
    from agent.usage import UsageLedger, budget_level
    from agent.usage.keeper import SERVICE_USAGE_FILE, usage_file

    configure_logging("warning", "console")
    config = _load(args, consequence="nothing was read")
    if config is None:
        return 2
    metrics = config.metrics
    text, reason = None, "metrics are off (set [metrics] listen to see the running agent)"
    try:
        if metrics.listen is not None:
            reason = f"no answer at {metrics.listen[0]}:{metrics.listen[1]}"
            text = read_metrics_text(metrics.listen)
        elif metrics.textfile is not None:
            reason = f"cannot read {metrics.textfile}"
            with metrics.textfile.open(encoding="utf-8", errors="replace") as f:
                text = f.read(1024 * 1024)
    except OSError as exc:
        reason += f" ({exc})"
    if text is not None:
        try:
            for line in status_lines(text):
                _print(line)
            return 0
        except (ValueError, KeyError) as exc:  # not the agent's metrics
            reason = f"the metrics could not be read ({exc!r})"
    _print(f"service: {reason}")
    path = usage_file(config) or SERVICE_USAGE_FILE
    ledger = UsageLedger(path)
    ledger.load()
    today = ledger.current()
    _print(f"usage file: {path}")
    _print(today_line(today.tokens, today.cost(config.usage.price), config.usage.currency))
    if config.budget.enabled:
        level = budget_level(config.budget, config.usage, today)
        _print(budget_line(level.share, list(level.steps), level.stopped))
    return 3


def cmd_devices(args: argparse.Namespace) -> int:
    from agent.logs import configure_logging
    from agent.media.audio import list_audio_devices
    from agent.media.camera import list_cameras
    from agent.tools.pins import find_header_chip

    configure_logging("warning", "console")  # the listing is stdout's; warnings go to stderr
    _print("Audio devices (for [audio] input = ... and [audio.output] device = ...):")
    try:
        devices = list_audio_devices()
    except Exception as exc:  # no PortAudio, no ALSA: say so and go on
        devices = []
        _print(f"  cannot list audio devices: {exc}")
    else:
        if not devices:
            _print("  none found")
    for dev in devices:
        roles = []
        if dev.max_input_channels:
            roles.append(f"in {dev.max_input_channels} ch [{', '.join(dev.input_formats)}]")
        if dev.max_output_channels:
            roles.append(f"out {dev.max_output_channels} ch [{', '.join(dev.output_formats)}]")
        _print(f"  {dev.index:>3}  {dev.name!r}  {dev.default_rate} Hz  " + "; ".join(roles))
    _print("Cameras (for [camera] source = ...):")
    cameras = list_cameras()
    if not cameras:
        _print("  none found")
    for cam in cameras:
        _print(f"  {cam.kind:<10} {cam.id:<12} {cam.name}  {cam.detail}")
    chip = find_header_chip()
    _print("GPIO:")
    _print(f"  header chip: gpiochip{chip}" if chip is not None else "  no GPIO header chip found")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from agent.emulator import cli as emulator_cli
    from agent.logs import configure_logging

    configure_logging("info", "auto")
    return _run_loop(emulator_cli.run(args))


def cmd_token_server(args: argparse.Namespace) -> int:
    from agent.logs import configure_logging
    from agent.token_server import cli as token_server_cli

    configure_logging("info", "auto")
    return token_server_cli.run(args)


def cmd_version(args: argparse.Namespace) -> int:
    _print(f"edge-agent {__version__}")
    return 0


def _run_loop(main: Any) -> int:
    """Run a coroutine on uvloop (the asyncio loop where uvloop is missing)."""
    try:
        import uvloop
    except ImportError:
        return int(asyncio.run(main))
    return int(uvloop.run(main))


if __name__ == "__main__":
    sys.exit(main())
