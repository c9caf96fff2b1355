"""The Bayes rule without budgets: pure functions of a probability array and cost arrays.

States s ∈ {0 stays forest, 1 lost}, P(lost) = p. A cost array is ``C[a, s]`` (shape
``(actions, 2)``, the same at every pixel) or ``C[a, s, …]`` (shape ``(actions, 2, *p.shape)``,
one matrix per pixel). The expected cost of action a is ``R(a) = C[a,0]·(1 − p) + C[a,1]·p``
and the rule is ``argmin_a R(a)``, ties going to the first action. See docs/decisions.md.
"""

from __future__ import annotations

import numpy as np

from geo_risk.decide.errors import CostMatrixError, DecisionInputError

#: the decision raster's value where there is no probability (outside forest)
NODATA = 255


def check_probability(prob, name: str = "probability") -> np.ndarray:
    """``prob`` as float64; NaN marks pixels without a value, anything else must lie in [0, 1]."""
    try:
        p = np.asarray(prob, dtype=np.float64)
    except (TypeError, ValueError):
        raise DecisionInputError(f"{name} must be an array of numbers in [0, 1] (NaN where there is no value)") \
            from None
    finite = np.isfinite(p)
    bad = ~finite & ~np.isnan(p)
    if bad.any():
        raise DecisionInputError(f"{name} holds {int(bad.sum())} infinite value(s): a probability is in [0, 1] "
                                 "— mark pixels without a value with NaN")
    out = finite & ((p < 0) | (p > 1))
    if out.any():
        raise DecisionInputError(f"{name} holds {int(out.sum())} value(s) outside [0, 1] (e.g. {p[out][0]:.4g}) "
                                 "— give calibrated probabilities (risk.tif), not logits or scores")
    return p


def check_cost(cost, shape: tuple[int, ...] | None = None, name: str = "decision.cost") -> np.ndarray:
    """``cost`` as a float64 ``(actions, 2)`` or ``(actions, 2, *shape)`` array of finite numbers ≥ 0.

    Raises :class:`CostMatrixError` naming ``name`` (the config key or layer the costs came from)
    and the fix.
    """
    try:
        c = np.asarray(cost, dtype=np.float64)
    except (TypeError, ValueError):
        raise CostMatrixError(f"{name} must hold numbers: an (actions × 2) matrix, one row per action and one "
                              "column per state (stays_forest, lost), e.g. [[0, 100], [10, 10]]") from None
    if c.ndim < 2 or c.shape[0] < 1 or c.shape[1] != 2 or (c.ndim > 2 and shape is not None
                                                            and c.shape[2:] != tuple(shape)):
        want = "" if shape is None or c.ndim == 2 else f" (per pixel: actions × 2 × {tuple(shape)})"
        raise CostMatrixError(f"{name} must be an (actions × 2) matrix{want}, one row per action and one column "
                              f"per state (stays_forest, lost); got shape {c.shape}")
    if c.ndim == 2:
        bad = ~np.isfinite(c)
        if bad.any():
            a, s = np.argwhere(bad)[0]
            raise CostMatrixError(f"{name}[{a}][{s}] is {c[a, s]}: every cost must be a finite number ≥ 0 "
                                  "(cost units, e.g. 10)")
        if (c < 0).any():
            a, s = np.argwhere(c < 0)[0]
            raise CostMatrixError(f"{name}[{a}][{s}] is {c[a, s]:g}: costs must be ≥ 0 — express a benefit as a "
                                  "higher cost of the other actions")
        return c
    bad = ~np.isfinite(c)
    if bad.any():
        raise CostMatrixError(f"{name}: {int(bad.any(axis=(0, 1)).sum())} pixel(s) have a NaN or infinite cost — "
                              "check the layers that scale the costs (decision.damage_scale, "
                              "decision.action_cost_scale) for nodata on forest")
    neg = (c < 0).any(axis=(0, 1))
    if neg.any():
        raise CostMatrixError(f"{name}: {int(neg.sum())} pixel(s) have a negative cost — a layer scaling the "
                              "costs is negative there, or an action's cost when the forest is lost is lower than "
                              "when it stays (C[a][lost] < C[a][stays_forest]) and its damage scale is large")
    return c


