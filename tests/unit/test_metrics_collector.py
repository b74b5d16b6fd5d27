"""The collector's output read back with prometheus-client's own text parser."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.live.conversation import ConversationStats
from agent.live.resilient import SessionState, SessionStats
from agent.metrics import collector_registry, status_lines
from agent.usage import BudgetLevel, DayUsage, UsageReport


class Counters:
    """A MetricsSource over stats made here."""

    def __init__(self) -> None:
        self.session: SessionStats | None = SessionStats(state=SessionState.LIVE,
                                                         connections=3)
        self.conversation: ConversationStats | None = ConversationStats(wakes=2)

    def session_stats(self) -> SessionStats | None:
        return self.session

    def conversation_stats(self) -> ConversationStats | None:
        return self.conversation

    def tool_outcomes(self) -> Mapping[tuple[str, str], int]:
        return {("lamp", "ok"): 4}

    def device_drops(self) -> tuple[int, float]:
        return 7, 1.5

    def usage_report(self) -> UsageReport:
        today = DayUsage(date(2026, 12, 6), {("input", "AUDIO"): 600, ("output", "AUDIO"): 300})
        return UsageReport(today=today, cost=0.0054, currency="USD",
                           since_start={("input", "AUDIO"): 60},
                           budget=BudgetLevel(share=0.75, steps=("camera_off",)))


def scrape(source: Counters) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(collector_registry(source)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_histograms_and_drops_parse() -> None:
    source = Counters()
    assert source.conversation is not None and source.session is not None
    for seconds in (0.3, 0.4, 2.5):
        source.conversation.voice_latency.observe(seconds)
    source.conversation.tool_latency.observe(0.02)
    source.session.reconnect_gaps.observe(1.5)
    got = scrape(source)
    assert got[("edge_agent_session_state", (("state", "live"),))] == 1.0
    assert got[("edge_agent_connections_total", ())] == 3
    assert got[("edge_agent_wakes_total", ())] == 2
    assert got[("edge_agent_tool_calls_total", (("outcome", "ok"), ("tool", "lamp")))] == 4
    assert got[("edge_agent_voice_latency_seconds_bucket", (("le", "0.3"),))] == 1
    assert got[("edge_agent_voice_latency_seconds_bucket", (("le", "0.5"),))] == 2
    assert got[("edge_agent_voice_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("edge_agent_voice_latency_seconds_count", ())] == 3
    assert abs(got[("edge_agent_voice_latency_seconds_sum", ())] - 3.2) < 1e-9
    assert got[("edge_agent_tool_call_latency_seconds_bucket", (("le", "0.025"),))] == 1
    assert got[("edge_agent_reconnect_gap_seconds_bucket", (("le", "1.0"),))] == 0
    assert got[("edge_agent_reconnect_gap_seconds_bucket", (("le", "2.0"),))] == 1
    assert got[("edge_agent_mic_chunks_dropped_total", ())] == 7
    assert got[("edge_agent_speaker_dropped_seconds_total", ())] == 1.5


def test_usage_cost_and_budget_parse() -> None:
    got = scrape(Counters())
    audio_in = (("direction", "input"), ("modality", "AUDIO"))
    assert got[("edge_agent_tokens_total", audio_in)] == 60
    assert got[("edge_agent_tokens_today", audio_in)] == 600
    assert got[("edge_agent_cost_today", (("currency", "USD"),))] == 0.0054
    assert got[("edge_agent_budget_used_ratio", ())] == 0.75
    assert got[("edge_agent_budget_step", (("step", "camera_off"),))] == 1.0
    assert got[("edge_agent_budget_step", (("step", "wake_word_only"),))] == 0.0
    assert got[("edge_agent_budget_stopped", ())] == 0.0


def test_parts_not_running_are_left_out() -> None:
    source = Counters()
    source.session = source.conversation = None
    got = scrape(source)
    assert got[("edge_agent_session_state", (("state", "live"),))] == 0.0
    assert not any(name.startswith("edge_agent_voice_latency") for name, _ in got)


def test_status_reads_the_metrics_back() -> None:
    source = Counters()
    assert source.conversation is not None
    for seconds in (0.3, 0.4, 2.5):
        source.conversation.voice_latency.observe(seconds)
    lines = status_lines(generate_latest(collector_registry(source)).decode())
    assert lines[0] == "session: live"
    assert lines[1].startswith("connections 3, resumed 0,")
    assert "tool calls: lamp ok 4" in lines
    assert "voice latency: p50 <= 0.5 s, p99 <= 3 s (3 measured)" in lines
    assert "today: 900 tokens (input audio 600, output audio 300), about 0.0054 USD" in lines
    assert "budget: 75% of today's used; given up: camera_off" in lines


@pytest.mark.parametrize("text", ["not metrics at all {", 'edge_agent_session_state{x="1"} 1\n'])
def test_status_refuses_what_is_not_the_agents_metrics(text: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        status_lines(text)
