"""VT0007 step 4: validation cells, observed vs predicted hectares per cell and their errors, the fit
and prediction tests, and the verdict (may a model replace the benchmark)."""

from __future__ import annotations

import math

import numpy as np

from geo_risk.evaluate.vt0007.allocation import allocate
from geo_risk.evaluate.vt0007.checks import _as_mask, _loss_in_forest, _positive, _same_shape
from geo_risk.evaluate.vt0007.classes import ClassDensity, class_density
from geo_risk.evaluate.vt0007.results import (Allocation, CellTable, PeriodScore, Validation, Verdict,
                                              VulnerabilityClasses)
from geo_risk_errors import InputDataError

#: VT0007's default validation cell: the median project area, 100,000 ha.
MEDIAN_PROJECT_AREA_HA = 100_000.0


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
