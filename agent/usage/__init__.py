"""What the agent uses of the service: tokens per day and modality, kept across restarts
(`ledger`), their cost, and the daily budget that makes the agent give up media and, at its
end, conversations until the next day (`budget`)."""

from agent.usage.budget import BUDGET_STEPS, BudgetLevel, UsageReport, budget_level, degraded
from agent.usage.keeper import UsageKeeper, usage_file
from agent.usage.ledger import MODALITIES, DayUsage, UsageLedger, tokens_of

__all__ = ["BUDGET_STEPS", "MODALITIES", "BudgetLevel", "DayUsage", "UsageKeeper", "UsageLedger",
           "UsageReport", "budget_level", "degraded", "tokens_of", "usage_file"]
