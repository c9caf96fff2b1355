"""Stage 6 — evaluate: score risk.tif against the observed loss, beside a distance-to-edge baseline; metrics.json."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from geo_risk.config import RunConfig
from geo_risk.evaluate.metrics import ranking_metrics, weighted_recall_at_area, zone_mean_risk
from geo_risk.paths import RunPaths
from geo_risk_errors import InputDataError
from tiles import open_store
from tiles.atomic import atomic_file

log = logging.getLogger(__name__)

ZONE_MIN_PIXELS = 100  # zones smaller than this (9 ha at 30 m) are left out of the zone spread


def forecast_metrics(prob: np.ndarray, label: np.ndarray, dist_edge_m: np.ndarray, eco: np.ndarray,
                     zone: np.ndarray) -> dict:
    """Model and baseline metrics over the valid pixels (flat arrays)."""
    flagged = float(label.mean())  # flag as much area as was really lost
    means = zone_mean_risk(prob, zone, min_pixels=ZONE_MIN_PIXELS)
    spread = np.array(list(means.values())) if means else np.array([np.nan])
    return {
        "pixels": int(label.size),
        "observed_loss_rate": float(label.mean()),
        "model": {**ranking_metrics(prob, label),
                  "eco_weighted_recall_at_observed_rate": weighted_recall_at_area(prob, label, eco, flagged)},
        "baseline_distance_to_edge": {
            **ranking_metrics(-dist_edge_m, label),
            "eco_weighted_recall_at_observed_rate": weighted_recall_at_area(-dist_edge_m, label, eco, flagged),
        },
        "zones": {"count": len(means), "mean_risk_std": float(spread.std()),
                  "mean_risk_range": float(spread.max() - spread.min())},
    }


def run_evaluate(cfg: RunConfig) -> dict:
    """Score ``risk.tif`` against the forecast period's observed loss; write ``metrics.json``."""
    paths = RunPaths(cfg.run_dir)
    if not paths.probability.is_file():
        raise InputDataError(f"{paths.probability} not found — run `geo-risk predict CONFIG` first")
    with rasterio.open(paths.probability) as src:
        prob = src.read(1)
        projection = float(src.tags().get("zone_fairness_lambda", 0))
    stack = open_store(paths.stack, "layer stack").sel(period="forecast")
    valid = stack["valid"].values.astype(bool) & np.isfinite(prob)
    metrics = forecast_metrics(
        prob[valid], stack["label"].values[valid].astype(np.uint8),
        stack["features"].sel(band="dist_edge_m").values[valid], np.nan_to_num(stack["eco"].values[valid]),
        stack["zone"].values[valid],
    )
    if projection > 0 and paths.zone_risk.is_file():  # the same zones before predict's fairness projection
        t = pd.read_csv(paths.zone_risk)
        metrics["zones"]["projection_lambda_fair"] = projection
        metrics["zones"]["mean_risk_std_before_projection"] = float(
            t.mean_risk_model[t.pixels >= ZONE_MIN_PIXELS].std(ddof=0))
    fc = cfg.periods.forecast
    metrics = {"period": f"{fc.start_year}-{fc.end_year}", **metrics}
    write_json(paths.metrics, metrics)
    z = metrics["zones"]
    log.info("evaluate: forecast %s AUC %.3f AP %.3f | distance-to-edge baseline AUC %.3f AP %.3f | %s",
             metrics["period"], metrics["model"]["auc"], metrics["model"]["ap"],
             metrics["baseline_distance_to_edge"]["auc"], metrics["baseline_distance_to_edge"]["ap"],
             f"zone-mean risk std {z['mean_risk_std']:.4f} over {z['count']} zones" if z["count"] else "no zones")
    return metrics


def write_json(path: Path, obj: dict) -> None:
    """Atomic JSON write; NaN becomes null so the file stays standard JSON."""
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return o

    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(clean(obj), indent=2))
