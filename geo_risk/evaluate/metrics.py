"""Metrics on flat arrays of scored pixels: ranking and eco-weighted recall (zone means: geo_risk.zone_stats)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def ranking_metrics(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """AUC and average precision of a score against binary labels."""
    if label.min() == label.max():
        return {"auc": float("nan"), "ap": float("nan")}
    return {"auc": float(roc_auc_score(label, score)), "ap": float(average_precision_score(label, score))}


def weighted_recall_at_area(score: np.ndarray, label: np.ndarray, weight: np.ndarray, fraction: float) -> float:
    """Share of the eco-weighted observed loss caught by flagging the top ``fraction`` of pixels by score."""
    k = max(1, int(round(fraction * score.size)))
    top = np.argpartition(-score, k - 1)[:k]
    total = float((label * weight).sum())
    return float((label[top] * weight[top]).sum() / total) if total > 0 else float("nan")

