"""One MCP server the agent uses: started (or connected to), supervised, and called.

`McpServer` runs a task that starts a stdio server (or connects to a streamable HTTP one),
initialises the session, lists the tools (their input schemas translated by
`agent.tools.mcp_schema`, those that cannot be declared left out with a warning) and then
holds the session until it breaks. A broken session is opened again after a backoff that
doubles up to `MAX_BACKOFF_S`; meanwhile its tools answer with an error that says so. The SDK
(``mcp``, about 65 MB with its dependencies) is imported only when a server is started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from agent.tools.mcp_schema import SchemaError, convert_input_schema
from agent.tools.spec import McpServerSpec

__all__ = ["MAX_BACKOFF_S", "MAX_TOOLS", "McpServer", "McpTool"]

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0
MAX_TOOLS = 128
"""Tools declared from one server (the model's declarations are sent in every setup)."""
PING_S = 5.0
"""How often a held session is pinged (a server that does not answer is restarted)."""
RELIST_S = 30.0
"""How often a server's tools are listed again (a changed list is declared at the next
connection)."""
MAX_RESULT_CHARS = 32_768
"""Text kept of one call's result (more is cut, with a marker)."""


@dataclass(frozen=True, slots=True)
class McpTool:
    """A server's tool as the model sees it."""

    declared_name: str
    server_name: str  # the name the server knows it by
    description: str
    parameters: dict[str, Any] | None


class McpServer:
    """A supervised session with one MCP server."""

    def __init__(self, spec: McpServerSpec, *, initial_backoff_s: float = 0.5,
                 secret: str | None = None) -> None:
        if bool(spec.command) == bool(spec.url):
            raise ValueError("an MCP server needs a command or a url, not both")
        self.spec = spec
        self._headers = dict(spec.headers)
        if secret is not None:
            self._headers["Authorization"] = f"Bearer {secret}"
        self.tools: dict[str, McpTool] = {}
        self.restarts = 0
        self._session: Any = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._initial_backoff_s = initial_backoff_s
        self._retry_at = 0.0

    @property
    def up(self) -> bool:
        return self._session is not None

    async def start(self) -> None:
        """Start supervising (returns at once; `wait_ready` waits for the tool list)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"mcp-{self.spec.name}")

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the session is up and its tools listed; False after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        return self.up

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def declarations(self, behavior: str = "BLOCKING") -> list[dict[str, Any]]:
        """The function declarations of the tools listed last."""
        out = []
        for tool in self.tools.values():
            declaration: dict[str, Any] = {"name": tool.declared_name,
                                           "description": tool.description}
            if tool.parameters is not None:
                declaration["parameters"] = tool.parameters
            declaration["behavior"] = behavior
            out.append(declaration)
        return out

    async def call(self, declared_name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Call a tool; ``{"result": ...}`` or ``{"error": ...}``, never raises but for
        cancellation (which the SDK passes on to the server)."""
        tool = self.tools.get(declared_name)
        if tool is None:
            return {"error": f"there is no tool {declared_name!r} on {self.spec.name}"}
        session = self._session
        if session is None:
            wait = max(0.0, self._retry_at - asyncio.get_running_loop().time())
            return {"error": f"{self.spec.name} is not reachable right now (it is being "
                             f"restarted); nothing was done, try again in {wait:.0f} s"}
        try:
            result = await session.call_tool(tool.server_name, dict(arguments),
                                             read_timeout_seconds=self.spec.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the SDK's errors, a broken pipe, a timeout
            return {"error": f"{declared_name} failed: {type(exc).__name__}: {exc}"}
        return _payload(result)

    async def _supervise(self) -> None:
        backoff = self._initial_backoff_s
        while True:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the SDK's errors and anyio's exception groups
                log.warning("mcp.server_down", server=self.spec.name, error=_describe(exc),
                            retry_in_s=backoff)
            self._session = None
            self._ready.clear()
            self.restarts += 1
            loop = asyncio.get_running_loop()
            self._retry_at = loop.time() + backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _serve(self) -> None:
        from mcp import ClientSession

        async with self._transport() as streams, ClientSession(*streams[:2]) as session:
            await session.initialize()
            listed = await session.list_tools()
            self.tools = self._declare(listed.tools)
            self._session = session
            self._ready.set()
            log.info("mcp.server_up", server=self.spec.name, tools=sorted(self.tools))
            loop = asyncio.get_running_loop()
            relist_at = loop.time() + RELIST_S
            while True:  # hold the session; a ping that fails ends it
                await asyncio.sleep(PING_S)
                await session.send_ping()
                if loop.time() >= relist_at:
                    relist_at = loop.time() + RELIST_S
                    tools = self._declare((await session.list_tools()).tools)
                    if tools.keys() != self.tools.keys():
                        log.info("mcp.tools_changed", server=self.spec.name, tools=sorted(tools))
                    self.tools = tools

    def _transport(self) -> Any:
        if self.spec.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(headers=self._headers)
            return streamable_http_client(self.spec.url, http_client=client)
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        command, *args = self.spec.command
        return stdio_client(StdioServerParameters(command=command, args=args))

    def _declare(self, listed: Sequence[Any]) -> dict[str, McpTool]:
        tools: dict[str, McpTool] = {}
        for tool in listed:
            if self.spec.allow is not None and tool.name not in self.spec.allow:
                continue
            if len(tools) >= MAX_TOOLS:
                log.warning("mcp.too_many_tools", server=self.spec.name, kept=MAX_TOOLS)
                break
            try:
                converted = convert_input_schema(tool.input_schema)
            except SchemaError as exc:
                log.warning("mcp.tool_not_declared", server=self.spec.name, tool=tool.name,
                            reason=str(exc))
                continue
            if converted.dropped:
                log.info("mcp.schema_loosened", server=self.spec.name, tool=tool.name,
                         left_to_the_server=converted.dropped)
            declared = f"{self.spec.prefix}{tool.name}"
            tools[declared] = McpTool(declared, tool.name, tool.description or "",
                                      converted.parameters)
        return tools


def _payload(result: Any) -> dict[str, Any]:
    texts = [getattr(block, "text", None) for block in result.content]
    text = "\n".join(t for t in texts if isinstance(t, str))
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"...(cut, {len(text)} characters in all)"
    if result.is_error:
        return {"error": text or "the tool reported an error"}
    structured = result.structured_content
    return {"result": structured if structured is not None else text}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
