"""Decision value: what the decision map costs, expected and realised, against simpler rules.

For actions ``a_i`` over the population and the config's cost matrix ``C[a, s]`` (s = 0 stays
forest, 1 lost):

* expected cost = Σ_i C[a_i, 0]·(1 − p_i) + C[a_i, 1]·p_i under the map's probabilities p;
* realised cost = Σ_i C[a_i, y_i] under the observed loss y.

The decide stage's plan minimises the first (within its budgets); the second is what the map would
have cost had it been followed over the forecast period. The rules compared are built by
:func:`run_decision_value` for the evaluate stage: the plan of ``decision.tif``, the same planner
(:func:`geo_risk.decide.solve`, same budgets) on other probability maps, the 0.5 threshold and
the constant plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from geo_risk.artifacts import DecisionRule, DecisionValue
from geo_risk_errors import InputDataError

if TYPE_CHECKING:
    from geo_risk.config import RunConfig

DECISION = "decision map (decision.tif)"
THRESHOLD = "0.5 threshold on the map"


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
    """argmin_a C[a,0]·(1 − p) + C[a,1]·p per pixel, without budgets; ties go to the first action."""
    cost = np.asarray(cost, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    return (np.multiply.outer(cost[:, 0], 1 - p) + np.multiply.outer(cost[:, 1], p)).argmin(axis=0).astype(np.int64)


def threshold_actions(prob: np.ndarray, n_actions: int) -> np.ndarray:
    """The rule that ignores costs: the strongest (last) action where p ≥ 0.5, the first elsewhere."""
    return np.where(np.asarray(prob) >= 0.5, n_actions - 1, 0).astype(np.int64)


def constant_rules(actions: list[str], n: int) -> dict[str, np.ndarray]:
    """One plan per action given to every pixel: "flag nothing" (first) … "flag everything" (last)."""
    out = {}
    for i, a in enumerate(actions):
        label = "flag nothing" if i == 0 else "flag everything" if i == len(actions) - 1 else "every pixel"
        out[f"{label} ({a} everywhere)"] = np.full(n, i, dtype=np.int64)
    return out


def decision_value(rules: dict[str, np.ndarray], prob_map: np.ndarray, lost: np.ndarray, cost, actions: list[str],
                   pixel_area_ha: float, within_budgets: dict[str, bool | None] | None = None,
                   target_ratio: float = 0.7, note: str = "") -> DecisionValue:
    """Cost every plan of ``rules`` (name → actions over the population) under the map and the outcome.

    The ratio column and the target compare each plan's realised cost with :data:`THRESHOLD`'s,
    when ``rules`` holds it; the target is met when :data:`DECISION`'s ratio is ≤ ``target_ratio``.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[1] != 2 or len(cost) != len(actions):
        raise InputDataError(f"decision.cost must be an ({len(actions)} actions × 2 states) matrix, got {cost.shape}")
    within_budgets = within_budgets or {}
    table = {name: (float((a > 0).sum() * pixel_area_ha), *costs(a, prob_map, lost, cost)) for name, a in rules.items()}
    ref = table[THRESHOLD][2] if THRESHOLD in table else None
    out = [DecisionRule(name=name, flagged_ha=f, expected_cost=e, realised_cost=r,
                        realised_vs_threshold=(r / ref if ref else None), within_budgets=within_budgets.get(name))
           for name, (f, e, r) in table.items()]
    met = None if not ref or DECISION not in table else bool(table[DECISION][2] <= target_ratio * ref)
    return DecisionValue(actions=list(actions), cost=cost.tolist(), rules=out, target_ratio=target_ratio,
                         target_met=met, note=note)


def run_decision_value(cfg: RunConfig, decision: np.ndarray, p_map: np.ndarray, lost: np.ndarray,
                    others: dict[str, np.ndarray | None], pixel_ha: float):
    """The evaluate stage's decision-value table: the decision map against the 0.5 threshold, the constant
    plans and the decide stage's planner (``cfg.decision``'s cost matrix and budgets) on other maps;
    ``others[name]`` None = the map without budgets."""
    import warnings

    from geo_risk.decide import Budget, DecisionWarning, solve

    dc = cfg.decision
    cost = np.asarray(dc.cost, dtype=np.float64)
    budgets = [Budget(dc.actions.index(b.action), b.max_ha, pixel_ha, "ha") if b.max_ha is not None
               else Budget(dc.actions.index(b.action), b.max_cost, cost[dc.actions.index(b.action), 0], "cost units")
               for b in dc.budgets]
    rules = {DECISION: decision, THRESHOLD: threshold_actions(p_map, len(dc.actions))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        for name, p in others.items():
            if p is None:
                rules[f"Bayes rule on {name}"] = bayes_actions(p_map, cost)
            else:
                how = "the same budgets" if budgets else "the same rule"
                rules[f"decide's planner ({how}) on {name}"] = solve(p, cost, budgets).actions.astype(np.int64)
    rules.update(constant_rules(dc.actions, len(p_map)))

    def keeps(a: np.ndarray) -> bool | None:
        if not budgets:
            return None
        used = [(a == b.action).sum() * b.weight if np.isscalar(b.weight) else float(np.sum(cost[b.action, 0] * (a == b.action)))
                for b in budgets]
        return all(u <= b.limit * (1 + 1e-9) + 1e-9 for u, b in zip(used, budgets))

    scaled = not (dc.damage_scale.is_identity and dc.action_cost_scale.is_identity)
    note = ("decision.damage_scale / action_cost_scale scale the costs per pixel in the decide stage; this table "
            "costs every plan with the config's matrix alone" if scaled else "")
    if dc.uncertainty_k > 0:
        note += (" " if note else "") + (f"decision.tif chose actions on p + {dc.uncertainty_k:g}·σ; the table costs "
                                         "them under p")
    return decision_value(rules, p_map, lost, cost, dc.actions, pixel_ha,
                             {name: keeps(a) for name, a in rules.items()}, note=note)
