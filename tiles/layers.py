"""Derived layers on the grid: forest state, past loss, label and exact distances.

Pure numpy functions, one per layer, so each can be checked on its own.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt


def codes_mask(codes: np.ndarray, wanted: list[int]) -> np.ndarray:
    """1 where ``codes`` is one of ``wanted`` (NaN codes count as no)."""
    return np.isin(np.nan_to_num(codes, nan=-1).astype(np.int64), wanted).astype(np.uint8)


def distance_to(mask: np.ndarray, resolution_m: float) -> np.ndarray:
    """Exact Euclidean distance (m) from every pixel to the nearest pixel where ``mask`` is set.

    Pixels in the mask are at distance 0. With an empty mask, the distance is unknown and every
    pixel gets the grid's diagonal (larger than any distance on the grid).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, float(np.hypot(*mask.shape)) * resolution_m, dtype=np.float32)
    return distance_transform_edt(~mask, sampling=resolution_m).astype(np.float32)


def distance_inside(mask: np.ndarray, resolution_m: float, pad: int) -> np.ndarray:
    """:func:`distance_to` on a grid grown by ``pad`` pixels on every side, cropped back to the inside:
    features beyond the grid's edge (within the pad) count."""
    d = distance_to(mask, resolution_m)
    return d[pad:d.shape[0] - pad, pad:d.shape[1] - pad] if pad else d


def distance_to_edge(forest: np.ndarray, resolution_m: float) -> np.ndarray:
    """Distance (m) of each forest pixel to the nearest non-forest pixel; 0 outside forest."""
    forest = np.asarray(forest, dtype=bool)
    return distance_transform_edt(forest, sampling=resolution_m).astype(np.float32)


def normalise_eco(raw: np.ndarray, where: np.ndarray, quantile: float = 0.99) -> tuple[np.ndarray, float]:
    """Scale an ecological layer to [0, 1] by its ``quantile`` over ``where``; NaN stays NaN."""
    values = raw[np.asarray(where, dtype=bool) & np.isfinite(raw)]
    scale = float(np.quantile(values, quantile)) if values.size else 0.0
    if not np.isfinite(scale) or scale <= 0:
        return np.where(np.isfinite(raw), 0.0, np.nan).astype(np.float32), 0.0
    return np.clip(raw / scale, 0.0, 1.0).astype(np.float32), scale


def fill_nearest(raw: np.ndarray) -> np.ndarray:
    """NaN pixels take the value of the nearest finite pixel (exact Euclidean nearest, ties by scipy's order)."""
    missing = ~np.isfinite(raw)
    if not missing.any() or missing.all():
        return raw
    idx = distance_transform_edt(missing, return_distances=False, return_indices=True)
    return raw[idx[0], idx[1]]
