"""A small MCP server written with the SDK's own server side, for the tests: a light, a slow
report, a tool that fails, one that ends the server, and one whose schema cannot be declared."""

from __future__ import annotations

import os
import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("home")


@app.tool()
def light_on(entity_id: str, brightness: int | None = None) -> str:
    """Switch a light on."""
    return f"{entity_id} on at {brightness}"


@app.tool()
def slow_report(seconds: float) -> str:
    """Take a while, then report."""
    time.sleep(seconds)
    return "done"


@app.tool()
def broken() -> str:
    """Always fails."""
    raise ToolError("the boiler is offline")


@app.tool()
def crash() -> str:
    """End the server at once."""
    os._exit(3)


@app.tool()
def either(value: int | str) -> Any:
    """A union the Live API cannot declare."""
    return value


if __name__ == "__main__":
    app.run()
