"""Scenario files: parsing, matching, errors that name the key, the shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.emulator.faults import Fault, FaultKind, Trigger
from agent.emulator.scenario import CallSpec, Scenario, ScenarioError

SHIPPED = Path(__file__).parents[3] / "agent" / "emulator" / "scenarios"


def test_shipped_examples_parse() -> None:
    files = sorted(SHIPPED.glob("*.toml"))
    assert files
    for path in files:
        scenario = Scenario.load(path)
        assert scenario.rules
    lamp = Scenario.load(SHIPPED / "lamp.toml")
    rule = lamp.match("please switch the lamp on", spoken=2, turn=2)
    assert rule is not None and rule.calls == (CallSpec("set_lamp", {"action": "on"}),)
    assert lamp.faults == ()
    faults = Scenario.load(SHIPPED / "faults.toml")
    assert [n for n, _ in faults.faults] == [2, 3, 4]


def test_matching_by_spoken_index_turn_index_and_text() -> None:
    scenario = Scenario.parse(
        """
        default_reply = "echo {text}"
        [[turn]]
        spoken = 2
        said = "second"
        reply = "two"
        [[turn]]
        turn = 3
        text = "Lamp"
        reply = "three with lamp"
        [[turn]]
        text = "lamp"
        reply = "any lamp"
        [[turn]]
        said = "never matches: no criteria other than said"
        """
    )
    assert scenario.transcript(2) == "second" and scenario.transcript(1) == "spoken turn 1"
    assert scenario.reply_text(scenario.match("x", spoken=2, turn=9), "x") == "two"
    assert scenario.reply_text(scenario.match("the LAMP", None, turn=3), "") == "three with lamp"
    assert scenario.reply_text(scenario.match("lamp!", None, turn=4), "") == "any lamp"
    assert scenario.match("nothing", None, turn=4) is None
    assert scenario.reply_text(None, "hi") == "echo hi"


def test_a_reply_may_quote_the_previous_turn() -> None:
    scenario = Scenario.from_mapping({"default_reply": "{text}, after {previous}",
                                      "turn": [{"turn": 2, "reply": "you said {previous}"}]})
    assert scenario.reply_text(None, "b", "a") == "b, after a"
    assert scenario.reply_text(scenario.match("x", None, turn=2), "x", "a") == "you said a"
    assert scenario.reply_text(None, "b") == "b, after "


def test_calls_faults_and_options() -> None:
    scenario = Scenario.parse(
        """
        [[turn]]
        text = "a"
        wait = false
        audio_s = 1.5
        call = { name = "f", args = { x = 1 } }
        fault = { kind = "cancel_tool_call", seconds = 0.5 }
        [[fault]]
        connection = 3
        kind = "handshake_refuse"
        status = 429
        """
    )
    rule = scenario.rules[0]
    assert rule.calls == (CallSpec("f", {"x": 1}),) and not rule.wait and rule.audio_s == 1.5
    assert rule.fault == Fault(FaultKind.CANCEL_TOOL_CALL, Trigger.TOOL_CALL, seconds=0.5)
    assert scenario.faults == ((3, Fault(FaultKind.HANDSHAKE_REFUSE, status=429)),)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("bogus = 1", "bogus"),
        ("[[turn]]\nspoken = 0", "turn[0].spoken"),
        ("[[turn]]\ntext = 'a'\nextra = 1", "extra"),
        ("[[turn]]\ntext = 'a'\ncall = [{ args = {} }]", "turn[0].call[0]"),
        ("[[turn]]\ntext = 'a'\nreply = 3", "turn[0].reply"),
        ("[[turn]]\ntext = 'a'\naudio_s = -1", "turn[0].audio_s"),
        ("[[turn]]\ntext = 'a'\nfault = { kind = 'explode' }", "turn[0].fault"),
        ("[[fault]]\nkind = 'drop'", "fault[0].connection"),
        ("[[fault]]\nconnection = 1\nkind = 'drop'\nat = 'later'", "fault[0]"),
        ("[[fault]]\nconnection = 1\nkind = 'close'\ncode = 'x'", "code"),
        ("turn = 3", "'turn'"),
        ("not toml [", "line 1"),
    ],
)
def test_errors_name_the_file_and_key(text: str, names: str) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.parse(text, source="s.toml")
    assert str(info.value).startswith("s.toml") and names in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "none.toml")
