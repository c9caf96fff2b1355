"""What limits the decision value on a run: the realised cost of the Bayes plan against the 0.5-threshold
rule's, under variants of the probabilities, the cost matrix and the budgets (docs/evaluation.md, "Decision
value").

Reads an evaluated run folder (risk.tif, decision.tif, the layer stack; nothing is retrained) and prints one
table. Variants:

* the plan of decision.tif and the same planner without budgets;
* **quantity adjustment** (no peeking): the map's logits shifted by one constant so that the expected loss
  Σ p equals a quantity known before the forecast period — the calibration period's observed annual
  loss, carried over to the forecast period's forest and length (VT0007's "historical" rate), or a
  figure in ha/yr (``--expected-ha-per-yr``, as ``evaluate.expected_ha_per_yr``);
* the issue's original two-action matrix (patrol 10, missed loss 100: ``[[0, 100], [10, 10]]``);
* **bounds, which look at the outcome** (never a remedy): the best constant logit shift in hindsight,
  the shift that matches the observed forecast quantity, and the oracle p = observed loss.

Usage::

    OMP_NUM_THREADS=1 python scripts/decision_value.py --run /work/exp/final
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit

from geo_risk.config import load_config
from geo_risk.decide import Budget, DecisionWarning, solve
from geo_risk.evaluate import value as dv
from geo_risk.evaluate.inputs import load_inputs

EPS = 1e-7


def shift_to_total(p: np.ndarray, total: float) -> tuple[np.ndarray, float]:
    """p with its logits shifted by the constant δ that makes Σ p = ``total``; (p', δ)."""
    z = logit(np.clip(p, EPS, 1 - EPS))
    f = lambda d: expit(z + d).sum() - total  # noqa: E731 (strictly increasing in d)
    d = brentq(f, -20, 20, xtol=1e-10)
    return expit(z + d), d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="an evaluated run folder (its config.yaml is read)")
    ap.add_argument("--expected-ha-per-yr", type=float, default=None,
                    help="a quantity to adjust to, ha/yr (default: the calibration period's observed rate)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = ap.parse_args()
    cfg = load_config(args.run / "config.yaml", {"output_dir": str(args.run)})
    x = load_inputs(cfg)
    pop = x.cnf.forest
    has = np.isfinite(x.risk) & pop
    p = np.where(has, x.risk, 0.0)[pop]
    y = x.cnf.loss[pop].astype(np.int64)
    action_map = np.where(x.decision == 255, 0, x.decision).astype(np.int64)[pop]
    ha = x.pixel_area_ha
    dc = cfg.decision
    cost3 = np.asarray(dc.cost, dtype=np.float64)
    budgets3 = [Budget(dc.actions.index(b.action), b.max_ha, ha, "ha") for b in dc.budgets if b.max_ha is not None]
    cost2 = np.array([[0.0, 100.0], [10.0, 10.0]])

    # the quantities: historical (calibration period's observed annual rate on the forecast forest), observed
    cal = x.cal
    hist_rate_yr = 1 - (1 - cal.loss.sum() / cal.forest.sum()) ** (1 / cal.years)  # per pixel per year
    hist_total = pop.sum() * (1 - (1 - hist_rate_yr) ** x.cnf.years)
    if args.expected_ha_per_yr is not None:
        hist_total = args.expected_ha_per_yr * x.cnf.years / ha
    obs_total = float(y.sum())
    p_hist, d_hist = shift_to_total(p, hist_total)
    p_obs, d_obs = shift_to_total(p, obs_total)
    print(f"population {p.size:,} forest px; observed loss {obs_total:,.0f} px (rate {y.mean():.4f}); "
          f"map Σp {p.sum():,.0f} (mean {p.mean():.4f}); historical quantity {hist_total:,.0f} px "
          f"(rate {hist_total / p.size:.4f}, calibration period {cal.name}: {int(cal.loss.sum()):,} of "
          f"{int(cal.forest.sum()):,} px); shift to it δ = {d_hist:+.3f}, to the observed δ = {d_obs:+.3f}")

    def realised(a, cost):
        return float(cost[a, y].sum())

    rows = []

    def add(matrix, name, a, cost, ref, note=""):
        r = realised(a, cost)
        rows.append({"matrix": matrix, "variant": name, "flagged_ha": float((a > 0).sum() * ha),
                     "realised_cost": r, "ratio": r / ref, "note": note})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        for matrix, cost, budgets in (("3 actions + budgets (demo)", cost3, budgets3),
                                      ("3 actions, no budgets", cost3, []),
                                      ("2 actions [[0,100],[10,10]] (issue 10's)", cost2, []),
                                      ("2 actions + patrol budget 2,000 ha", cost2,
                                       [Budget(1, 2000.0, ha, "ha")])):
            ref = realised(dv.threshold_actions(p, len(cost)), cost)
            plan = lambda q: solve(q, cost, budgets).actions.astype(np.int64)  # noqa: E731
            rows.append({"matrix": matrix, "variant": "0.5 threshold on the map (reference)",
                         "flagged_ha": float((p >= 0.5).sum() * ha), "realised_cost": ref, "ratio": 1.0, "note": ""})
            if matrix.startswith("3 actions + budgets"):
                add(matrix, "decision.tif", action_map, cost, ref)
            add(matrix, "Bayes plan on the map", plan(p), cost, ref)
            add(matrix, f"Bayes plan, quantity-adjusted to the historical rate (δ {d_hist:+.2f})", plan(p_hist), cost,
                ref, "no peeking")
            add(matrix, f"bound: adjusted to the observed quantity (δ {d_obs:+.2f})", plan(p_obs), cost, ref, "peeks")
            # the best constant shift in hindsight (a grid of δ)
            sweep = [(realised(plan(expit(logit(np.clip(p, EPS, 1 - EPS)) + d)), cost), d)
                     for d in np.arange(-1.5, 1.51, 0.25)]
            print(f"{matrix}: ratio by constant logit shift δ: "
                  + ", ".join(f"{d:+.2f} → {r / ref:.3f}" for r, d in sweep))
            best = min(sweep, key=lambda t: t[0])
            rows.append({"matrix": matrix, "variant": f"bound: best constant shift in hindsight (δ {best[1]:+.2f})",
                         "flagged_ha": float("nan"), "realised_cost": best[0], "ratio": best[0] / ref, "note": "peeks"})
            add(matrix, "bound: oracle p = observed loss", plan(y.astype(np.float64)), cost, ref, "peeks")
            add(matrix, "flag nothing", np.zeros(p.size, dtype=np.int64), cost, ref)
    w = max(len(r["variant"]) for r in rows)
    last = None
    for r in rows:
        if r["matrix"] != last:
            print(f"\n{r['matrix']}")
            last = r["matrix"]
        print(f"  {r['variant']:<{w}}  flagged {r['flagged_ha']:>9,.0f} ha  realised {r['realised_cost']:>12,.0f}  "
              f"ratio {r['ratio']:.3f}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
