"""Decision value: what the decision map costs, expected and realised, against simpler rules.

For actions ``a_i`` over the population and the config's cost matrix ``C[a, s]`` (s = 0 stays
forest, 1 lost):

* expected cost = Σ_i C[a_i, 0]·(1 − p_i) + C[a_i, 1]·p_i under the map's probabilities p;
* realised cost = Σ_i C[a_i, y_i] under the observed loss y.

The Bayes rule minimises the first by construction; the second is what the map would have cost
had it been followed over the forecast period.
"""

from __future__ import annotations

import numpy as np

from geo_risk.artifacts import DecisionRule, DecisionValue
from geo_risk_errors import InputDataError

THRESHOLD_RULE = "0.5 threshold on the map"
BAYES_RULE = "Bayes rule on the map (decision.tif)"


def costs(actions: np.ndarray, prob: np.ndarray, lost: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """(expected, realised) total cost of ``actions`` (flat ints) under ``prob`` and the observed ``lost``."""
    cost = np.asarray(cost, dtype=np.float64)
    a = np.asarray(actions, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= len(cost)):
        raise InputDataError(f"actions must be in 0 … {len(cost) - 1} (one row of decision.cost each)")
    p = np.asarray(prob, dtype=np.float64)
    expected = float((cost[a, 0] * (1 - p) + cost[a, 1] * p).sum())
    realised = float(cost[a, np.asarray(lost, dtype=np.int64)].sum())
    return expected, realised


def bayes_actions(prob: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """argmin_a C[a,0]·(1 − p) + C[a,1]·p per pixel — the decide stage's rule; ties go to the first action."""
    cost = np.asarray(cost, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    return (np.multiply.outer(cost[:, 0], 1 - p) + np.multiply.outer(cost[:, 1], p)).argmin(axis=0).astype(np.int64)


def decision_value(decision: np.ndarray, prob_map: np.ndarray, lost: np.ndarray, cost, actions: list[str],
                   pixel_area_ha: float, others: dict[str, np.ndarray], target_ratio: float = 0.7) -> DecisionValue:
    """Cost the decision map and the comparison rules over the population (flat arrays).

    ``decision``: the actions of decision.tif; ``prob_map``: risk.tif; ``others``: name → a
    probability map to which the same Bayes rule is applied (the uncalibrated model, baselines).
    With two actions the rules also include the 0.5 threshold on the map; every config gets one
    constant rule per action ("flag nothing" = every pixel the first action, "flag everything" =
    every pixel the last).
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[1] != 2 or len(cost) != len(actions):
        raise InputDataError(f"decision.cost must be an ({len(actions)} actions × 2 states) matrix, got {cost.shape}")
    n = len(np.asarray(decision))
    rules: dict[str, np.ndarray] = {BAYES_RULE: np.asarray(decision, dtype=np.int64)}
    if len(actions) == 2:
        rules[THRESHOLD_RULE] = (np.asarray(prob_map) >= 0.5).astype(np.int64)
    for name, p in others.items():
        rules[f"Bayes rule on {name}"] = bayes_actions(p, cost)
    for i, a in enumerate(actions):
        label = ("flag nothing" if i == 0 else "flag everything" if i == len(actions) - 1 else "every pixel")
        rules[f"{label} ({a} everywhere)"] = np.full(n, i, dtype=np.int64)
    table = {name: (float((a > 0).sum() * pixel_area_ha), *costs(a, prob_map, lost, cost)) for name, a in rules.items()}
    ref = table.get(THRESHOLD_RULE, (None, None, None))[2]
    out = [DecisionRule(name=name, flagged_ha=f, expected_cost=e, realised_cost=r,
                        realised_vs_threshold=(r / ref if ref else None)) for name, (f, e, r) in table.items()]
    met = None if not ref else bool(table[BAYES_RULE][2] <= target_ratio * ref)
    return DecisionValue(actions=list(actions), cost=cost.tolist(), rules=out, target_ratio=target_ratio,
                         target_met=met)