def expected_costs(prob: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """R[a, …] = C[a,0]·(1−p) + C[a,1]·p for every action a (float64, shape ``(actions, *p.shape)``)."""
    p = np.asarray(prob, dtype=np.float64)
    c = check_cost(cost, p.shape)
    if c.ndim == 2:
        return np.multiply.outer(c[:, 0], 1 - p) + np.multiply.outer(c[:, 1], p)
    return c[:, 0] * (1 - p) + c[:, 1] * p


def decide(prob: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-expected-cost action (uint8, 255 where prob is NaN) and its expected cost (float32)."""
    p = check_probability(prob)
    risk = expected_costs(np.nan_to_num(p, nan=0.0), cost)
    action = risk.argmin(axis=0).astype(np.uint8)
    best = risk.min(axis=0).astype(np.float32)
    missing = np.isnan(p)
    action[missing] = NODATA
    best[missing] = np.nan
    return action, best


def two_action_threshold(cost: np.ndarray) -> float:
    """For two actions: act when p ≥ t = (C_FP − C_TN) / (C_FP − C_TN + C_FN − C_TP)."""
    (c_tn, c_fn), (c_fp, c_tp) = check_cost(cost)
    denom = (c_fp - c_tn) + (c_fn - c_tp)
    if denom == 0:
        raise CostMatrixError("decision.cost: both actions cost the same in every state; no threshold exists")
    return float((c_fp - c_tn) / denom)


def two_action_rule(cost, actions) -> str:
    """The two-action Bayes rule as a threshold on p = P(lost), e.g. "patrol where p > 0.1"."""
    (c_tn, c_fn), (c_fp, c_tp) = check_cost(cost)
    denom = (c_fp - c_tn) + (c_fn - c_tp)  # R(1) < R(0)  ⇔  p·denom > C_FP − C_TN; ties go to action 0
    if denom == 0:
        return f"{actions[0] if c_fp >= c_tn else actions[1]} everywhere (the costs do not depend on p)"
    return f"{actions[1]} where p {'>' if denom > 0 else '<'} {two_action_threshold(cost):.4g}"


def action_intervals(cost: np.ndarray) -> list[tuple[int, float, float]]:
    """The Bayes rule of one cost matrix as intervals of p: ``[(action, p_from, p_to), …]`` over [0, 1].

    Expected costs are lines in p, so each action is chosen on one interval (or none); ties go to
    the first action, as in :func:`decide`.
    """
    c = check_cost(cost)
    icpt, slope = c[:, 0], c[:, 1] - c[:, 0]
    cuts = {0.0, 1.0}
    for a in range(len(c)):
        for b in range(a + 1, len(c)):
            if slope[a] != slope[b]:
                x = (icpt[b] - icpt[a]) / (slope[a] - slope[b])
                if 0 < x < 1:
                    cuts.add(float(x))
    edges = sorted(cuts)
    out: list[tuple[int, float, float]] = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        a = int(np.argmin(icpt + slope * (lo + hi) / 2))
        if out and out[-1][0] == a:
            out[-1] = (a, out[-1][1], hi)
        else:
            out.append((a, lo, hi))
    return out


def rule_text(cost: np.ndarray, actions) -> str:
    """The Bayes rule of one cost matrix in words, e.g. "none p < 0.048, monitor 0.048–0.14, patrol p > 0.14"."""
    parts = []
    for a, lo, hi in action_intervals(cost):
        if lo == 0 and hi == 1:
            parts.append(f"{actions[a]} everywhere")
        elif lo == 0:
            parts.append(f"{actions[a]} where p < {hi:.3g}")
        elif hi == 1:
            parts.append(f"{actions[a]} where p > {lo:.3g}")
        else:
            parts.append(f"{actions[a]} where {lo:.3g} < p < {hi:.3g}")
    return ", ".join(parts)


def dominated_actions(cost: np.ndarray) -> list[int]:
    """Actions that are never the strict minimum of expected cost, for any p ∈ [0, 1] at any pixel.

    For action a and each other action b, R(a) < R(b) holds on an open half-line of p; a is
    chosen somewhere iff the intersection of those half-lines meets [0, 1] at some pixel.
    """
    c = check_cost(cost)
    icpt, slope = c[:, 0], c[:, 1] - c[:, 0]  # (A,) or (A, …)
    out = []
    for a in range(len(c)):
        lo = np.full(icpt.shape[1:], -np.inf)
        hi = np.full(icpt.shape[1:], np.inf)
        never = np.zeros(icpt.shape[1:], dtype=bool)
        for b in range(len(c)):
            if b == a:
                continue
            alpha, beta = icpt[a] - icpt[b], slope[a] - slope[b]  # R(a) − R(b) = alpha + beta·p < 0
            with np.errstate(divide="ignore", invalid="ignore"):
                root = np.where(beta != 0, -alpha / np.where(beta != 0, beta, 1), 0.0)
            hi = np.where(beta > 0, np.minimum(hi, root), hi)
            lo = np.where(beta < 0, np.maximum(lo, root), lo)
            never |= (beta == 0) & (alpha >= 0)
        somewhere = ~never & (lo < hi) & (lo < 1) & (hi > 0)
        if not np.any(somewhere):
            out.append(a)
    return out


def probability_from_density(density_ha_per_pixel_yr: np.ndarray, pixel_area_ha: float, years: float) -> np.ndarray:
    """A VT0007 allocation (``geo_risk.evaluate.vt0007.allocate(...).density_ha_per_pixel_yr``) as the
    probability that a pixel is lost over ``years``: p = density · years / pixel area (NaN stays NaN).

    VT0007's quantity adjustment caps the density at ``pixel_area_ha / years``, so p ≤ 1; the
    decision rules then apply to the allocated map as to ``risk.tif``.
    """
    if not (pixel_area_ha > 0 and years > 0):
        raise DecisionInputError(f"pixel_area_ha ({pixel_area_ha}) and years ({years}) must be > 0")
    d = np.asarray(density_ha_per_pixel_yr, dtype=np.float64)
    if (d[np.isfinite(d)] < 0).any():
        raise DecisionInputError("a VT0007 density is ≥ 0 ha/pixel/yr; this one has negative values")
    return np.clip(d * years / pixel_area_ha, 0.0, 1.0)
