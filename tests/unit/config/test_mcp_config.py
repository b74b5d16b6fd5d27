"""[[tools]] kind = "mcp": a stdio command or an HTTP url, headers and a secret file, a prefix
and an allow-list; every mistake a problem with its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.config import ConfigError
from agent.config.gpio import parse_gpio

STDIO = {"name": "home", "kind": "mcp", "command": ["python3", "-m", "home_mcp"]}
HTTP = {"name": "ha", "kind": "mcp", "url": "https://ha.local:8123/mcp_server/sse",
        "secret_file": "/etc/edge-agent/ha-token"}


def test_stdio_and_http_servers_are_read_beside_gpio_tools() -> None:
    lamp = {"name": "lamp", "description": "Lamp.", "kind": "digital_output", "pin": 17}
    config = parse_gpio(None, [lamp, STDIO, {**HTTP, "allow": ["HassTurnOn"], "prefix": "",
                                             "behavior": "NON_BLOCKING", "timeout_s": 20}])
    assert [t.name for t in config.tools] == ["lamp"]
    home, ha = config.mcp_servers
    assert (home.command, home.prefix, home.allow, home.url) == (
        ("python3", "-m", "home_mcp"), "home_", None, None)
    assert (ha.url, ha.prefix, ha.allow, ha.secret_file) == (
        HTTP["url"], "", ("HassTurnOn",), Path("/etc/edge-agent/ha-token"))
    assert (ha.behavior, ha.scheduling, ha.timeout_s) == ("NON_BLOCKING", "WHEN_IDLE", 20.0)


@pytest.mark.parametrize(("table", "key", "fragment"), [
    ({"name": "m", "kind": "mcp"}, "tools[0].command", "give command"),
    ({**STDIO, "url": "https://x/mcp"}, "tools[0].command", "one of them"),
    ({**STDIO, "command": []}, "tools[0].command", "non-empty array of strings"),
    ({**STDIO, "command": "python3 server.py"}, "tools[0].command", "array of strings"),
    ({**HTTP, "url": "ftp://x"}, "tools[0].url", "http:// or https://"),
    ({**HTTP, "secret_file": "token"}, "tools[0].secret_file", "absolute path"),
    ({**STDIO, "secret_file": "/etc/t"}, "tools[0].secret_file", "needs url"),
    ({**HTTP, "headers": {"X-Count": 3}}, "tools[0].headers", "table of strings"),
    ({**STDIO, "allow": "light_on"}, "tools[0].allow", "array of tool names"),
    ({**STDIO, "pin": 17}, "tools[0].pin", 'unknown key for kind "mcp"'),
    ({**STDIO, "name": "has space"}, "tools[0].name", "must start with a letter"),
    ({**STDIO, "confirm": []}, "tools[0].confirm", "non-empty array"),
    ({**STDIO, "confirm": "open_garage"}, "tools[0].confirm", "true, false or"),
    ({**STDIO, "confirm_window_s": 10}, "tools[0].confirm_window_s", "only with confirm"),
    ({**STDIO, "confirm": True, "confirm_window_s": 1}, "tools[0].confirm_window_s",
     "between 5 and"),
])
def test_mistakes_are_problems_at_their_key(table: dict[str, Any], key: str,
                                            fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gpio(None, [table])
    assert [p.key for p in info.value.problems] == [key], info.value
    assert fragment in info.value.problems[0].message


def test_confirm_names_the_tools_that_wait_or_takes_them_all() -> None:
    named, every, none = parse_gpio(None, [
        {**STDIO, "confirm": ["open_garage"], "confirm_window_s": 15},
        {**STDIO, "name": "ha", "confirm": True}, {**STDIO, "name": "x"}]).mcp_servers
    assert (named.confirm, named.confirm_window_s) == (("open_garage",), 15.0)
    assert (every.confirm, every.confirm_window_s) == (True, 30.0)
    assert none.confirm is False


def test_a_server_may_not_take_a_gpio_tool_name() -> None:
    lamp = {"name": "home", "description": "Lamp.", "kind": "digital_output", "pin": 17}
    with pytest.raises(ConfigError) as info:
        parse_gpio(None, [lamp, STDIO])
    assert [p.key for p in info.value.problems] == ["tools[1].name"]
