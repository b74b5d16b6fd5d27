"""[gpio], [gpio.status] and [[tools]]: the tools layer's part of the config file.

The keys every tool has (``name``, ``description``, ``kind``, ``rate_limit``,
``timeout_s``) are read here; a kind's own keys are read by that kind's reader in
`agent.tools.kinds.KINDS`, handed the tool's `Table`. A pin claimed twice (by two tools, or
by a tool and the status GPIO) and a name used twice are problems as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from agent.config.problems import ConfigError, ConfigProblem
from agent.config.reader import REQUIRED, Table, describe
from agent.tools.claims import find_conflicts
from agent.tools.confirm import MIN_CONFIRM_WINDOW_S
from agent.tools.kinds import KINDS
from agent.tools.option_reader import MAX_SECONDS
from agent.tools.spec import (
    BEHAVIORS,
    DEFAULT_RATE_LIMIT,
    SCHEDULINGS,
    STATUS_LEDS,
    GpioConfig,
    McpServerSpec,
    PinFactoryKind,
    RateLimit,
    Scheduling,
    StatusGpioSpec,
    ToolSpec,
)

__all__ = ["parse_gpio", "parse_status_gpio", "parse_tools", "read_gpio"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_NAME_HELP = ("must start with a letter or _ and use only letters, digits, _ . : - "
              "(at most 64 characters)")


def read_gpio(top: Table) -> GpioConfig:
    """``gpio`` and ``tools`` of the document table ``top``; problems go to its list."""
    t = top.section("gpio")
    factory = t.text("pin_factory", "default", get_args(PinFactoryKind))
    chip = _chip(t)
    safe_after = t.number("safe_after_disconnect_s", 30.0, 0, 86_400, lo_open=True)
    status = _status(t.section("status")) if t.has("status") else None
    t.finish()
    tools = _tools(top)
    for path, message in find_conflicts(tools, status):
        top.problem(path, message)
    servers = _mcp_servers(top)
    _check_names(top, tools, servers)
    return GpioConfig(pin_factory=factory, chip=chip, safe_after_disconnect_s=safe_after,
                      status=status, tools=tuple(spec for _, spec in tools),
                      mcp_servers=tuple(spec for _, spec in servers))


def parse_gpio(gpio: object, tools: object) -> GpioConfig:
    """``[gpio]`` and ``[[tools]]`` as ``tomllib`` gives them (None: absent).

    Raises:
        ConfigError: every problem, each with its key path (``tools[2].pin``).
    """
    problems: list[ConfigProblem] = []
    doc = {key: value for key, value in (("gpio", gpio), ("tools", tools)) if value is not None}
    config = read_gpio(Table(doc, (), problems))
    _raise_if_any(problems)
    return config


def parse_tools(raw: object) -> list[ToolSpec]:
    """The ``[[tools]]`` array alone (names and pins checked among the tools).

    Raises:
        ConfigError: every problem, each with its key path.
    """
    problems: list[ConfigProblem] = []
    top = Table({"tools": raw}, (), problems)
    tools = _tools(top)
    for path, message in find_conflicts(tools):
        top.problem(path, message)
    _raise_if_any(problems)
    return [spec for _, spec in tools]


def parse_status_gpio(raw: object) -> StatusGpioSpec:
    """The ``[gpio.status]`` table alone.

    Raises:
        ConfigError: every problem, each with its key path.
    """
    problems: list[ConfigProblem] = []
    top = Table({}, (), problems)
    spec = _status(Table(raw, ("gpio", "status"), problems))
    for path, message in find_conflicts([], spec):
        top.problem(path, message)
    _raise_if_any(problems)
    return spec


def _raise_if_any(problems: list[ConfigProblem]) -> None:
    if problems:
        raise ConfigError(problems)


def _chip(t: Table) -> int | Literal["auto"]:
    raw = t.get("chip", "auto")
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 63:
        return raw
    if raw != "auto":
        t.invalid("chip", 'must be "auto" or a gpiochip number 0..63', raw)
    return "auto"


def _status(t: Table) -> StatusGpioSpec:
    leds: dict[str, int] = {}
    raw_leds = t.get("leds", {})
    if isinstance(raw_leds, Mapping):
        sub = t.section("leds")
        for name in STATUS_LEDS:
            pin = sub.pin(name, None)
            if pin is not None:
                leds[name] = pin
        sub.finish()
    else:
        t.invalid("leds", "must be a table { connected = N, listening = N, speaking = N, "
                          "error = N }", raw_leds)
    bounce = t.number("bounce_s", 0.05, 0, 1, lo_open=True)
    spec = StatusGpioSpec(
        leds=leds,
        leds_active_low=t.flag("leds_active_low", False),
        mute_button=t.pin("mute_button", None),
        mute_mode=t.text("mute_mode", "toggle", ("toggle", "switch")),
        push_to_talk_button=t.pin("push_to_talk_button", None),
        confirm_button=t.pin("confirm_button", None),
        buttons_pull_up=t.flag("buttons_pull_up", True),
        bounce_s=bounce,
    )
    t.finish()
    return spec


def _tools(top: Table) -> list[tuple[int, ToolSpec]]:
    """The tools that were read without a problem, each with its index in the array."""
    raw = top.get("tools", None)
    if raw is None:
        return []
    if not isinstance(raw, list):
        top.invalid("tools", "must be an array of tables ([[tools]])", raw)
        return []
    out: list[tuple[int, ToolSpec]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            top.invalid(("tools", i), "must be a table ([[tools]])", item)
            continue
        if item.get("kind") == "mcp":
            continue  # a server of tools, read by _mcp_servers
        spec = _tool(Table(item, (*top.loc, "tools", i), top.problems))
        if spec is not None:
            out.append((i, spec))
    return out


def _mcp_servers(top: Table) -> list[tuple[int, McpServerSpec]]:
    """The ``kind = "mcp"`` tables of ``[[tools]]``: each an MCP server whose tools the model
    may call."""
    raw = top.raw.get("tools")
    if not isinstance(raw, list):
        return []
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and item.get("kind") == "mcp":
            spec = _mcp_server(Table(item, (*top.loc, "tools", i), top.problems))
            if spec is not None:
                out.append((i, spec))
    return out


def _mcp_server(t: Table) -> McpServerSpec | None:
    start = len(t.problems)
    name = t.text("name")
    if name is not None and not _NAME.fullmatch(name):
        t.invalid("name", _NAME_HELP, name)
    t.text("kind", REQUIRED, ("mcp",))
    command = t.get("command", None)
    url = t.text("url", None)
    if command is not None and (not isinstance(command, list) or not command
                                or not all(isinstance(c, str) and c for c in command)):
        t.invalid("command", "must be a non-empty array of strings (the program and its "
                             "arguments)", command)
        command = None
    if (command is None) == (url is None) and len(t.problems) == start:
        t.problem("command", 'give command = ["program", "args"...] (a stdio server) or url = '
                             '"https://..." (streamable HTTP), one of them')
    if url is not None and not url.startswith(("http://", "https://")):
        t.invalid("url", "must be an http:// or https:// URL", url)
    headers = _string_table(t, "headers")
    written_secret = t.text("secret_file", None)
    secret_file = None if written_secret is None else Path(written_secret).expanduser()
    if secret_file is not None and not secret_file.is_absolute():
        t.invalid("secret_file", "must be an absolute path", written_secret)
    if secret_file is not None and url is None:
        t.problem("secret_file", "is sent as an HTTP header: it needs url")
    prefix = t.text("prefix", f"{name}_" if name else "", allow_empty=True)
    allow = t.get("allow", None)
    if allow is not None and (not isinstance(allow, list)
                              or not all(isinstance(a, str) for a in allow)):
        t.invalid("allow", "must be an array of tool names", allow)
        allow = None
    rate_limit = _rate_limit(t)
    behavior = t.text("behavior", "BLOCKING", BEHAVIORS)
    scheduling = _scheduling(t, behavior)
    timeout = t.number("timeout_s", 10.0, 0, MAX_SECONDS, lo_open=True)
    confirm = _mcp_confirm(t)
    window = _confirm_window(t, bool(confirm))
    t.finish(' for kind "mcp"')
    if name is None or len(t.problems) > start:
        return None
    return McpServerSpec(
        name=name, command=tuple(command or ()), url=url, headers=headers, prefix=prefix,
        allow=None if allow is None else tuple(allow), timeout_s=timeout,
        rate_limit=rate_limit, behavior=behavior, scheduling=scheduling,
        secret_file=secret_file, confirm=confirm, confirm_window_s=window)


def _mcp_confirm(t: Table) -> bool | tuple[str, ...]:
    """``confirm``: true (every tool of the server) or the names of the tools, as the server
    names them, that wait for the user's confirmation."""
    confirm = t.get("confirm", False)
    if isinstance(confirm, bool):
        return confirm
    if (isinstance(confirm, list) and confirm
            and all(isinstance(c, str) and c for c in confirm)):
        return tuple(confirm)
    t.invalid("confirm", "must be true, false or a non-empty array of the server's tool "
                         "names", confirm)
    return False


