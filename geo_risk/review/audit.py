"""What the review map says about each zone, and the observed loss it draws.

The zone audit comes from ``metrics.json`` (evaluate's per-zone audit: intervals from its spatial
block bootstrap) when that file has one; otherwise it is computed here from the layer stack,
``zone_risk.csv`` and ``decision.tif`` with the same definitions, without intervals: per zone,
over its forest pixels at the start of the period — forest area, observed loss rate, mean risk of
the model (before the zone-fairness projection) and of the map, area flagged for an action.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from geo_risk.artifacts import read_zone_table
from geo_risk.review.rasters import GridArray
from geo_risk_errors import GeoRiskError

log = logging.getLogger(__name__)

LABEL_MODEL, LABEL_MAP = "Mean risk (model)", "Mean risk (map)"


def _pct(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f} %"


def _num(v: float, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _interval(iv: dict | None, fmt) -> str:
    """``value (low–high)`` of evaluate's Interval, as plain JSON."""
    if not iv:
        return "–"
    value, low, high = (iv.get(k) for k in ("value", "low", "high"))
    value = float("nan") if value is None else value
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return fmt(value)
    return f"{fmt(value)} ({fmt(low)}–{fmt(high)})"


def stack_layers(stack_path: Path, period: str = "forecast") -> dict[str, np.ndarray] | None:
    """Forest at the period's start, observed loss and zone ids of the layer stack (None when absent)."""
    from tiles import open_store

    if not Path(stack_path).exists():
        return None
    try:
        ds = open_store(stack_path, "layer stack")
        p = ds.sel(period=period)
        return {"forest": p["features"].sel(band="forest").values > 0.5,
                "lost": p["label"].values.astype(bool),
                "zone": ds["zone"].values.astype(np.int64)}
    except (GeoRiskError, KeyError, ValueError) as exc:
        log.warning("map: no observed loss or zone audit from %s (%s)", stack_path, exc)
        return None


def observed_loss(layers: dict[str, np.ndarray] | None, like: GridArray) -> GridArray | None:
    """1 lost, 0 kept forest, 255 not forest — on ``like``'s grid (the stack's grid is risk.tif's)."""
    if layers is None or layers["forest"].shape != like.shape:
        return None
    forest, lost = layers["forest"], layers["lost"]
    codes = np.where(forest, np.where(lost, 1, 0), 255).astype(np.uint8)
    return GridArray(codes, like.crs, like.transform, 255, "observed loss", source="layer stack")


def _from_metrics(metrics_path: Path, period_start: int, period: str, flagged: str) -> dict[int, dict[str, str]] | None:
    try:
        d = json.loads(Path(metrics_path).read_text())
        zones = d["fairness"]["zones"]
        area = float(d["coverage"]["pixel_area_ha"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = {}
    for z in zones:
        out[int(z["zone_id"])] = {
            f"Forest {period_start} (ha)": f"{z['forest_pixels'] * area:,.0f}",
            f"Observed loss {period}": _interval(z.get("observed_loss_rate"), _pct),
            LABEL_MODEL: _interval(z.get("mean_risk_model"), _num),
            LABEL_MAP: _interval(z.get("mean_risk_map"), _num),
            f"Flagged for {flagged} (ha)": f"{z['flagged_ha']:,.0f}",
            "Losses left unflagged (FNR)": _interval(z.get("fnr"), _pct),
        }
    return out


def zone_audit(zone_risk: Path, metrics: Path, layers: dict[str, np.ndarray] | None, decision: GridArray | None,
               *, pixel_area_ha: float, actions: Sequence[str], period_start: int, period: str) -> dict[int, dict[str, str]]:
    """{zone id: {label: text}}, the audit shown in each zone's popup (see the module's docstring)."""
    flagged = ", ".join(actions[1:]) or "action"
    from_metrics = _from_metrics(metrics, period_start, period, flagged)
    if from_metrics:
        return from_metrics
    table = read_zone_table(zone_risk) if Path(zone_risk).is_file() else None
    out: dict[int, dict[str, str]] = {}
    if table is not None:
        for r in table.itertuples():
            out[int(r.zone_id)] = {LABEL_MODEL: _num(r.mean_risk_model), LABEL_MAP: _num(r.mean_risk_map)}
    if layers is None:
        return out
    zone = layers["zone"].ravel()
    forest = layers["forest"].ravel()
    n = int(zone.max()) + 1 if zone.size else 1
    forest_px = np.bincount(zone[forest], minlength=n)
    lost_px = np.bincount(zone[forest & layers["lost"].ravel()], minlength=n)
    flagged_px = None
    if decision is not None and decision.shape == layers["zone"].shape:
        a = decision.array.ravel()
        flag = forest & (a > 0) & (a < len(actions))
        flagged_px = np.bincount(zone[flag], minlength=n)
    for g in np.flatnonzero(forest_px):
        if g == 0:
            continue
        rows = {f"Forest {period_start} (ha)": f"{forest_px[g] * pixel_area_ha:,.0f}",
                f"Observed loss {period}": _pct(lost_px[g] / forest_px[g])}
        rows.update(out.get(int(g), {LABEL_MODEL: "–", LABEL_MAP: "–"}))
        rows[f"Flagged for {flagged} (ha)"] = "–" if flagged_px is None else f"{flagged_px[g] * pixel_area_ha:,.0f}"
        out[int(g)] = rows
    return out
