"""Checks of the VT0007 functions' inputs: masks, shapes, classes, zone ids, positive numbers."""

from __future__ import annotations

import math

import numpy as np

from geo_risk.evaluate.vt0007.results import VulnerabilityClasses
from geo_risk_errors import InputDataError

_ZONE_BITS = 32


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InputDataError(f"`{name}` must be a 2-D (y, x) array, got shape {arr.shape}.")
    if arr.dtype != bool:
        values = np.unique(arr[~np.isnan(arr)] if arr.dtype.kind == "f" else arr)
        if not np.isin(values, [0, 1]).all():
            raise InputDataError(f"`{name}` must be a mask of 0/1 or booleans; it holds {values[:5]}.")
        arr = arr == 1
    return arr


def _same_shape(name: str, arr: np.ndarray, ref: np.ndarray) -> None:
    if arr.shape != ref.shape:
        raise InputDataError(f"`{name}` has shape {arr.shape} but `forest` has {ref.shape}: "
                             "every layer must be on the same grid.")


def _loss_in_forest(loss: np.ndarray, forest: np.ndarray) -> np.ndarray:
    loss = _as_mask(loss, "loss")
    _same_shape("loss", loss, forest)
    outside = int((loss & ~forest).sum())
    if outside:
        raise InputDataError(f"`loss` marks {outside} pixel(s) that are not forest at the start of the period: "
                             "loss must be forest at the start that was lost during the period.")
    return loss


def _check_classes(classes: np.ndarray | VulnerabilityClasses, forest: np.ndarray) -> np.ndarray:
    if isinstance(classes, VulnerabilityClasses):
        classes = classes.classes
    arr = np.asarray(classes)
    _same_shape("classes", arr, forest)
    if arr.dtype.kind not in "iu":
        raise InputDataError(f"`classes` must be integers (got {arr.dtype}); build them with "
                             "benchmark_classes or probability_classes.")
    bad = int((forest & (arr < 1)).sum())
    if bad:
        raise InputDataError(f"{bad} forest pixel(s) have no vulnerability class (< 1): every forest pixel "
                             "needs a class ≥ 1.")
    return arr.astype(np.int64)


def _check_zones(zones: np.ndarray, forest: np.ndarray) -> np.ndarray:
    arr = np.asarray(zones)
    _same_shape("zones", arr, forest)
    if arr.dtype.kind not in "iu":
        raise InputDataError(f"`zones` must be integer ids (got {arr.dtype}).")
    if (arr[forest] < 0).any() or (arr[forest] >= 2 ** _ZONE_BITS).any():
        raise InputDataError("`zones` ids on forest must be in [0, 2**32).")
    return arr.astype(np.int64)


def _keys(classes: np.ndarray, zones: np.ndarray | None) -> np.ndarray:
    classes = np.asarray(classes, dtype=np.int64)
    if zones is None:
        return classes
    return (classes << _ZONE_BITS) | np.asarray(zones, dtype=np.int64)


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InputDataError(f"`{name}` must be a positive finite number, got {value}.")
    return value