def _string_table(t: Table, key: str) -> dict[str, str]:
    raw = t.get(key, None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        t.invalid(key, "must be a table of strings", raw)
        return {}
    return dict(raw)


def _check_names(top: Table, tools: list[tuple[int, ToolSpec]],
                 servers: list[tuple[int, McpServerSpec]]) -> None:
    """A server's name is a tool name too: the same name twice is an error."""
    seen = {spec.name: i for i, spec in tools}
    for i, spec in servers:
        if spec.name in seen:
            top.problem(("tools", i, "name"),
                        f"{describe(spec.name)} is already the name of tools[{seen[spec.name]}]")
        seen[spec.name] = i


def _tool(t: Table) -> ToolSpec | None:
    start = len(t.problems)
    name = t.text("name")
    if name is not None and not _NAME.fullmatch(name):
        t.invalid("name", _NAME_HELP, name)
    written = t.text("description", REQUIRED, allow_empty=True)
    description = (written or "").strip()
    if written is not None and not description:
        t.problem("description", "must say what the function does (the model reads it)")
    kind = t.text("kind", REQUIRED, tuple(KINDS))
    rate_limit = _rate_limit(t)
    behavior = t.text("behavior", "BLOCKING", BEHAVIORS)
    scheduling = _scheduling(t, behavior)
    confirm = t.flag("confirm", False)
    window = _confirm_window(t, confirm)
    if kind is None:
        return None  # kind-specific keys cannot be judged without a kind
    result = KINDS[kind].read(t)
    timeout = t.number("timeout_s", result.default_timeout_s, 0, MAX_SECONDS, lo_open=True)
    if timeout <= result.min_timeout_s:
        t.problem("timeout_s", f"must be longer than the longest action "
                               f"({result.min_timeout_s:g} s)")
    t.finish(f" for kind {describe(kind)}")
    if name is None or len(t.problems) > start:
        return None
    return ToolSpec(
        name=name, description=description, kind=kind, pins=result.pins,
        options=result.options, parameters=result.parameters, active_low=result.active_low,
        safe_state=result.safe_state, rate_limit=rate_limit, timeout_s=timeout,
        behavior=behavior, scheduling=scheduling, confirm=bool(confirm), confirm_window_s=window)


def _confirm_window(t: Table, confirm: object) -> float:
    """How long a request for confirmation waits for its confirming call."""
    if confirm:
        # at least a few seconds: the user has to hear the question and answer it
        window: float = t.number("confirm_window_s", 30.0, MIN_CONFIRM_WINDOW_S, MAX_SECONDS)
        return window
    if t.has("confirm_window_s"):
        t.get("confirm_window_s", None)  # read: not reported again as an unknown key
        if t.raw.get("confirm", False) is False:  # else confirm has its own problem
            t.problem("confirm_window_s", "applies only with confirm = true; remove it or "
                                          "set confirm = true")
    return 30.0


def _scheduling(t: Table, behavior: str | None) -> Scheduling | None:
    """What the model does with a non-blocking tool's result (default ``WHEN_IDLE``); a
    blocking tool's result is awaited, so it takes no scheduling."""
    if behavior == "NON_BLOCKING":
        scheduling: Scheduling = t.text("scheduling", "WHEN_IDLE", SCHEDULINGS)
        return scheduling
    if t.has("scheduling"):
        t.problem("scheduling", 'applies only to behavior = "NON_BLOCKING" tools (the model '
                                "waits for a blocking tool's result); remove it or make the "
                                "tool non-blocking")
        t.get("scheduling", None)  # read: reported once, not again as an unknown key
    return None


def _rate_limit(t: Table) -> RateLimit | None:
    raw = t.get("rate_limit", None)
    if raw is None:
        return DEFAULT_RATE_LIMIT
    if raw is False:  # explicitly unlimited
        return None
    if not isinstance(raw, Mapping):
        t.invalid("rate_limit", "must be a table { calls = N, per_s = S } or false", raw)
        return DEFAULT_RATE_LIMIT
    sub = t.section("rate_limit")
    calls = sub.number("calls", REQUIRED, 1, 10_000)
    per_s = sub.number("per_s", REQUIRED, 0, 86_400, lo_open=True)
    sub.finish()
    if calls is not None and not calls.is_integer():
        sub.invalid("calls", "must be a whole number", calls)
    if calls is None or per_s is None:
        return DEFAULT_RATE_LIMIT  # reported: the tool is not built
    return RateLimit(calls=int(calls), per_s=per_s)
