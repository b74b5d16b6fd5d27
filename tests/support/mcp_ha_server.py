"""A stand-in for Home Assistant's MCP server: streamable HTTP at ``/api/mcp``, a long-lived
access token required as ``Authorization: Bearer``, and tools named as Home Assistant names
them (HassTurnOn, HassTurnOff, GetLiveContext), written with the SDK's own server side.

    python mcp_ha_server.py PORT TOKEN
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

STATE: dict[str, str] = {"kitchen light": "off", "porch light": "off"}
app = MCPServer("Home Assistant")


@app.tool()
def HassTurnOn(name: str) -> str:  # Home Assistant's own tool names
    """Turns on a device or entity."""
    STATE[name] = "on"
    return f"{name} is on"


@app.tool()
def HassTurnOff(name: str) -> str:
    """Turns off a device or entity."""
    STATE[name] = "off"
    return f"{name} is off"


@app.tool()
def GetLiveContext() -> dict[str, str]:
    """The current state of the home."""
    return dict(STATE)


def require_token(inner: Any, token: str) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"401: Unauthorized"})
                return
        await inner(scope, receive, send)

    return asgi


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    starlette = app.streamable_http_app(streamable_http_path="/api/mcp")
    uvicorn.run(require_token(starlette, token), host="127.0.0.1", port=port, log_level="error")
