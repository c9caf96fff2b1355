"""Stage 4 — decide: the Bayes action of minimum expected cost per pixel.

With states s ∈ {stays forest, lost} and P(lost) = p, the expected cost of action a is
R(a) = C[a, 0]·(1 − p) + C[a, 1]·p and the decision is argmin_a R(a). The function takes a
probability array and a cost matrix and nothing else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from geo_risk.config import RunConfig
from geo_risk.export import DECISION_NODATA, write_cog
from geo_risk.paths import RunPaths
from geo_risk_errors import InputDataError
from tiles.atomic import atomic_files

log = logging.getLogger(__name__)

#: colours of actions 0, 1, 2… (grey: do nothing, amber: monitor/patrol, red: stronger action)
PALETTE = [(200, 200, 200, 255), (230, 85, 13, 255), (165, 15, 21, 255), (84, 39, 143, 255)]


@dataclass(frozen=True)
class DecideResult:
    decision: Path
    expected_cost: Path
    area_ha: dict[str, float]
    total_expected_cost: float


def expected_costs(prob: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """R[a, …] = C[a,0]·(1−p) + C[a,1]·p for every action a (float64)."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[1] != 2:
        raise InputDataError(f"decision.cost must be an (actions × 2) matrix, got shape {cost.shape}")
    p = np.asarray(prob, dtype=np.float64)
    return np.multiply.outer(cost[:, 0], 1 - p) + np.multiply.outer(cost[:, 1], p)


def decide(prob: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-expected-cost action (uint8, 255 where prob is NaN) and its expected cost (float32)."""
    risk = expected_costs(np.nan_to_num(prob, nan=0.0), cost)
    action = risk.argmin(axis=0).astype(np.uint8)
    best = risk.min(axis=0).astype(np.float32)
    missing = ~np.isfinite(prob)
    action[missing] = DECISION_NODATA
    best[missing] = np.nan
    return action, best


def two_action_threshold(cost: np.ndarray) -> float:
    """For two actions: act when p ≥ t = (C_FP − C_TN) / (C_FP − C_TN + C_FN − C_TP)."""
    (c_tn, c_fn), (c_fp, c_tp) = np.asarray(cost, dtype=np.float64)
    denom = (c_fp - c_tn) + (c_fn - c_tp)
    if denom == 0:
        raise InputDataError("decision.cost: both actions cost the same in every state; no threshold exists")
    return float((c_fp - c_tn) / denom)


def two_action_rule(cost, actions) -> str:
    """The two-action Bayes rule as a threshold on p = P(lost), e.g. "patrol where p > 0.1"."""
    (c_tn, c_fn), (c_fp, c_tp) = np.asarray(cost, dtype=np.float64)
    denom = (c_fp - c_tn) + (c_fn - c_tp)  # R(1) < R(0)  ⇔  p·denom > C_FP − C_TN; ties go to action 0
    if denom == 0:
        return f"{actions[0] if c_fp >= c_tn else actions[1]} everywhere (the costs do not depend on p)"
    return f"{actions[1]} where p {'>' if denom > 0 else '<'} {two_action_threshold(cost):.4g}"


def run_decide(cfg: RunConfig) -> DecideResult:
    """Read ``risk.tif``, write ``decision.tif`` (with a colour table) and ``expected_cost.tif``."""
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    if not paths.probability.is_file():
        raise InputDataError(f"{paths.probability} not found — run `geo-risk predict CONFIG` first")
    with rasterio.open(paths.probability) as src:
        prob, crs, transform = src.read(1), src.crs, src.transform
        pixel_ha = abs(transform.a * transform.e) / 10_000
    dc = cfg.decision
    action, cost = decide(prob, np.array(dc.cost))
    colormap = {i: PALETTE[i % len(PALETTE)] for i in range(len(dc.actions))}
    tags = {"actions": ",".join(dc.actions), "states": ",".join(dc.states), "cost_matrix": repr(dc.cost),
            "run": cfg.name}
    with atomic_files([paths.decision, paths.expected_cost]) as (tmp_decision, tmp_cost):  # both or neither
        write_cog(tmp_decision, action, crs, transform, nodata=DECISION_NODATA, colormap=colormap, tags=tags,
                  overview_resampling="nearest", atomic=False)
        write_cog(tmp_cost, cost, crs, transform, nodata=np.nan, tags=tags, overview_resampling="average",
                  atomic=False)
    if len(dc.actions) == 2:
        log.info("decide: %s", two_action_rule(dc.cost, dc.actions))
    area = {a: float((action == i).sum() * pixel_ha) for i, a in enumerate(dc.actions)}
    total = float(np.nansum(cost))
    log.info("decide: %s; total expected cost %.4g in %.1f s", ", ".join(f"{a} {v:,.0f} ha" for a, v in area.items()),
             total, time.perf_counter() - t0)
    return DecideResult(paths.decision, paths.expected_cost, area, total)
