"""A small MCP server written with the SDK's own server side, for the tests: a light, a garage
door that writes each move to the file named by its first argument (when given), a slow
report, a tool that fails, one that ends the server, and one whose schema cannot be declared."""

from __future__ import annotations

import os
import sys
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
def open_garage(door: str) -> str:
    """Open a garage door."""
    if len(sys.argv) > 1:
        with open(sys.argv[1], "a", encoding="utf-8") as out:
            out.write(f"open {door}\n")
    return f"{door} opening"


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
