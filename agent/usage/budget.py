"""The daily budget: how much of the day's tokens or cost is used, what the agent gives up at
each share of it, and the config it then runs with.

Each step is a change of the config the agent runs with, applied the way a reload is (only the
parts whose sections changed are built again): ``camera_off`` turns the camera off,
``low_resolution`` asks the service for low media resolution (fewer tokens per frame),
``wake_word_only`` listens for the wake word before any audio leaves. At the whole budget the
agent is ``stopped``: it opens no conversation until the day changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from agent.config import AgentConfig, BudgetConfig, UsageConfig
from agent.config.model import BUDGET_STEPS, BudgetStep
from agent.usage.ledger import DayUsage

__all__ = ["BUDGET_STEPS", "BudgetLevel", "UsageReport", "budget_level", "degraded"]


@dataclass(frozen=True, slots=True)
class BudgetLevel:
    """Where the day stands: the share of the budget used (the larger of tokens and cost), the
    steps given up, and whether the agent is stopped for the day."""

    share: float = 0.0
    steps: tuple[BudgetStep, ...] = ()
    stopped: bool = False


def budget_level(budget: BudgetConfig, usage: UsageConfig, day: DayUsage) -> BudgetLevel:
    if not budget.enabled:
        return BudgetLevel()
    shares = []
    if budget.daily_tokens is not None:
        shares.append(day.total / budget.daily_tokens)
    if budget.daily_cost is not None:
        shares.append(day.cost(usage.price) / budget.daily_cost)
    share = max(shares)
    return BudgetLevel(share=share,
                       steps=tuple(step for step, at in budget.steps if share >= at),
                       stopped=share >= 1.0)


def degraded(config: AgentConfig, steps: tuple[BudgetStep, ...]) -> AgentConfig:
    """``config`` with ``steps`` given up."""
    if "camera_off" in steps and config.camera.enabled:
        config = dataclasses.replace(
            config, camera=dataclasses.replace(config.camera, enabled=False))
    if "low_resolution" in steps:
        config = dataclasses.replace(
            config, live=dataclasses.replace(config.live, media_resolution="low"))
    if "wake_word_only" in steps and config.listen.mode != "wake_word":
        config = dataclasses.replace(
            config, listen=dataclasses.replace(config.listen, mode="wake_word"))
    return config


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What metrics and ``edge-agent status`` show of the usage: today's, its cost, this
    process's tokens since it started, and the budget's level."""

    today: DayUsage
    cost: float
    currency: str
    since_start: dict[tuple[str, str], int]
    budget: BudgetLevel
