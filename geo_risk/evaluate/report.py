"""Stage 6 — evaluate: score risk.tif against the observed loss, beside a distance-to-edge baseline; metrics.json."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import rasterio

from geo_risk.artifacts import Metrics, RiskTags, Scores, ZoneMetrics, read_zone_table
from geo_risk.config import RunConfig
from geo_risk.evaluate.metrics import ranking_metrics, weighted_recall_at_area
from geo_risk.paths import RunPaths
from geo_risk.zone_stats import counted_zones, spread, zone_mean_risk
from geo_risk_errors import InputDataError
from tiles import open_store
from tiles.bands import DIST_EDGE

log = logging.getLogger(__name__)


def scores(score: np.ndarray, label: np.ndarray, eco: np.ndarray) -> Scores:
    """AUC, AP and eco-weighted recall when flagging as much area as was really lost."""
    rank = ranking_metrics(score, label)
    return Scores(rank["auc"], rank["ap"], weighted_recall_at_area(score, label, eco, float(label.mean())))


def forecast_metrics(period: str, prob: np.ndarray, label: np.ndarray, dist_edge_m: np.ndarray, eco: np.ndarray,
                     zone: np.ndarray, min_zone_pixels: int) -> Metrics:
    """Model and baseline metrics over the valid pixels (flat arrays)."""
    s = spread(zone_mean_risk(prob, zone, min_zone_pixels))
    return Metrics(
        period=period, pixels=int(label.size), observed_loss_rate=float(label.mean()),
        model=scores(prob, label, eco), baseline_distance_to_edge=scores(-dist_edge_m, label, eco),
        zones=ZoneMetrics(count=s.count, min_pixels=min_zone_pixels, mean_risk_std=s.std, mean_risk_range=s.range),
    )


def run_evaluate(cfg: RunConfig) -> Metrics:
    """Score ``risk.tif`` against the forecast period's observed loss; write ``metrics.json``."""
    paths = RunPaths(cfg.run_dir)
    if not paths.probability.is_file():
        raise InputDataError(f"{paths.probability} not found — run `geo-risk predict CONFIG` first")
    with rasterio.open(paths.probability) as src:
        prob = src.read(1)
        tags = RiskTags.from_tags(src.tags(), paths.probability)
    stack = open_store(paths.stack, "layer stack").sel(period="forecast")
    valid = stack["valid"].values.astype(bool) & np.isfinite(prob)
    fc = cfg.periods.forecast
    zone = stack["zone"].values[valid]
    min_px = cfg.loss.min_zone_pixels
    metrics = forecast_metrics(
        f"{fc.start_year}-{fc.end_year}", prob[valid], stack["label"].values[valid].astype(np.uint8),
        stack["features"].sel(band=DIST_EDGE).values[valid], np.nan_to_num(stack["eco"].values[valid]), zone, min_px,
    )
    if tags.zone_fairness_lambda > 0 and paths.zone_risk.is_file():  # the same zones before the projection
        t = read_zone_table(paths.zone_risk)
        same = t[t.zone_id.isin(counted_zones(zone, min_px))]
        metrics = _with_projection(metrics, tags.zone_fairness_lambda, float(same.mean_risk_model.std(ddof=0)))
    metrics.write(paths.metrics)
    z = metrics.zones
    log.info("evaluate: forecast %s AUC %.3f AP %.3f | distance-to-edge baseline AUC %.3f AP %.3f | %s",
             metrics.period, metrics.model.auc, metrics.model.ap, metrics.baseline_distance_to_edge.auc,
             metrics.baseline_distance_to_edge.ap,
             f"zone-mean risk std {z.mean_risk_std:.4f} over {z.count} zones" if z.count else "no zones")
    return metrics


def _with_projection(m: Metrics, lambda_fair: float, std_before: float) -> Metrics:
    return replace(m, zones=replace(m.zones, projection_lambda_fair=lambda_fair,
                                    mean_risk_std_before_projection=std_before))
