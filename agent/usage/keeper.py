"""The usage of a running agent: the ledger kept in its file, the day's log line, and the
budget's level, followed as reports come in and as the days change."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from agent.config import AgentConfig
from agent.live.types import LiveUsageMetadata
from agent.usage.budget import BudgetLevel, UsageReport, budget_level
from agent.usage.ledger import DayUsage, UsageLedger, local_today

__all__ = ["SERVICE_USAGE_FILE", "UsageKeeper", "usage_file"]

log = structlog.get_logger(__name__)

SERVICE_USAGE_FILE = Path("/var/lib/edge-agent/usage.json")
"""The service's file (its unit's StateDirectory), for commands run beside it."""

LevelListener = Callable[[BudgetLevel, BudgetLevel], None]
"""Called with (old, new) when the budget's steps or its stop change."""


def usage_file(config: AgentConfig) -> Path | None:
    """Where the days' usage is kept: ``[usage] file``, else ``usage.json`` in systemd's
    StateDirectory; None (memory only) when neither is given."""
    if config.usage.file is not None:
        return config.usage.file
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / "usage.json" if state else None


class UsageKeeper:
    """Counts the service's usage reports into the day and follows the budget.

    ``today`` is the clock (a local date), so a test can run a day in seconds; ``on_level``
    hears each change of the budget's level.
    """

    def __init__(self, config: AgentConfig, *, on_level: LevelListener,
                 today: Callable[[], date] = local_today) -> None:
        self.config = config
        self.ledger = UsageLedger(usage_file(config), today=today)
        self.level = BudgetLevel()
        self.on_level = on_level

    def load(self) -> None:
        """Read the file and take the budget's level from what today used already."""
        self.ledger.load()
        self.level = self._level()
        if self.level.steps or self.level.stopped:
            log.warning("budget.level", share=round(self.level.share, 3),
                        steps=list(self.level.steps), stopped=self.level.stopped)

    def configure(self, config: AgentConfig) -> None:
        """A reloaded config: its file, prices and budget (the level follows at once)."""
        self.config = config
        path = usage_file(config)
        if path != self.ledger.path:
            self.ledger.path = path
            self.ledger.dirty = True  # the new file gets what was counted so far
        self.check()

    def record(self, usage: LiveUsageMetadata) -> None:
        self.ledger.record(usage)
        self.check()

    def check(self) -> None:
        old, new = self.level, self._level()
        self.level = new
        if new.steps != old.steps:
            log.warning("budget.step", share=round(new.share, 3), steps=list(new.steps),
                        given_back=[step for step in old.steps if step not in new.steps])
        if new.stopped != old.stopped:
            if new.stopped:
                log.warning("budget.stopped", share=round(new.share, 3),
                            reason="the day's budget is used up; conversations resume tomorrow")
            else:
                log.info("budget.resumed", share=round(new.share, 3))
        if new.steps != old.steps or new.stopped != old.stopped:
            self.on_level(old, new)

    def _level(self) -> BudgetLevel:
        return budget_level(self.config.budget, self.config.usage, self.ledger.current())

    async def run(self) -> None:
        """Every ``save_interval_s``: the day's log line when a day ended, the budget (a new
        day gives it back), the file (written in a thread)."""
        while True:
            await asyncio.sleep(self.config.usage.save_interval_s)
            try:
                await self._tick()
            except Exception:  # a bug here must not stop the counting for good
                log.exception("usage.tick_failed")

    async def _tick(self) -> None:
        finished = self.ledger.roll()
        if finished is not None:
            log.info("usage.day", **self.day_fields(finished))
        self.check()
        text = self.ledger.snapshot()
        if text is not None:
            await asyncio.to_thread(self.ledger.write, text)

    def save(self) -> None:
        self.ledger.save()

    def day_fields(self, day: DayUsage) -> dict[str, Any]:
        usage = self.config.usage
        return {"day": day.day.isoformat(), "tokens": day.total, "reports": day.reports,
                "by_modality": {f"{d}.{m}": n for (d, m), n in sorted(day.tokens.items())},
                "cost": round(day.cost(usage.price), 6), "currency": usage.currency}

    def report(self) -> UsageReport:
        today = self.ledger.current()
        usage = self.config.usage
        return UsageReport(today=today, cost=today.cost(usage.price), currency=usage.currency,
                           since_start=dict(self.ledger.since_start), budget=self.level)
