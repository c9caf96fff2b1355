"""Zone statistics, in one place: which zones count, their mean risk and its spread.

Predict (the fairness projection and ``zone_risk.csv``), evaluate (``metrics.json``), the review
map and the scripts all use these functions with the one setting ``loss.min_zone_pixels``: a zone
counts when it holds at least that many scored pixels (zone id 0, outside every zone, never does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ZoneSpread:
    """How unequal the zone means are: number of zones counted, std (ddof 0) and range of their means."""

    count: int
    std: float
    range: float


def counted_ids(counts: np.ndarray, min_pixels: int) -> np.ndarray:
    """Sorted ids (≥ 1) whose pixel count (``counts[id]``) is at least ``min_pixels``."""
    ids = np.flatnonzero(np.asarray(counts) >= max(int(min_pixels), 1))
    return ids[ids > 0]


def counted_zones(zone: np.ndarray, min_pixels: int) -> np.ndarray:
    """Sorted ids (≥ 1) of the zones with at least ``min_pixels`` pixels in the flat ``zone`` array."""
    return counted_ids(zone_pixels(zone), min_pixels)


def zone_pixels(zone: np.ndarray) -> np.ndarray:
    """Pixel count per zone id (index = id)."""
    return np.bincount(np.asarray(zone).ravel().astype(np.int64))


def zone_mean_risk(prob: np.ndarray, zone: np.ndarray, min_pixels: int) -> dict[int, float]:
    """Mean of ``prob`` per counted zone (see :func:`counted_zones`), over the same flat pixels."""
    zone = np.asarray(zone).ravel().astype(np.int64)
    counts = np.bincount(zone)
    sums = np.bincount(zone, weights=np.asarray(prob, dtype=np.float64).ravel())
    return {int(g): float(sums[g] / counts[g]) for g in counted_zones(zone, min_pixels)}


def spread(means: dict[int, float] | np.ndarray) -> ZoneSpread:
    """Std and range of zone means; NaN (with count 0) when no zone counts."""
    values = np.asarray(list(means.values()) if isinstance(means, dict) else means, dtype=np.float64)
    if values.size == 0:
        return ZoneSpread(0, float("nan"), float("nan"))
    return ZoneSpread(int(values.size), float(values.std()), float(values.max() - values.min()))
