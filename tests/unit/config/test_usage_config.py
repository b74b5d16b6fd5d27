"""[usage] and [budget]: prices per million tokens, the file, shares of a daily budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from agent.config.model import AgentConfig

LIVE = '[live]\nbackend = "emulator"\n'


def config(text: str) -> AgentConfig:
    return parse_config(LIVE + text, base_dir=Path("/etc/edge-agent"))


def test_off_and_in_the_state_directory_unless_set() -> None:
    got = config("")
    assert got.usage.file is None and got.usage.prices == ()
    assert not got.budget.enabled


def test_prices_fall_back_to_the_text_price_of_their_direction() -> None:
    usage = config('[usage]\nfile = "u.json"\ncurrency = "EUR"\n'
                   "[usage.prices]\ninput_text = 0.5\ninput_audio = 3\noutput_text = 2\n").usage
    assert usage.file == Path("/etc/edge-agent/u.json")
    assert usage.currency == "EUR"
    assert usage.price("input", "AUDIO") == 3.0
    assert usage.price("input", "VIDEO") == 0.5
    assert usage.price("output", "AUDIO") == 2.0
    assert usage.price("output", "OTHER") == 2.0


def test_budget_steps_are_ordered_by_their_share() -> None:
    budget = config("[usage.prices]\ninput_text = 1\n[budget]\ndaily_tokens = 1000\n"
                    "daily_cost = 2.5\n[budget.steps]\nwake_word_only = 0.9\ncamera_off = 0.5\n"
                    "low_resolution = 0.7\n").budget
    assert budget.enabled and budget.daily_tokens == 1000 and budget.daily_cost == 2.5
    assert budget.steps == (("camera_off", 0.5), ("low_resolution", 0.7),
                            ("wake_word_only", 0.9))


@pytest.mark.parametrize(("written", "key", "fragment"), [
    ("[usage.prices]\ninput_audio = -1", "usage.prices.input_audio", "between 0"),
    ("[usage.prices]\ninput_smell = 1", "usage.prices.input_smell", "unknown key"),
    ('[usage]\ncurrency = "US DOLLARS"', "usage.currency", "currency code"),
    ("[usage]\nsave_interval_s = 0", "usage.save_interval_s", "between 1 and 3600"),
    ("[budget]\ndaily_tokens = 0", "budget.daily_tokens", "between 1"),
    ("[budget]\ndaily_cost = 1", "budget.daily_cost", "needs prices"),
    ("[budget]\ndaily_tokens = 10\n[budget.steps]\ncamera_off = 1.5",
     "budget.steps.camera_off", "greater than 0 and at most 1"),
    ("[budget]\ndaily_tokens = 10\n[budget.steps]\nmute = 0.5", "budget.steps.mute",
     "unknown key"),
    ("[budget.steps]\ncamera_off = 0.5", "budget.steps", "set daily_tokens or daily_cost"),
])
def test_bad_settings(written: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(written + "\n")
    [problem] = info.value.problems
    assert problem.key == key
    assert fragment in problem.message
