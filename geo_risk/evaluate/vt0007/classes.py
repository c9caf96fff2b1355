"""VT0007 steps 1 and 2: the benchmark vulnerability map (distance threshold, 30 distance classes), a
model's probabilities as the same classes, and the density of loss fitted per class (and zone)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geo_risk.evaluate.vt0007.checks import (_ZONE_BITS, _as_mask, _check_classes, _check_zones, _keys,
                                             _loss_in_forest, _positive, _same_shape)
from geo_risk.evaluate.vt0007.results import VulnerabilityClasses
from geo_risk_errors import InputDataError

#: Vulnerability classes VT0007 prescribes (class 1 = lowest risk, 30 = highest).
N_CLASSES = 30
#: Share of the period's loss that lies within the benchmark's distance threshold.
EDGE_QUANTILE = 0.995


# ---------------------------------------------------------------------------------------------
# 1. Benchmark vulnerability map
# ---------------------------------------------------------------------------------------------


def edge_distance_threshold(dist_edge_m: np.ndarray, loss: np.ndarray, forest: np.ndarray,
                            quantile: float = EDGE_QUANTILE) -> float:
    """Distance to the forest edge within which ``quantile`` of the period's loss occurred.

    The smallest distance ``d`` among lost pixels such that the share of lost pixels with
    distance ≤ ``d`` is at least ``quantile`` (the order statistic ``ceil(q·n)``). VT0007 calls
    it the negligible-risk threshold (NRT). ``dist_edge_m`` is the distance map at the start of
    the period; which loss to pass is the caller's choice (UDef-ARP uses the whole historical
    reference period, riskmapjnr lets the user pick the calibration period or both — see
    ``docs/vt0007.md``). UDef-ARP takes the midpoint of a pixel-wide histogram bin and
    riskmapjnr the upper edge of a 30 m bin; the exact order statistic differs from them by less
    than one bin.
    """
    forest = _as_mask(forest, "forest")
    loss = _loss_in_forest(loss, forest)
    dist = np.asarray(dist_edge_m, dtype=np.float64)
    _same_shape("dist_edge_m", dist, forest)
    if not 0 < quantile <= 1:
        raise InputDataError(f"`quantile` must be in (0, 1], got {quantile}.")
    d = dist[loss]
    if d.size == 0:
        raise InputDataError("no forest loss in the period: the distance threshold is undefined "
                             "(use a period with observed loss).")
    if not np.isfinite(d).all():
        raise InputDataError(f"{int((~np.isfinite(d)).sum())} lost pixel(s) have no distance to the forest "
                             "edge: compute `dist_edge_m` at the start of the same period.")
    k = math.ceil(round(quantile * d.size, 9))
    return float(np.sort(d)[k - 1])


def benchmark_classes(dist_edge_m: np.ndarray, forest: np.ndarray, threshold_m: float, *,
                      pixel_size_m: float, n_classes: int = N_CLASSES) -> VulnerabilityClasses:
    """VT0007's benchmark vulnerability map from the distance to the forest edge.

    Class 1: distance > ``threshold_m``. Classes 2 … ``n_classes``: ``n_classes − 1`` bins of a
    geometric series from the threshold (upper limit of class 2) down to ``pixel_size_m``, the
    smallest distance a forest pixel can have (lower limit of class ``n_classes``):
    ``e_k = threshold · r**k``, ``r = (pixel_size / threshold) ** (1 / (n_classes − 1))``; a
    distance in ``(e_{k+1}, e_k]`` gets class ``k + 2`` and anything ≤ ``e_{n−2}`` (the pixel
    nearest the edge) class ``n_classes``. Bins are right-closed as in riskmapjnr
    (``compute_dist_bins`` + ``vulnerability_map``), so pixels exactly at the threshold count as
    inside it. A threshold no larger than the pixel size leaves one inner class (``n_classes``).
    Forest pixels with a NaN distance go to class 1 and are counted in ``n_missing``.
    """
    forest = _as_mask(forest, "forest")
    dist = np.asarray(dist_edge_m, dtype=np.float64)
    _same_shape("dist_edge_m", dist, forest)
    threshold_m = _positive(threshold_m, "threshold_m")
    pixel_size_m = _positive(pixel_size_m, "pixel_size_m")
    if int(n_classes) != n_classes or n_classes < 2:
        raise InputDataError(f"`n_classes` must be an integer ≥ 2, got {n_classes}.")
    n_in = n_classes - 1
    if threshold_m > pixel_size_m:
        ratio = (pixel_size_m / threshold_m) ** (1.0 / n_in)
        edges = threshold_m * ratio ** np.arange(n_in, -1, -1, dtype=np.float64)
        edges[0], edges[-1] = pixel_size_m, threshold_m
    else:
        edges = np.array([threshold_m, threshold_m])
    d = dist[forest]
    missing = np.isnan(d)
    inside = (d <= threshold_m) & ~missing
    inner = np.searchsorted(edges[1:-1], d[inside], side="left")
    cls = np.ones(d.shape, dtype=np.int16)
    cls[inside] = n_classes - inner
    out = np.zeros(forest.shape, dtype=np.int16)
    out[forest] = cls
    return VulnerabilityClasses(out, int(n_classes), int(missing.sum()), edges)


#: How a model's probabilities are cut into classes: ``equal_area`` (riskmapjnr's ``defor_cat`` default:
#: each class holds the same share of forest) or ``geometric`` (UDef-ARP's alternative classification:
#: ``p / max p`` cut at a geometric series). docs/vt0007.md compares them.
CLASS_METHODS = ("equal_area", "geometric")


def probability_classes(prob: np.ndarray, forest: np.ndarray, n_classes: int = N_CLASSES,
                        method: str = "equal_area") -> VulnerabilityClasses:
    """A model's probability map turned into VT0007's vulnerability classes.

    ``method="equal_area"`` follows riskmapjnr's ``defor_cat(method="Equal Area")``: edges at the
    ``j / n`` quantiles of the probability over forest, so each class holds ≈ 1/n of the forest
    (tied values share the lowest of their classes, so a class may hold more and another none). Low-risk
    forest keeps as many classes as high-risk forest: a sharp model whose bulk of forest lies
    below 4 % of its maximum still separates it (on the demo 86 % of the forest would share the
    geometric class 1).

    ``method="geometric"`` follows UDef-ARP's ``geometric_classification_alternative`` (v2.11):
    the map is scaled by its maximum over forest, ``u = p / max p`` ∈ [0, 1], and cut at
    ``a_j = 2 − 2**((n − j)/n)``, ``j = 0 … n`` — narrow classes at high risk and wide ones at low
    risk. ``u`` in ``[a_j, a_{j+1})`` gets class ``j + 1`` (``u = 1`` → class ``n``).

    A map that is zero everywhere is all class 1 (equal_area: any constant map). Forest pixels without a value
    (NaN) are scored as the lowest risk, class 1, and counted in ``n_missing``. ``edges``: the
    quantile probabilities (equal_area) or the fractions of the maximum (geometric).
    """
    forest = _as_mask(forest, "forest")
    p = np.asarray(prob, dtype=np.float64)
    _same_shape("prob", p, forest)
    if int(n_classes) != n_classes or n_classes < 1:
        raise InputDataError(f"`n_classes` must be an integer ≥ 1, got {n_classes}.")
    if method not in CLASS_METHODS:
        raise InputDataError(f"`method` must be one of {CLASS_METHODS}, got {method!r}.")
    v = p[forest]
    missing = np.isnan(v)
    valid = v[~missing]
    if (valid < 0).any() or not np.isfinite(valid).all():
        raise InputDataError("`prob` must be finite and ≥ 0 on forest (NaN is allowed: scored as lowest risk).")
    cls = np.ones(v.shape, dtype=np.int16)
    if method == "equal_area":
        edges = (np.quantile(valid, np.linspace(0.0, 1.0, n_classes + 1)) if valid.size
                 else np.zeros(n_classes + 1))
        if valid.size:
            # a pixel's class: 1 + the inner edges strictly below it (tied values share the lowest)
            cls[~missing] = 1 + np.searchsorted(edges[1:-1], valid, side="left")
    else:
        edges = 2.0 - 2.0 ** ((n_classes - np.arange(n_classes + 1)) / n_classes)
        edges[0], edges[-1] = 0.0, 1.0
        top = float(valid.max()) if valid.size else 0.0
        if top > 0:
            u = np.minimum(valid / top, 1.0)
            cls[~missing] = 1 + np.searchsorted(edges[1:-1], u, side="right")
    out = np.zeros(forest.shape, dtype=np.int16)
    out[forest] = cls
    return VulnerabilityClasses(out, int(n_classes), int(missing.sum()), edges)


# ---------------------------------------------------------------------------------------------
# 2. Fitting: relative frequency → density
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassDensity:
    """Loss per class (and zone) over a fitting period, and the density it implies.

    One row per (class, zone) present on forest. ``density_ha_per_pixel_yr`` =
    ``n_lost / n_pixels · pixel_area_ha / years`` (UDef-ARP's relative frequency × pixel area,
    annualised linearly as riskmapjnr's ``defor_dens``). ``zone`` is all zeros without zones.
    """

    class_id: np.ndarray
    zone: np.ndarray
    n_pixels: np.ndarray
    n_lost: np.ndarray
    relative_frequency: np.ndarray
    density_ha_per_pixel_yr: np.ndarray
    years: float
    pixel_area_ha: float
    zoned: bool

    def lookup(self, classes: np.ndarray | VulnerabilityClasses, forest: np.ndarray,
               zones: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Density of each forest pixel from its (class, zone); NaN off forest.

        Returns the map and how many forest pixels fell in a (class, zone) absent from the
        fitting period; they get density 0 (riskmapjnr's ``np.nansum`` does the same).
        """
        forest = _as_mask(forest, "forest")
        classes = _check_classes(classes, forest)
        if self.zoned and zones is None:
            raise InputDataError("the class densities were fitted per zone: pass the same `zones` layer "
                                 "to allocate/lookup (or refit class_density without zones).")
        if not self.zoned and zones is not None:
            raise InputDataError("the class densities were fitted without zones but `zones` was given: "
                                 "refit class_density with zones, or drop the zones argument.")
        keys = _keys(classes[forest], None if zones is None else _check_zones(zones, forest)[forest])
        table_keys = _keys(self.class_id, self.zone if self.zoned else None)
        values = np.zeros(keys.shape)
        matched = np.zeros(keys.shape, dtype=bool)
        if table_keys.size:
            order = np.argsort(table_keys)
            sorted_keys = table_keys[order]
            pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
            matched = sorted_keys[pos] == keys
            values[matched] = self.density_ha_per_pixel_yr[order][pos[matched]]
        out = np.full(forest.shape, np.nan)
        out[forest] = values
        return out, int((~matched).sum())


def class_density(classes: np.ndarray | VulnerabilityClasses, loss: np.ndarray, forest: np.ndarray,
                  years: float, pixel_area_ha: float, zones: np.ndarray | None = None) -> ClassDensity:
    """Relative frequency of loss per class (per class × zone with ``zones``) → ha/pixel/yr.

    UDef-ARP ``create_relative_frequency_table`` / riskmapjnr ``defrate_per_class``: for every
    (class, zone) present on forest, ``n_lost / n_pixels``; times the pixel area it is the
    expected loss of one pixel over the period, divided by ``years`` the annual density.
    ``zones`` are administrative divisions (any non-negative integer ids; 0 is a zone like any
    other).
    """
    forest = _as_mask(forest, "forest")
    cls = _check_classes(classes, forest)
    loss = _loss_in_forest(loss, forest)
    years = _positive(years, "years")
    pixel_area_ha = _positive(pixel_area_ha, "pixel_area_ha")
    if not forest.any():
        raise InputDataError("`forest` has no forest pixel: class densities need a fitting period with forest.")
    zone = None if zones is None else _check_zones(zones, forest)[forest]
    keys = _keys(cls[forest], zone)
    uniq, inverse, n_pixels = np.unique(keys, return_inverse=True, return_counts=True)
    n_lost = np.bincount(inverse, weights=loss[forest].astype(np.float64), minlength=uniq.size).astype(np.int64)
    freq = n_lost / n_pixels
    if zones is None:
        class_id, zone_id = uniq, np.zeros_like(uniq)
    else:
        class_id, zone_id = uniq >> _ZONE_BITS, uniq & (2 ** _ZONE_BITS - 1)
    return ClassDensity(class_id=class_id, zone=zone_id, n_pixels=n_pixels.astype(np.int64), n_lost=n_lost,
                        relative_frequency=freq, density_ha_per_pixel_yr=freq * pixel_area_ha / years,
                        years=years, pixel_area_ha=pixel_area_ha, zoned=zones is not None)
