"""The zone step of prediction: the explicit zone-fairness projection and the per-zone table.

Works block by block on lazy arrays: the offsets are fitted on the valid pixels — all of them,
or a seeded uniform sample of ``sample_px`` when there are more — and the zone means are exact
sums over every pixel, so memory does not grow with the region.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy.special import expit

from geo_risk.fairness import fair_zone_offsets
from geo_risk.zone_stats import counted_ids


def _finite(logit: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return (valid > 0) & np.isfinite(logit)


def sample_valid(logit: da.Array, valid: da.Array, zone: da.Array, sample_px: int, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Logits and zone ids of the scored pixels (all, or about ``sample_px`` of them drawn uniformly);
    and how many pixels were scored."""
    n = int(da.map_blocks(lambda lg, v: np.array([[_finite(lg, v).sum()]]), logit, valid, dtype=np.int64,
                          chunks=(1, 1)).sum().compute())
    rate = 1.0 if n <= sample_px else sample_px / n

    def pick(lg, v, z, block_id=None):
        m = _finite(lg, v)
        if rate < 1:
            rng = np.random.default_rng([seed, *block_id])
            m &= rng.random(m.shape) < rate
        return lg[m].astype(np.float64), z[m].astype(np.int64)

    parts = dask.compute(*[dask.delayed(pick)(lg, v, z, block_id=(i, j))
                           for (i, j), lg, v, z in _blocks(logit, valid, zone)])
    if not parts:
        return np.empty(0), np.empty(0, np.int64), n
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), n


def _blocks(*arrays: da.Array):
    """(block index, delayed block of each array) over the common chunking of 2-D arrays."""
    delayed = [a.to_delayed() for a in arrays]
    for i in range(delayed[0].shape[0]):
        for j in range(delayed[0].shape[1]):
            yield (i, j), *(d[i, j] for d in delayed)


def zone_sums(logit: da.Array, valid: da.Array, zone: da.Array, offsets: np.ndarray) -> pd.DataFrame:
    """Per zone id: scored pixels, Σ σ(z) and Σ σ(z + offset) — exact, block by block."""
    size = offsets.size

    def sums(lg, v, z):
        m = _finite(lg, v)
        g = z[m].astype(np.int64)
        x = lg[m].astype(np.float64)
        return np.stack([np.bincount(g, minlength=size)[:size],
                         np.bincount(g, weights=expit(x), minlength=size)[:size],
                         np.bincount(g, weights=expit(x + offsets[g]), minlength=size)[:size]])

    parts = dask.compute(*[dask.delayed(sums)(lg, v, z) for _, lg, v, z in _blocks(logit, valid, zone)])
    total = np.sum(parts, axis=0) if parts else np.zeros((3, size))
    return pd.DataFrame({"pixels": total[0].astype(np.int64), "sum_model": total[1], "sum_map": total[2]})


def project_zones(logit: da.Array, valid: da.Array, zone: da.Array, lambda_fair: float, min_zone_pixels: int,
                  sample_px: int = 2_000_000, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Per-zone logit offsets (an array indexed by zone id; all zero when λ is 0), the zone table
    (zone_id, pixels, mean risk of the model and of the map, logit offset; counted zones only) and
    the number of pixels the offsets were fitted on."""
    z, g, n = sample_valid(logit, valid, zone, sample_px, seed)
    size = int(max(np.asarray(zone.max().compute()), 0)) + 1
    offsets = np.zeros(size)
    if z.size:
        fitted = fair_zone_offsets(z, g, lambda_fair, min_zone_pixels)
        offsets[:fitted.size] = fitted
        offsets[fitted.size:] = fitted[0] if lambda_fair > 0 else 0.0  # zones absent from the sample: common shift
    sums = zone_sums(logit, valid, zone, offsets)
    ids = counted_ids(sums.pixels.to_numpy(), min_zone_pixels)
    picked = sums.iloc[ids]
    table = pd.DataFrame({"zone_id": ids, "pixels": picked.pixels.to_numpy(),
                          "mean_risk_model": (picked.sum_model / picked.pixels).to_numpy(),
                          "mean_risk_map": (picked.sum_map / picked.pixels).to_numpy(),
                          "logit_offset": offsets[ids]})
    return offsets, table, z.size
