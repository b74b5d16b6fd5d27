"""Function call ids across the connections of one resumed session.

A handler runs at most once per call id, however often the service sends the call. A response
goes only to a connection whose session knows the call: the service saves no resumable state
while a function call runs, so a session resumed after a drop does not know calls made just
before it, and answering one there is refused (1007). If the service asks again, the cached
response is sent without running the handler again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.live.types import FunctionCall, FunctionResponse


@dataclass(slots=True)
class _Call:
    connection: int
    response: FunctionResponse | None = None
    sent_on: int | None = None


class CallLedger:
    """Remembers the newest ``limit`` call ids."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    def on_calls(
        self, calls: Sequence[FunctionCall], connection: int
    ) -> tuple[list[FunctionCall], list[FunctionResponse], int]:
        """Sort a toolCall's calls: those to run, cached responses to send again, and how
        many were duplicates."""
        run: list[FunctionCall] = []
        resend: list[FunctionResponse] = []
        duplicates = 0
        for call in calls:
            if call.id is None:
                run.append(call)  # nothing to recognise it by (some Vertex models send no ids)
                continue
            known = self._calls.get(call.id)
            if known is None:
                self._calls[call.id] = _Call(connection)
                while len(self._calls) > self._limit:
                    self._calls.popitem(last=False)
                run.append(call)
                continue
            duplicates += 1
            if known.response is not None and known.sent_on != connection:
                resend.append(known.response)
            known.connection = connection
        return run, resend, duplicates

    def deliverable(
        self, responses: Iterable[FunctionResponse], connection: int
    ) -> tuple[list[FunctionResponse], list[FunctionResponse]]:
        """Split responses into those this connection's session can take and stale ones."""
        send: list[FunctionResponse] = []
        stale: list[FunctionResponse] = []
        for response in responses:
            known = self._calls.get(response.id) if response.id is not None else None
            if known is not None:
                known.response = response
                if known.connection != connection:
                    stale.append(response)
                    continue
            send.append(response)
        return send, stale

    def mark_sent(self, responses: Iterable[FunctionResponse], connection: int) -> None:
        for response in responses:
            known = self._calls.get(response.id) if response.id is not None else None
            if known is not None:
                known.sent_on = connection

    def cancel(self, ids: Iterable[str]) -> None:
        """The service cancelled these calls: it expects no response."""
        for call_id in ids:
            known = self._calls.get(call_id)
            if known is not None and known.response is None:
                known.sent_on = known.connection

    def outstanding(self, connection: int) -> bool:
        """Whether a call of this connection still waits for its response."""
        return any(
            c.connection == connection and c.sent_on is None for c in reversed(self._calls.values())
        )
