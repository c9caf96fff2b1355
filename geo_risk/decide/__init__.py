"""Stage 4 — decide: the action of minimum expected cost per pixel, under budgets.

With states s ∈ {stays forest, lost} and P(lost) = p, the expected cost of action a is
R(a) = C[a, 0]·(1 − p) + C[a, 1]·p. Without budgets the decision is argmin_a R(a); with budgets
("at most B ha may receive action a") the pixels with the largest saving per unit of budget get
the action. The rules are pure functions of a probability array, cost arrays and budgets:

- :mod:`geo_risk.decide.rules` — the Bayes rule, its thresholds, dominated actions, checks;
- :mod:`geo_risk.decide.budgets` — :func:`solve` under budgets, shadow prices, the dual bound;
- :mod:`geo_risk.decide.costs` — costs per pixel from the matrix and layer multipliers;
- :mod:`geo_risk.decide.stage` — :func:`run_decide`, the stage (files in, files out).

docs/decisions.md has the maths and the demo's numbers.
"""

from geo_risk.decide.budgets import Budget, BudgetOutcome, Plan, solve
from geo_risk.decide.costs import multiplier, pixel_costs
from geo_risk.decide.errors import (BudgetError, CostMatrixError, DecisionInputError, DecisionLayerError,
                                    DecisionWarning)
from geo_risk.decide.rules import (NODATA, action_intervals, check_cost, check_probability, decide,
                                   dominated_actions, expected_costs, probability_from_density, rule_text,
                                   two_action_rule, two_action_threshold)
from geo_risk.export import write_cog  # the stage writes through this name (tests replace it)
from geo_risk.decide.stage import (PALETTE, SUMMARY_NAME, DecideResult, DecisionSummary,  # noqa: E402
                                   config_budgets, run_decide)

__all__ = [
    "NODATA", "PALETTE", "SUMMARY_NAME", "Budget", "BudgetError", "BudgetOutcome", "CostMatrixError", "DecideResult",
    "DecisionInputError", "DecisionLayerError", "DecisionSummary", "DecisionWarning", "Plan", "action_intervals",
    "check_cost", "check_probability", "config_budgets", "decide", "dominated_actions", "expected_costs",
    "multiplier", "pixel_costs", "probability_from_density", "rule_text", "run_decide", "solve", "two_action_rule",
    "two_action_threshold", "write_cog",
]
