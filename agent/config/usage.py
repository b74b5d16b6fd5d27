"""The parsers of [usage] (where token use is kept, what it costs) and [budget] (how much a
day may use, and what the agent gives up on the way)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from agent.config.model import (
    BUDGET_STEPS,
    PRICE_KEYS,
    BudgetConfig,
    BudgetStep,
    UsageConfig,
)
from agent.config.reader import Table
from agent.config.sections import config_path

__all__ = ["read_budget", "read_usage"]

MAX_PRICE = 1_000_000.0  # per million tokens: beyond it, a typo
MAX_DAILY_TOKENS = 10**12


def read_usage(s: Table, base_dir: Path) -> UsageConfig:
    d = UsageConfig()
    written = s.text("file", None)
    file = None if written is None else config_path(s, "file", base_dir, written)
    currency = s.text("currency", d.currency)
    if not (1 <= len(currency) <= 8 and currency.isalpha()):
        s.invalid("currency", "must be a currency code of letters, like \"USD\"", currency)
        currency = d.currency
    prices: list[tuple[str, float]] = []
    table = s.section("prices")
    for key in PRICE_KEYS:
        price = table.number(key, None, 0.0, MAX_PRICE)
        if price is not None:
            prices.append((key, price))
    table.finish()
    config = UsageConfig(file=file, currency=currency, prices=tuple(prices),
                         save_interval_s=s.number("save_interval_s", d.save_interval_s,
                                                  1.0, 3600.0))
    s.finish()
    return config


def read_budget(s: Table, usage: UsageConfig) -> BudgetConfig:
    daily_tokens = s.integer("daily_tokens", None, 1, MAX_DAILY_TOKENS)
    daily_cost = s.number("daily_cost", None, 0.0, MAX_PRICE, lo_open=True)
    if daily_cost is not None and not usage.prices:
        s.problem("daily_cost", "needs prices: set [usage.prices] (per million tokens), or "
                                "budget in daily_tokens instead")
    steps: list[tuple[BudgetStep, float]] = []
    table = s.section("steps")
    for step in BUDGET_STEPS:
        share = table.number(step, None, 0.0, 1.0, lo_open=True)
        if share is not None:
            steps.append((cast(BudgetStep, step), share))
    table.finish()
    if steps and daily_tokens is None and daily_cost is None:
        s.problem("steps", "are shares of a budget: set daily_tokens or daily_cost")
    config = BudgetConfig(daily_tokens=daily_tokens, daily_cost=daily_cost,
                          steps=tuple(sorted(steps, key=lambda step: step[1])))
    s.finish()
    return config
