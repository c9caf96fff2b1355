"""Per-zone fairness audit of the map and the decision, with spatial block-bootstrap intervals.

Per zone, over all its forest pixels of the period: forest pixels, observed loss rate, mean risk of
the model (before the zone-fairness projection) and of the map, false-negative and false-positive
rates of the decision, flagged hectares. Which zones count is :func:`geo_risk.zone_stats.counted_ids`
with ``loss.min_zone_pixels``, and the spreads come from :func:`geo_risk.zone_stats.spread`, as
everywhere else.

Intervals: neighbouring pixels are not independent (loss comes in patches), so a bootstrap that
resamples pixels would give intervals far too narrow. The grid is cut into square blocks of
``block_px``; each zone's blocks (its part of each block) are resampled with replacement, and
every rate is recomputed as a ratio of block sums (a cluster bootstrap). The per-group bookkeeping
is a handful of ``np.bincount`` calls on (zone, block) keys — fairlearn's ``MetricFrame`` would
do the same per pixel, and its bootstrap resamples pixels, which is the problem above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_risk.artifacts import FairnessAudit, GapSummary, Interval, ZoneAudit
from geo_risk.zone_stats import counted_ids, spread, zone_pixels

#: block sums kept per (zone, block)
_SUMS = ("n", "lost", "risk_model", "risk_map", "flag_lost", "flag_kept")
#: per-zone quantities of the audit and how they come from the sums (numerator, denominator)
RATES = {
    "observed_loss_rate": ("lost", "n"),
    "mean_risk_model": ("risk_model", "n"),
    "mean_risk_map": ("risk_map", "n"),
    "fnr": ("missed", "lost"),  # missed = lost − flag_lost
    "fpr": ("flag_kept", "kept"),  # kept = n − lost
}


@dataclass(frozen=True)
class ZoneInputs:
    """Flat arrays over the population (one value per forest pixel of the period)."""

    zone: np.ndarray  # int zone id, 0 outside every zone
    block: np.ndarray  # int spatial block id
    lost: np.ndarray  # bool observed loss
    risk_model: np.ndarray  # probability before the zone-fairness projection
    risk_map: np.ndarray  # probability of risk.tif
    flagged: np.ndarray  # bool: the decision takes an action other than the first


def block_ids(shape: tuple[int, int], block_px: int) -> np.ndarray:
    """Id of the ``block_px`` square block of every pixel of a grid, row-major."""
    ny, nx = shape
    ncols = -(-nx // block_px)
    return (np.arange(ny)[:, None] // block_px) * ncols + (np.arange(nx)[None, :] // block_px)


def _rates(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Rates from sums whose last axis follows ``_SUMS``; NaN where a denominator is 0."""
    s = {name: sums[..., i] for i, name in enumerate(_SUMS)}
    s["missed"] = s["lost"] - s["flag_lost"]
    s["kept"] = s["n"] - s["lost"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: np.where(s[d] > 0, s[num] / np.where(s[d] > 0, s[d], 1), np.nan) for k, (num, d) in RATES.items()}


def zone_audit(x: ZoneInputs, names: dict[int, str], *, min_zone_pixels: int, pixel_area_ha: float,
               flagged_actions: list[str], replicates: int = 500, block_px: int = 32, confidence: float = 0.9,
               seed: int = 0) -> FairnessAudit:
    """The audit table (every zone ≥ 1 with forest) and the gap summaries over the counted zones."""
    zone = np.asarray(x.zone, dtype=np.int64)
    counts = zone_pixels(zone)
    counted = set(counted_ids(counts, min_zone_pixels).tolist())
    ids = [int(g) for g in np.flatnonzero(counts) if g > 0]
    values = np.stack([np.ones(zone.size), x.lost, x.risk_model, x.risk_map, x.flagged & x.lost,
                       x.flagged & ~x.lost.astype(bool)], axis=1).astype(np.float64)
    # sums per (zone, block): compact keys, then the rows of each zone
    keys, inverse = np.unique(zone * (int(x.block.max()) + 1) + x.block, return_inverse=True)
    key_zone = keys // (int(x.block.max()) + 1)
    sums = np.stack([np.bincount(inverse, weights=values[:, j], minlength=keys.size) for j in range(len(_SUMS))],
                    axis=1)
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    rows = []
    for g in ids:
        blocks = sums[key_zone == g]
        point = _rates(blocks.sum(axis=0))
        if replicates > 0 and len(blocks) > 1:
            draws = rng.integers(0, len(blocks), size=(replicates, len(blocks)))
            boot = _rates(blocks[draws].sum(axis=1))
            lo = {k: _nanquantile(v, alpha) for k, v in boot.items()}
            hi = {k: _nanquantile(v, 1 - alpha) for k, v in boot.items()}
        else:  # one block: no interval
            lo = hi = {k: float("nan") for k in RATES}
        iv = {k: Interval(float(point[k]), lo[k], hi[k]) for k in RATES}
        flagged_px = blocks[:, _SUMS.index("flag_lost")].sum() + blocks[:, _SUMS.index("flag_kept")].sum()
        rows.append(ZoneAudit(zone_id=g, name=names.get(g, ""), forest_pixels=int(counts[g]), counted=g in counted,
                              observed_loss_rate=iv["observed_loss_rate"], mean_risk_model=iv["mean_risk_model"],
                              mean_risk_map=iv["mean_risk_map"], fnr=iv["fnr"], fpr=iv["fpr"],
                              flagged_ha=float(flagged_px * pixel_area_ha)))
    return FairnessAudit(flagged_actions=list(flagged_actions), min_zone_pixels=int(min_zone_pixels),
                         bootstrap_replicates=int(replicates), bootstrap_block_px=int(block_px),
                         confidence=float(confidence), zones=rows, summaries=gap_summaries(rows))


def gap_summaries(rows: list[ZoneAudit]) -> list[GapSummary]:
    """Max − min, max / min and variance of each audited rate over the counted zones (NaNs left out)."""
    out = []
    for metric in RATES:
        v = np.array([getattr(r, metric).value for r in rows if r.counted], dtype=np.float64)
        v = v[np.isfinite(v)]
        s = spread(v)
        ratio = float(v.max() / v.min()) if v.size and v.min() > 0 else float("nan")
        out.append(GapSummary(metric=metric, max_minus_min=s.range, max_over_min=ratio, variance=s.std ** 2))
    return out


def _nanquantile(v: np.ndarray, q: float) -> float:
    v = v[np.isfinite(v)]
    return float(np.quantile(v, q)) if v.size else float("nan")
