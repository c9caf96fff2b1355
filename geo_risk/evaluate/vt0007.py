"""Verra VT0007 (Unplanned Deforestation Allocation, v1.0, 2024): benchmark, allocation, validation.

Pure NumPy on arrays of one grid (no file I/O). Every map is 2-D ``(y, x)``; ``forest`` is the
forest mask at the *start* of the period a function works on, ``loss`` the pixels of that forest
lost during the period. Areas are hectares, distances metres, periods whole or fractional years.

The sequence (VT0007 §5.1; UDef-ARP's "testing stage"):

1. **Benchmark vulnerability map** (§5.3): distance to the forest edge at the start of the period
   → :func:`edge_distance_threshold` (the distance holding 99.5 % of the loss, UDef-ARP's "NRT")
   → :func:`benchmark_classes` (class 1 beyond it, a geometric series of 29 distance bins inside).
   A model's probabilities become the same 30 classes with :func:`probability_classes`.
2. **Fitting** (calibration period): :func:`class_density` — relative frequency of loss per class
   (crossed with administrative ``zones`` when given, UDef-ARP's "modeling regions") turned into a
   density in ha/pixel/yr.
3. **Prediction + quantity adjustment**: :func:`allocate` — calibration densities on the classes of
   another period, scaled to an expected total and iterated so that no pixel receives more than
   its own area over the period.
4. **Validation** (§5.5): :func:`square_cells` (or a polygon-id raster) → :func:`validate` (per-cell
   observed vs predicted hectares; MedAE, MAE, RMSE, wRMSE, R²); :func:`fit_test` and
   :func:`prediction_test` run steps 2–4 for one map; :func:`verdict` says whether a model may
   replace the benchmark (lower MedAE than the benchmark in *both* tests).

What each step follows, and where VT0007, Clark Labs' UDef-ARP and riskmapjnr differ:
``docs/vt0007.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geo_risk.artifacts import ValidationErrors
from geo_risk_errors import InputDataError

#: VT0007's default validation cell: the median project area, 100,000 ha.
MEDIAN_PROJECT_AREA_HA = 100_000.0
#: Vulnerability classes VT0007 prescribes (class 1 = lowest risk, 30 = highest).
N_CLASSES = 30
#: Share of the period's loss that lies within the benchmark's distance threshold.
EDGE_QUANTILE = 0.995

_ZONE_BITS = 32


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VulnerabilityClasses:
    """A vulnerability map: class 1 (lowest risk) … ``n_classes`` (highest) on forest, 0 elsewhere.

    ``n_missing`` counts forest pixels the input left without a value (NaN distance or
    probability); they are put in class 1, the lowest risk, and every later score includes them.
    ``edges`` are the class boundaries (metres for the benchmark, fraction of the map's maximum
    probability for a model), ascending.
    """

    classes: np.ndarray
    n_classes: int
    n_missing: int
    edges: np.ndarray


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


@dataclass(frozen=True)
class Allocation:
    """A density map after VT0007's quantity adjustment.

    ``density_ha_per_pixel_yr``: ha/pixel/yr on forest, NaN elsewhere; it sums to
    ``allocated_ha_per_yr`` (= ``expected_ha_per_yr`` unless the map cannot hold it:
    ``shortfall_ha_per_yr`` > 0). No pixel exceeds ``cap_ha_per_pixel_yr`` = pixel area / years,
    i.e. a pixel can be lost at most once over the period. ``adjustment_ratio`` is the factor
    applied to the pixels left below the cap in the last pass; ``n_capped`` pixels sit at the cap.
    """

    density_ha_per_pixel_yr: np.ndarray
    expected_ha_per_yr: float
    allocated_ha_per_yr: float
    shortfall_ha_per_yr: float
    adjustment_ratio: float
    iterations: int
    n_capped: int
    cap_ha_per_pixel_yr: float
    n_unmatched: int
    years: float
    pixel_area_ha: float

    @property
    def predicted_ha(self) -> np.ndarray:
        """Predicted loss per pixel over the whole period (ha), NaN off forest."""
        return self.density_ha_per_pixel_yr * self.years


@dataclass(frozen=True)
class CellTable:
    """Per validation cell (only the cells kept): id, area, forest, observed/predicted ha, error."""

    cell_id: np.ndarray
    cell_area_ha: np.ndarray
    forest_ha: np.ndarray
    observed_ha: np.ndarray
    predicted_ha: np.ndarray

    @property
    def error_ha(self) -> np.ndarray:
        """Predicted minus observed hectares."""
        return self.predicted_ha - self.observed_ha


@dataclass(frozen=True)
class Validation(ValidationErrors):
    """Observed vs predicted loss over a grid of cells, and the errors VT0007/riskmapjnr report.

    The errors are :class:`geo_risk.artifacts.ValidationErrors` (one definition with metrics.json's
    :class:`~geo_risk.artifacts.CellErrors`): ``medae_ha`` (VT0007's criterion), ``medae_pct_cell``
    (median of |error| / cell area, %), ``mae_ha``, ``rmse_ha``, ``wrmse_ha`` (riskmapjnr: weights =
    cell forest area / total), ``r2`` (riskmapjnr and UDef-ARP: squared Pearson correlation of
    predicted and observed; NaN with fewer than two cells or no variation). ``n_dropped`` cells had
    too little forest. Adds the per-cell table.
    """

    cells: CellTable


@dataclass(frozen=True)
class PeriodScore:
    """One map scored over one period: the density it predicts and its validation.

    ``n_missing``: forest pixels the map left without a value, scored as its lowest class.
    """

    period: str
    allocation: Allocation
    validation: Validation
    n_missing: int


@dataclass(frozen=True)
class Verdict:
    """Whether a model may replace the benchmark (VT0007 §5.5): lower MedAE in both tests."""

    passes_fit: bool
    passes_prediction: bool
    benchmark_fit_medae_ha: float
    model_fit_medae_ha: float
    benchmark_prediction_medae_ha: float
    model_prediction_medae_ha: float

    @property
    def passes(self) -> bool:
        """True only if the model beats the benchmark in the fit test and in the prediction test."""
        return self.passes_fit and self.passes_prediction


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


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


def probability_classes(prob: np.ndarray, forest: np.ndarray,
                        n_classes: int = N_CLASSES) -> VulnerabilityClasses:
    """A model's probability map turned into VT0007's vulnerability classes.

    Follows UDef-ARP's ``geometric_classification_alternative`` (v2.11): the map is scaled by its
    maximum over forest, ``u = p / max p`` ∈ [0, 1], and cut at ``a_j = 2 − 2**((n − j)/n)``,
    ``j = 0 … n`` — a geometric series, narrow classes at high risk and wide ones at low risk.
    ``u`` in ``[a_j, a_{j+1})`` gets class ``j + 1`` (``u = 1`` → class ``n``). A map that is zero
    everywhere is all class 1. Forest pixels without a value (NaN) are scored as the lowest risk,
    class 1, and counted in ``n_missing``.
    """
    forest = _as_mask(forest, "forest")
    p = np.asarray(prob, dtype=np.float64)
    _same_shape("prob", p, forest)
    if int(n_classes) != n_classes or n_classes < 1:
        raise InputDataError(f"`n_classes` must be an integer ≥ 1, got {n_classes}.")
    v = p[forest]
    missing = np.isnan(v)
    valid = v[~missing]
    if (valid < 0).any() or not np.isfinite(valid).all():
        raise InputDataError("`prob` must be finite and ≥ 0 on forest (NaN is allowed: scored as lowest risk).")
    edges = 2.0 - 2.0 ** ((n_classes - np.arange(n_classes + 1)) / n_classes)
    edges[0], edges[-1] = 0.0, 1.0
    cls = np.ones(v.shape, dtype=np.int16)
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


# ---------------------------------------------------------------------------------------------
# 3. Allocation with the quantity adjustment
# ---------------------------------------------------------------------------------------------


def allocate(classes: np.ndarray | VulnerabilityClasses, density: ClassDensity, expected_ha_per_yr: float,
             forest: np.ndarray, *, years: float, zones: np.ndarray | None = None,
             max_iterations: int = 1000) -> Allocation:
    """Density map of a period from fitted class densities, adjusted to an expected total.

    Each forest pixel gets the density of its (class, zone) in ``density``; the map is then
    multiplied by ``AR = expected / modelled`` (VT0007's adjustment ratio, UDef-ARP
    ``calculate_adjustment_ratio``). A pixel cannot lose more than its own area over the
    ``years`` of the period, so densities above ``pixel_area_ha / years`` are set to that cap and
    the ratio is recomputed on the remaining pixels for what is left of the total, until no pixel
    exceeds the cap (the iteration as the issue and UDef-ARP read VT0007: UDef-ARP repeats its
    adjustment while AR > 1, up to a user-set number of iterations; riskmapjnr applies one ratio
    and no cap). It scales down too (AR < 1). If the uncapped pixels cannot hold the total (all at the cap,
    or only zero-density pixels left) the rest is reported as ``shortfall_ha_per_yr``.

    ``expected_ha_per_yr``: the expected deforestation (config) or, when validating, the observed
    total of the period divided by its years.
    """
    forest = _as_mask(forest, "forest")
    expected = float(expected_ha_per_yr)
    if not math.isfinite(expected) or expected < 0:
        raise InputDataError(f"`expected_ha_per_yr` must be a finite number ≥ 0, got {expected_ha_per_yr}.")
    years = _positive(years, "years")
    if int(max_iterations) != max_iterations or max_iterations < 1:
        raise InputDataError(f"`max_iterations` must be an integer ≥ 1, got {max_iterations}.")
    base_map, n_unmatched = density.lookup(_check_classes(classes, forest), forest, zones)
    base = base_map[forest]
    cap = density.pixel_area_ha / years
    capped = np.zeros(base.shape, dtype=bool)
    out = np.zeros(base.shape)
    ratio = float("nan")
    for iterations in range(1, max_iterations + 1):
        free = ~capped
        remaining = expected - cap * int(capped.sum())
        modelled = float(base[free].sum())
        if remaining <= 0:  # nothing (left) to allocate
            ratio = 0.0
            break
        if modelled <= 0:  # only zero-density pixels left: the rest is a shortfall
            break
        ratio = remaining / modelled
        scaled = base * ratio
        over = free & (scaled > cap)
        if not over.any():
            out[free] = scaled[free]
            break
        capped |= over
    else:
        raise InputDataError(f"the quantity adjustment did not settle in {max_iterations} iterations.")
    out[capped] = cap
    np.minimum(out, cap, out=out)
    allocated = float(out.sum())
    shortfall = expected - allocated
    if shortfall <= 1e-9 * max(expected, 1e-300):
        shortfall = 0.0
    dens = np.full(forest.shape, np.nan)
    dens[forest] = out
    return Allocation(density_ha_per_pixel_yr=dens, expected_ha_per_yr=expected, allocated_ha_per_yr=allocated,
                      shortfall_ha_per_yr=shortfall, adjustment_ratio=ratio, iterations=iterations,
                      n_capped=int(capped.sum()), cap_ha_per_pixel_yr=cap, n_unmatched=n_unmatched, years=years,
                      pixel_area_ha=density.pixel_area_ha)


# ---------------------------------------------------------------------------------------------
# 4. Validation
# ---------------------------------------------------------------------------------------------


def square_cells(shape: tuple[int, int], pixel_size_m: float | tuple[float, float],
                 cell_size_m: float | None = None, *, cell_area_ha: float = MEDIAN_PROJECT_AREA_HA,
                 valid: np.ndarray | None = None, drop_partial: bool = False) -> np.ndarray:
    """Square validation cells: ids 1 … K row-major from the grid's top-left corner, 0 = none.

    The side is ``cell_size_m`` or, by default, the side of a square of ``cell_area_ha``
    (VT0007's default, the median project area, 100,000 ha ≈ 31.6 km), rounded to whole pixels
    (at least one). ``pixel_size_m`` is one size or ``(x, y)`` sizes. Pixels outside ``valid``
    (e.g. the jurisdiction) get 0. ``drop_partial`` also sets to 0 every cell that is not whole —
    cut by the grid's edge or by ``valid`` — as UDef-ARP keeps only cells inside the jurisdiction.
    Polygon cells: pass a raster of polygon ids (0 outside) to :func:`validate` instead.
    """
    ny, nx = (int(s) for s in shape)
    px, py = (pixel_size_m, pixel_size_m) if np.isscalar(pixel_size_m) else pixel_size_m
    px, py = abs(float(px)), abs(float(py))
    _positive(px, "pixel_size_m"), _positive(py, "pixel_size_m")
    side_m = _positive(cell_size_m, "cell_size_m") if cell_size_m is not None else math.sqrt(
        _positive(cell_area_ha, "cell_area_ha") * 1e4)
    sx, sy = max(1, round(side_m / px)), max(1, round(side_m / py))
    ncx = -(-nx // sx)
    rows = np.arange(ny) // sy
    cols = np.arange(nx) // sx
    cells = (rows[:, None] * ncx + cols[None, :] + 1).astype(np.int32)
    if valid is not None:
        valid_mask = _as_mask(valid, "valid")
        if valid_mask.shape != cells.shape:
            raise InputDataError(f"`valid` has shape {valid_mask.shape}, the grid {cells.shape}.")
        cells[~valid_mask] = 0
    if drop_partial:
        counts = np.bincount(cells.ravel(), minlength=int(cells.max()) + 1)
        cells[counts[cells] < sx * sy] = 0
    return cells


def validate(pred_ha: np.ndarray, obs_ha: np.ndarray, cells: np.ndarray, forest: np.ndarray,
             pixel_area_ha: float, min_forest_fraction: float = 0.0) -> Validation:
    """Observed vs predicted hectares of loss per cell over one period, and their errors.

    ``pred_ha``: predicted loss per pixel over the period (an allocated density × years);
    ``obs_ha``: observed loss per pixel (loss mask × pixel area). Only forest pixels (forest at
    the start of the period) count. ``cells``: integer cell ids (0 = no cell), from
    :func:`square_cells` or a rasterised polygon layer. A cell is kept if it has forest and its
    forest covers at least ``min_forest_fraction`` of the cell's area (cell area = its pixels).

    Errors are ``predicted − observed`` per kept cell: MedAE (VT0007's criterion, UDef-ARP's
    ``create_plot``), MedAE as a percentage of the cell area (median of |error| / area),
    MAE, RMSE, wRMSE (riskmapjnr ``validation_udef_arp``: weights = cell forest area / total
    forest area) and R² (riskmapjnr and UDef-ARP: squared Pearson correlation).
    """
    forest = _as_mask(forest, "forest")
    pred = np.asarray(pred_ha, dtype=np.float64)
    obs = np.asarray(obs_ha, dtype=np.float64)
    cell = np.asarray(cells)
    for name, arr in (("pred_ha", pred), ("obs_ha", obs), ("cells", cell)):
        _same_shape(name, arr, forest)
    if cell.dtype.kind not in "iu" or (cell < 0).any():
        raise InputDataError("`cells` must hold non-negative integer ids (0 = no cell).")
    pixel_area_ha = _positive(pixel_area_ha, "pixel_area_ha")
    if not 0 <= min_forest_fraction <= 1:
        raise InputDataError(f"`min_forest_fraction` must be in [0, 1], got {min_forest_fraction}.")
    for name, arr in (("pred_ha", pred), ("obs_ha", obs)):
        bad = int((forest & ~np.isfinite(arr)).sum())
        if bad:
            raise InputDataError(f"`{name}` has no value on {bad} forest pixel(s): score a map through "
                                 "probability_classes/allocate, which give every forest pixel a value.")
    cell = cell.astype(np.int64)
    n_ids = int(cell.max()) + 1 if cell.size else 1
    in_cell = cell > 0
    area_px = np.bincount(cell[in_cell], minlength=n_ids)
    fmask = forest & in_cell
    forest_px = np.bincount(cell[fmask], minlength=n_ids)
    obs_c = np.bincount(cell[fmask], weights=obs[fmask], minlength=n_ids)
    pred_c = np.bincount(cell[fmask], weights=pred[fmask], minlength=n_ids)
    ids = np.flatnonzero(area_px > 0)
    ids = ids[ids > 0]
    keep = (forest_px[ids] > 0) & (forest_px[ids] >= min_forest_fraction * area_px[ids])
    kept = ids[keep]
    if kept.size == 0:
        raise InputDataError("no validation cell has enough forest: use smaller cells or a lower "
                             "`min_forest_fraction`.")
    table = CellTable(cell_id=kept, cell_area_ha=area_px[kept] * pixel_area_ha,
                      forest_ha=forest_px[kept] * pixel_area_ha, observed_ha=obs_c[kept], predicted_ha=pred_c[kept])
    err = table.error_ha
    abs_err = np.abs(err)
    weights = table.forest_ha / table.forest_ha.sum()
    return Validation(
        cells=table,
        medae_ha=float(np.median(abs_err)),
        medae_pct_cell=float(np.median(abs_err / table.cell_area_ha) * 100.0),
        mae_ha=float(abs_err.mean()),
        rmse_ha=float(np.sqrt(np.mean(err ** 2))),
        wrmse_ha=float(np.sqrt(np.sum(weights * err ** 2))),
        r2=_squared_correlation(table.predicted_ha, table.observed_ha),
        n_cells=int(kept.size),
        n_dropped=int(ids.size - kept.size),
        observed_total_ha=float(obs[forest].sum()),
        predicted_total_ha=float(pred[forest].sum()),
    )


def _squared_correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc ** 2).sum()) * float((yc ** 2).sum()))
    if denom == 0 or not math.isfinite(denom):
        return float("nan")
    return float((xc * yc).sum() / denom) ** 2


def fit_test(classes: np.ndarray | VulnerabilityClasses, loss: np.ndarray, forest: np.ndarray, *, years: float,
             pixel_area_ha: float, cells: np.ndarray, zones: np.ndarray | None = None,
             min_forest_fraction: float = 0.0) -> tuple[ClassDensity, PeriodScore]:
    """VT0007's fit test: densities fitted on the calibration period, scored on that period.

    Returns the class densities (reuse them for :func:`prediction_test`) and the score. The fitted
    map is the relative-frequency density of each pixel's class; it already sums to the observed
    loss, so the quantity adjustment leaves it unchanged (ratio 1, no pixel at the cap).
    """
    forest_m = _as_mask(forest, "forest")
    loss_m = _loss_in_forest(loss, forest_m)
    dens = class_density(classes, loss_m, forest_m, years, pixel_area_ha, zones)
    observed = float(loss_m.sum()) * dens.pixel_area_ha
    alloc = allocate(classes, dens, observed / dens.years, forest_m, years=dens.years, zones=zones)
    return dens, _score("fit", classes, alloc, loss_m, forest_m, cells, min_forest_fraction)


def prediction_test(classes: np.ndarray | VulnerabilityClasses, density: ClassDensity, loss: np.ndarray,
                    forest: np.ndarray, *, years: float, cells: np.ndarray, zones: np.ndarray | None = None,
                    min_forest_fraction: float = 0.0) -> PeriodScore:
    """VT0007's prediction test: calibration densities on the confirmation period's classes.

    ``classes``/``forest``/``loss`` are those of the confirmation period (classes from the
    distance or the model's probabilities at its start). The map is adjusted to the observed
    confirmation-period total (UDef-ARP ``calculate_adjustment_ratio_cnf``) and scored per cell.
    """
    forest_m = _as_mask(forest, "forest")
    loss_m = _loss_in_forest(loss, forest_m)
    years = _positive(years, "years")
    observed = float(loss_m.sum()) * density.pixel_area_ha
    alloc = allocate(classes, density, observed / years, forest_m, years=years, zones=zones)
    return _score("prediction", classes, alloc, loss_m, forest_m, cells, min_forest_fraction)


def _score(period: str, classes: np.ndarray | VulnerabilityClasses, alloc: Allocation, loss: np.ndarray,
           forest: np.ndarray, cells: np.ndarray, min_forest_fraction: float) -> PeriodScore:
    pred = np.where(forest, alloc.density_ha_per_pixel_yr, 0.0) * alloc.years
    val = validate(pred, loss * alloc.pixel_area_ha, cells, forest, alloc.pixel_area_ha, min_forest_fraction)
    n_missing = classes.n_missing if isinstance(classes, VulnerabilityClasses) else 0
    return PeriodScore(period=period, allocation=alloc, validation=val, n_missing=n_missing)


def verdict(benchmark_fit: Validation | PeriodScore, model_fit: Validation | PeriodScore,
            benchmark_prediction: Validation | PeriodScore, model_prediction: Validation | PeriodScore) -> Verdict:
    """May the model replace the benchmark? Only if its MedAE is lower in both tests.

    VT0007 §5.5 as UDef-ARP's documentation states it: an alternative map is used only if it is
    superior to the benchmark for the fitted model (calibration period) and for the prediction
    (confirmation period). Superior = strictly lower MedAE; a tie keeps the benchmark.
    """
    def medae(x: Validation | PeriodScore) -> float:
        return (x.validation if isinstance(x, PeriodScore) else x).medae_ha

    bf, mf, bp, mp = medae(benchmark_fit), medae(model_fit), medae(benchmark_prediction), medae(model_prediction)
    return Verdict(passes_fit=bool(mf < bf), passes_prediction=bool(mp < bp), benchmark_fit_medae_ha=bf,
                   model_fit_medae_ha=mf, benchmark_prediction_medae_ha=bp, model_prediction_medae_ha=mp)
