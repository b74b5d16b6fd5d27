"""Prometheus metrics of the running agent, read from its counters when scraped.

Nothing is counted twice or on the hot path: the collector reads the session's, the
conversation's and the tool registry's own counters at scrape time, so metrics cost nothing
between scrapes. They are served over HTTP (``[metrics] listen``) by prometheus-client's own
server thread, or written to a node_exporter textfile (``[metrics] textfile``) every
``textfile_interval_s``, atomically. The daemon imports this module (and prometheus-client,
about 12 MB) only when metrics are on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from agent.live.conversation import ConversationStats
from agent.live.histogram import Histogram
from agent.live.resilient import SessionState, SessionStats
from agent.usage import BUDGET_STEPS, UsageReport

__all__ = ["MetricsService", "MetricsSource", "collector_registry"]

log = structlog.get_logger(__name__)

PREFIX = "edge_agent"


class MetricsSource(Protocol):
    """Where the counters are (the daemon): each None while that part is not running."""

    def session_stats(self) -> SessionStats | None: ...

    def conversation_stats(self) -> ConversationStats | None: ...

    def tool_outcomes(self) -> Mapping[tuple[str, str], int]: ...

    def device_drops(self) -> tuple[int, float]:
        """Microphone chunks and seconds of speaker audio dropped by full queues."""

    def usage_report(self) -> UsageReport: ...


_SESSION_COUNTERS = {
    "connections": "Connections opened to the Live API",
    "resumptions": "Connections that resumed the session",
    "fresh_starts": "Connections that started a fresh session",
    "failures": "Connections that failed or were lost",
    "go_aways": "goAway messages from the service",
    "replayed_chunks": "Audio chunks held while disconnected and sent after a reconnect",
    "dropped_chunks": "Audio chunks dropped while disconnected (beyond the replay buffer)",
    "attempts_limited": "Connection attempts delayed by the attempt rate limit",
    "duplicate_tool_calls": "Tool calls the service repeated, passed on once",
}
_CONVERSATION_COUNTERS = {
    "chunks_sent": "Microphone audio chunks sent",
    "chunks_gated": "Microphone audio chunks kept on the device (not listening)",
    "audio_chunks_played": "Model audio chunks played",
    "frames_sent": "Camera frames sent",
    "frames_held": "Camera frames not sent (unchanged, or outside a conversation)",
    "interruptions": "Model turns interrupted",
    "wakes": "Wake word detections",
    "tool_cancellations": "Tool calls cancelled by the service",
    "tool_calls_refused": "Tool calls refused (too many running)",
}


class AgentCollector(Collector):
    """A prometheus-client collector over a `MetricsSource`."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        session = self.source.session_stats()
        state = GaugeMetricFamily(f"{PREFIX}_session_state",
                                  "1 for the session's current state", labels=["state"])
        for name in SessionState:
            state.add_metric([str(name)], 1.0 if session and session.state is name else 0.0)
        yield state
        if session is not None:
            for field, text in _SESSION_COUNTERS.items():
                yield CounterMetricFamily(f"{PREFIX}_{field}", text, value=getattr(session, field))
            yield histogram(f"{PREFIX}_reconnect_gap_seconds",
                            "From losing a live connection to the next one being live",
                            session.reconnect_gaps)
            bad = CounterMetricFamily(f"{PREFIX}_bad_server_input",
                                      "Server input dropped as invalid, by kind", labels=["kind"])
            for kind, count in session.bad_input.items():
                bad.add_metric([kind], count)
            yield bad
        conversation = self.source.conversation_stats()
        if conversation is not None:
            for field, text in _CONVERSATION_COUNTERS.items():
                yield CounterMetricFamily(f"{PREFIX}_{field}", text,
                                          value=getattr(conversation, field))
            yield histogram(f"{PREFIX}_voice_latency_seconds",
                            "From the end of the user's speech to the reply's first audio",
                            conversation.voice_latency)
            yield histogram(f"{PREFIX}_tool_call_latency_seconds",
                            "From a tool call's arrival to its response being sent",
                            conversation.tool_latency)
        mic, speaker_s = self.source.device_drops()
        yield CounterMetricFamily(f"{PREFIX}_mic_chunks_dropped",
                                  "Microphone chunks dropped (the agent fell behind)", value=mic)
        yield CounterMetricFamily(f"{PREFIX}_speaker_dropped_seconds",
                                  "Reply audio dropped (the playback buffer was full)",
                                  value=speaker_s)
        calls = CounterMetricFamily(f"{PREFIX}_tool_calls", "Tool calls by tool and outcome",
                                    labels=["tool", "outcome"])
        for (tool, outcome), count in self.source.tool_outcomes().items():
            calls.add_metric([tool, outcome], count)
        yield calls
        yield from usage_metrics(self.source.usage_report())


