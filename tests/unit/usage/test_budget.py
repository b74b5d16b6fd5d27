"""The budget's level from a day's tokens and cost, and the config each step leaves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from agent.config import AgentConfig, parse_config
from agent.usage import DayUsage, budget_level, degraded


def config(budget: str) -> AgentConfig:
    return parse_config('[live]\nbackend = "emulator"\n[usage.prices]\ninput_audio = 3.0\n'
                        "output_audio = 12.0\n" + budget, base_dir=Path("."))


def day(input_audio: int, output_audio: int = 0) -> DayUsage:
    usage = DayUsage(date(2026, 12, 6))
    usage.add({("input", "AUDIO"): input_audio, ("output", "AUDIO"): output_audio})
    return usage


def test_no_budget_no_level() -> None:
    settings = config("")
    level = budget_level(settings.budget, settings.usage, day(10**9))
    assert level.share == 0.0 and level.steps == () and not level.stopped


def test_the_larger_share_of_tokens_and_cost_counts() -> None:
    settings = config("[budget]\ndaily_tokens = 1000000\ndaily_cost = 6.0\n"
                      "[budget.steps]\ncamera_off = 0.25\nwake_word_only = 0.75\n")
    # 100k tokens are 10 % of the tokens but cost 0.3 + 0.6 = 0.9 of 6.0: 15 %.
    assert budget_level(settings.budget, settings.usage, day(100_000, 50_000)).share == (
        0.9 / 6.0)
    level = budget_level(settings.budget, settings.usage, day(1_000_000, 250_000))  # 6.0
    assert level.steps == ("camera_off", "wake_word_only") and level.stopped
    level = budget_level(settings.budget, settings.usage, day(300_000))  # 30 % of the tokens
    assert level.steps == ("camera_off",) and not level.stopped


def test_each_step_changes_its_own_section_only() -> None:
    settings = config("")
    assert degraded(settings, ()) == settings
    gone = degraded(settings, ("camera_off", "low_resolution", "wake_word_only"))
    assert not gone.camera.enabled
    assert gone.live.media_resolution == "low"
    assert gone.listen.mode == "wake_word"
    assert gone.audio == settings.audio and gone.gpio == settings.gpio
