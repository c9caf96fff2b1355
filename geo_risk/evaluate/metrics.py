"""Metrics on flat arrays of scored pixels: ranking, calibration, figure of merit, eco-weighted recall.

Every function takes one value per pixel of the population (NumPy 1-D arrays of the same length);
zone means live in :mod:`geo_risk.zone_stats`, per-zone intervals in :mod:`geo_risk.evaluate.audit`.
Definitions and references: ``docs/evaluation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom
from sklearn.metrics import average_precision_score, roc_auc_score

from geo_risk_errors import InputDataError


def ranking_metrics(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """AUC and average precision of a score against binary labels."""
    if label.min() == label.max():
        return {"auc": float("nan"), "ap": float("nan")}
    return {"auc": float(roc_auc_score(label, score)), "ap": float(average_precision_score(label, score))}


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` highest scores; ties broken by position (first pixels first), so the
    result does not depend on the sort algorithm. For metrics use :func:`top_k_weights`, which
    does not depend on the order of the pixels."""
    score = np.asarray(score)
    k = int(min(max(k, 0), score.size))
    mask = np.zeros(score.size, dtype=bool)
    if k:
        order = np.lexsort((np.arange(score.size), -score.astype(np.float64)))
        mask[order[:k]] = True
    return mask


@dataclass(frozen=True)
class TopK:
    """Flagging the ``k`` highest scores when ties at the cut are broken at random.

    ``above``: pixels strictly above the cut value (always flagged); ``at``: pixels at the cut value,
    of which ``k − above.sum()`` are flagged, each with probability ``share``.
    """

    above: np.ndarray  # bool
    at: np.ndarray  # bool
    share: float  # probability that a pixel at the cut value is flagged
    k: int

    @property
    def weights(self) -> np.ndarray:
        """Probability that each pixel is flagged: 1 above the cut, ``share`` at it, 0 below."""
        return self.above + self.share * self.at

    @property
    def draws(self) -> int:
        """How many of the tied pixels are flagged."""
        return self.k - int(self.above.sum())


def top_k_ties(score: np.ndarray, k: int) -> TopK:
    """The ``k`` highest scores with random tie-breaking at the cut (see :class:`TopK`)."""
    s = np.asarray(score, dtype=np.float64)
    k = int(min(max(k, 0), s.size))
    if k == 0:
        z = np.zeros(s.size, dtype=bool)
        return TopK(z, z.copy(), 0.0, 0)
    cut = np.partition(s, s.size - k)[s.size - k]  # the k-th highest value
    above, at = s > cut, s == cut
    return TopK(above, at, (k - int(above.sum())) / int(at.sum()), k)


def top_k_weights(score: np.ndarray, k: int) -> np.ndarray:
    """Probability that each pixel is among the ``k`` flagged when ties at the cut are broken at
    random: 1 above the cut value, (k − #above) / #at for pixels at it, 0 below; sums to ``k``."""
    return top_k_ties(score, k).weights


def weighted_recall_at_area(score: np.ndarray, label: np.ndarray, weight: np.ndarray, fraction: float) -> float:
    """Share of the eco-weighted observed loss caught by flagging the top ``fraction`` of pixels by score.

    Tie-aware: pixels tied at the cut count fractionally — the expected recall over random
    tie-breaking, so the result does not depend on the order of the pixels (distance to the edge
    has 172,449 demo pixels at 30 m, the cut of every flagged area below that).
    """
    k = max(1, int(round(fraction * np.asarray(score).size)))
    lw = np.asarray(label, dtype=np.float64) * np.asarray(weight, dtype=np.float64)
    total = float(lw.sum())
    return float((top_k_weights(score, k) * lw).sum() / total) if total > 0 else float("nan")


def figure_of_merit(predicted_change: np.ndarray, observed_change: np.ndarray) -> float:
    """Figure of merit of a binary change prediction (Pontius et al. 2008): hits / (misses + hits + false alarms).

    Hits: observed change predicted as change; misses: observed change predicted as persistence;
    false alarms: observed persistence predicted as change. 1 is a perfect map, 0 no overlap.
    NaN when there is neither observed nor predicted change.
    """
    pred = np.asarray(predicted_change, dtype=bool)
    obs = np.asarray(observed_change, dtype=bool)
    hits = int((pred & obs).sum())
    misses = int((~pred & obs).sum())
    false_alarms = int((pred & ~obs).sum())
    denom = hits + misses + false_alarms
    return hits / denom if denom else float("nan")


def fom_at_observed_quantity(score: np.ndarray, label: np.ndarray) -> float:
    """Figure of merit when the map flags as many pixels as were lost (its ``k`` highest scores):
    misses then equal false alarms and FOM = hits / (2·k − hits).

    Tie-aware: when the cut falls inside a run of tied scores, which of the tied pixels are
    flagged is drawn at random; the result is the exact expectation of FOM over that draw (the
    number of hits among the tied pixels is hypergeometric).
    """
    y = np.asarray(label, dtype=bool)
    k = int(y.sum())
    if k == 0:
        return float("nan")
    t = top_k_ties(score, k)
    h_above = int((y & t.above).sum())
    n_at, pos_at, m = int(t.at.sum()), int((y & t.at).sum()), t.draws
    if m == 0 or pos_at == 0 or pos_at == n_at:  # no randomness in the hits
        h = h_above + (m if pos_at == n_at else 0)
        return h / (2 * k - h)
    h = np.arange(max(0, m - (n_at - pos_at)), min(m, pos_at) + 1)
    pmf = hypergeom.pmf(h, n_at, pos_at, m)
    hits = h_above + h
    return float(np.sum(pmf * hits / (2 * k - hits)) / pmf.sum())


def brier_score(prob: np.ndarray, label: np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (Brier 1950)."""
    p = _probabilities(prob)
    return float(np.mean((p - np.asarray(label, dtype=np.float64)) ** 2))


def expected_calibration_error(prob: np.ndarray, label: np.ndarray, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width bins on [0, 1] (Guo et al. 2017): Σ_b (n_b / N)·|ȳ_b − p̄_b|.

    Bin b holds p in [b/B, (b+1)/B); p = 1 falls in the last bin.
    """
    p = _probabilities(prob)
    y = np.asarray(label, dtype=np.float64)
    if bins < 1:
        raise InputDataError(f"`bins` must be ≥ 1, got {bins}")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=p, minlength=bins))
    return float(gap.sum() / p.size)


@dataclass(frozen=True)
class Reliability:
    """Mean predicted probability and observed rate in bins of equal pixel count."""

    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    count: np.ndarray


def reliability_curve(prob: np.ndarray, label: np.ndarray, bins: int = 20) -> Reliability:
    """Reliability diagram points with ``bins`` bins of (nearly) equal pixel count, sorted by probability.

    Equal-count bins, not equal-width: with a loss rate of a few per cent almost every pixel falls in
    the first equal-width bin, and the diagram would show one point.
    """
    p = _probabilities(prob)
    y = np.asarray(label, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, p.size)) if part.size]
    return Reliability(np.array([p[i].mean() for i in parts]), np.array([y[i].mean() for i in parts]),
                       np.array([i.size for i in parts]))


def _probabilities(prob: np.ndarray) -> np.ndarray:
    p = np.asarray(prob, dtype=np.float64)
    if p.size == 0:
        raise InputDataError("no pixel to score")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise InputDataError("probabilities must be finite and in [0, 1] (score missing pixels as 0 first)")
    return p