def usage_metrics(report: UsageReport) -> Iterator[Metric]:
    labels = ["direction", "modality"]
    since = CounterMetricFamily(f"{PREFIX}_tokens", "Tokens the service reported since the "
                                "agent started, by direction and modality", labels=labels)
    for (direction, modality), count in sorted(report.since_start.items()):
        since.add_metric([direction, modality], count)
    yield since
    today = GaugeMetricFamily(f"{PREFIX}_tokens_today", "Tokens used today (local time), by "
                              "direction and modality; kept across restarts", labels=labels)
    for (direction, modality), count in sorted(report.today.tokens.items()):
        today.add_metric([direction, modality], count)
    yield today
    cost = GaugeMetricFamily(f"{PREFIX}_cost_today", "Estimated cost of today's tokens at the "
                             "configured prices", labels=["currency"])
    cost.add_metric([report.currency], report.cost)
    yield cost
    budget = report.budget
    yield GaugeMetricFamily(f"{PREFIX}_budget_used_ratio", "Share of the day's budget used "
                            "(0 without a budget)", value=budget.share)
    steps = GaugeMetricFamily(f"{PREFIX}_budget_step", "1 for each step the budget gave up",
                              labels=["step"])
    for step in BUDGET_STEPS:
        steps.add_metric([step], 1.0 if step in budget.steps else 0.0)
    yield steps
    yield GaugeMetricFamily(f"{PREFIX}_budget_stopped", "1 while the day's budget is used up",
                            value=1.0 if budget.stopped else 0.0)


def histogram(name: str, text: str, values: Histogram) -> HistogramMetricFamily:
    buckets = [("+Inf" if math.isinf(bound) else repr(bound), float(count))
               for bound, count in values.cumulative()]
    return HistogramMetricFamily(name, text, buckets=buckets, sum_value=values.sum)


def collector_registry(source: MetricsSource) -> CollectorRegistry:
    """A registry holding only the agent's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(source))
    return registry


class MetricsService:
    """Serves or writes the metrics while running."""

    def __init__(self, source: MetricsSource, *, listen: tuple[str, int] | None = None,
                 textfile: Path | None = None, interval_s: float = 15.0) -> None:
        self.registry = collector_registry(source)
        self.listen = listen
        self.textfile = textfile
        self.interval_s = interval_s
        self._server: Any = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        """The port being served (the one asked for, or the one picked for port 0)."""
        return None if self._server is None else int(self._server.server_port)

    def start(self) -> None:
        """Start serving or writing; raises OSError when the address cannot be bound."""
        if self.listen is not None:
            host, port = self.listen
            self._server, _thread = start_http_server(port, host, registry=self.registry)
            log.info("metrics.serving", host=host, port=self.port)
        if self.textfile is not None:
            self._writer = asyncio.create_task(self._write_every(self.textfile), name="metrics")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def _write_every(self, path: Path) -> None:
        while True:
            try:
                await asyncio.to_thread(write_to_textfile, str(path), self.registry)
            except OSError as exc:
                log.warning("metrics.textfile_failed", path=str(path), error=str(exc))
            await asyncio.sleep(self.interval_s)


# -- `edge-agent status` ----------------------------------------------------------------------

MAX_SCRAPE_BYTES = 1024 * 1024


def read_metrics_text(listen: tuple[str, int], timeout_s: float = 3.0) -> str:
    """The running agent's metrics (OSError when nothing answers)."""
    host, port = listen
    host = f"[{host}]" if ":" in host else host
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as answer:
        body: bytes = answer.read(MAX_SCRAPE_BYTES + 1)
    if len(body) > MAX_SCRAPE_BYTES:
        raise OSError(f"more than {MAX_SCRAPE_BYTES} bytes of metrics")
    return body.decode("utf-8", "replace")


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _samples(text: str) -> Samples:
    got: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            got.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return got


def status_lines(text: str) -> list[str]:
    """What ``edge-agent status`` shows of the agent's metrics (raises ValueError when the text
    is not Prometheus's format)."""
    got = _samples(text)

    def one(name: str) -> int:
        return round(sum(value for _, value in got.get(f"{PREFIX}_{name}", [])))

    states = [labels["state"] for labels, value in got.get(f"{PREFIX}_session_state", [])
              if value == 1.0]
    lines = [f"session: {states[0] if states else 'not running'}"]
    if f"{PREFIX}_connections_total" in got:
        lines.append(
            f"connections {one('connections_total')}, resumed "
            f"{one('resumptions_total')}, fresh {one('fresh_starts_total')}, "
            f"failures {one('failures_total')}, goAways {one('go_aways_total')}")
    if f"{PREFIX}_chunks_sent_total" in got:
        lines.append(
            f"audio chunks sent {one('chunks_sent_total')}, played "
            f"{one('audio_chunks_played_total')}; camera frames sent "
            f"{one('frames_sent_total')}; wake words {one('wakes_total')}")
    calls = [f"{labels['tool']} {labels['outcome']} {round(value)}"
             for labels, value in got.get(f"{PREFIX}_tool_calls_total", [])]
    lines.append("tool calls: " + (", ".join(calls) if calls else "none"))
    for name, what in (("voice_latency", "voice latency"), ("tool_call_latency", "tool calls")):
        buckets = [(float(labels["le"]), value)
                   for labels, value in got.get(f"{PREFIX}_{name}_seconds_bucket", [])]
        quantiles = _quantiles(buckets)
        if quantiles is not None:
            lines.append(f"{what}: p50 <= {quantiles[0]:g} s, p99 <= {quantiles[1]:g} s "
                         f"({round(buckets[-1][1])} measured)")
    today = {(labels["direction"], labels["modality"]): round(value)
             for labels, value in got.get(f"{PREFIX}_tokens_today", [])}
    [(cost_labels, cost)] = got.get(f"{PREFIX}_cost_today", [({"currency": ""}, 0.0)])
    lines.append(today_line(today, cost, cost_labels.get("currency", "")))
    share = got.get(f"{PREFIX}_budget_used_ratio", [({}, 0.0)])[0][1]
    steps = [labels["step"] for labels, value in got.get(f"{PREFIX}_budget_step", [])
             if value == 1.0]
    stopped = one("budget_stopped") == 1
    if share or steps or stopped:
        lines.append(budget_line(share, steps, stopped))
    return lines


def _quantiles(buckets: list[tuple[float, float]]) -> tuple[float, float] | None:
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    median, p99 = (next(bound for bound, count in buckets if count >= q * total)
                   for q in (0.5, 0.99))
    return median, p99


def today_line(tokens: Mapping[tuple[str, str], int], cost: float, currency: str) -> str:
    parts = ", ".join(f"{d} {m.lower()} {n:,}" for (d, m), n in sorted(tokens.items()))
    total = sum(tokens.values())
    return (f"today: {total:,} tokens" + (f" ({parts})" if parts else "")
            + (f", about {cost:.4f} {currency}" if cost else ""))


def budget_line(share: float, steps: list[str], stopped: bool) -> str:
    text = f"budget: {share:.0%} of today's used"
    if steps:
        text += "; given up: " + ", ".join(steps)
    if stopped:
        text += "; used up: no conversations until tomorrow"
    return text
