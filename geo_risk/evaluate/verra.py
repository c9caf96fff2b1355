"""VT0007 on a run: the benchmark and each map through the fit and prediction tests, the verdict,
and the allocated density map of the forecast period (``density.tif``).

The arithmetic is :mod:`geo_risk.evaluate.vt0007` (pure NumPy, hand-checked); this module only
lines up the periods of a run: calibration = the config's ``train`` period, confirmation = its
``forecast`` period. Choices and sources: ``docs/vt0007.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geo_risk.artifacts import CellErrors, Vt0007Map, Vt0007Metrics
from geo_risk.evaluate import vt0007 as vt
from geo_risk_errors import InputDataError


@dataclass(frozen=True)
class PeriodLayers:
    """One period on the grid: forest at its start (inside the outline), its loss, distance to the edge."""

    name: str  # "2005-2010"
    years: float
    forest: np.ndarray  # bool (y, x)
    loss: np.ndarray  # bool (y, x), within forest
    dist_edge_m: np.ndarray  # float (y, x), at the period's start

    @property
    def observed_ha(self) -> float:
        return float(self.loss.sum())


@dataclass(frozen=True)
class MapPair:
    """A model's probability maps: calibration period (None when unavailable) and confirmation period.
    NaN on forest = no value (scored as class 1, the lowest risk)."""

    name: str
    calibration: np.ndarray | None
    confirmation: np.ndarray
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """The benchmark's classes in both periods and its calibration-period class densities."""

    threshold_m: float
    classes_cal: vt.VulnerabilityClasses
    classes_cnf: vt.VulnerabilityClasses
    density: vt.ClassDensity


@dataclass(frozen=True)
class Vt0007Run:
    """What the stage writes and plots: the typed metrics, the density map, the per-cell tables."""

    metrics: Vt0007Metrics
    density_ha_per_pixel_yr: np.ndarray | None  # forecast period, NaN off forest
    cells: dict[str, dict[str, vt.CellTable]]  # map name → {"fit"/"prediction": table}
    cell_ids: np.ndarray | None


def benchmark(cal: PeriodLayers, cnf: PeriodLayers, pixel_size_m: float, pixel_area_ha: float,
              zones: np.ndarray | None = None) -> Benchmark:
    """Threshold (99.5 % of calibration-period loss), 30 classes in both periods, calibration densities."""
    if not cal.loss.any():
        raise InputDataError(f"the calibration period {cal.name} (periods.train) has no observed forest loss: "
                             "VT0007's benchmark needs it — check periods.train.loss_codes")
    thr = vt.edge_distance_threshold(cal.dist_edge_m, cal.loss, cal.forest)
    c_cal = vt.benchmark_classes(cal.dist_edge_m, cal.forest, thr, pixel_size_m=pixel_size_m)
    c_cnf = vt.benchmark_classes(cnf.dist_edge_m, cnf.forest, thr, pixel_size_m=pixel_size_m)
    dens = vt.class_density(c_cal, cal.loss, cal.forest, cal.years, pixel_area_ha, zones)
    return Benchmark(thr, c_cal, c_cnf, dens)


def benchmark_probability(b: Benchmark, cnf: PeriodLayers, zones: np.ndarray | None = None) -> np.ndarray:
    """The benchmark as a probability of loss over the confirmation period, per forest pixel:
    its class's calibration-period relative frequency f, rescaled to the confirmation period's
    length at a constant annual rate, 1 − (1 − f)^(years_cnf / years_cal). NaN off forest."""
    dens, _ = b.density.lookup(b.classes_cnf, cnf.forest, zones)
    freq = dens * b.density.years / b.density.pixel_area_ha
    return 1.0 - (1.0 - np.clip(freq, 0.0, 1.0)) ** (cnf.years / b.density.years)


def cell_grid(shape: tuple[int, int], pixel_size_m: tuple[float, float], inside: np.ndarray,
              cell_size_m: float | None, explicit: bool) -> tuple[np.ndarray | None, str]:
    """Square validation cells clipped to the region, or (None, why) when the default cell does not fit.

    A cell side set in the config that is larger than the region is an error; VT0007's default
    (100,000 ha) on a smaller region skips the validation with the reason.
    """
    side = cell_size_m if cell_size_m is not None else math.sqrt(vt.MEDIAN_PROJECT_AREA_HA * 1e4)
    extent = max(shape[0] * abs(pixel_size_m[1]), shape[1] * abs(pixel_size_m[0]))
    if side >= extent:
        msg = (f"a VT0007 validation cell of {side:,.0f} m is as large as the whole region ({extent:,.0f} m): "
               "one cell cannot validate a map")
        if explicit:
            raise InputDataError(f"evaluate.cell_size_m: {msg} — set a smaller evaluate.cell_size_m")
        return None, (f"{msg}; VT0007's default is the median project area, 100,000 ha — set "
                      "evaluate.cell_size_m to validate this region")
    return vt.square_cells(shape, pixel_size_m, side, valid=inside), f"square cells of {side:,.0f} m"


def _errors(score: vt.PeriodScore) -> CellErrors:
    a = score.allocation
    return CellErrors.of(score.validation, adjustment_ratio=a.adjustment_ratio, n_capped=a.n_capped,
                         n_missing=score.n_missing)


def check_expected(cnf: PeriodLayers, expected_ha_per_yr: float | None, pixel_area_ha: float) -> float:
    """The total to allocate, ha/yr: the config's, or the observed rate of the confirmation period.
    More than the period's forest can lose is an error."""
    forest_ha = float(cnf.forest.sum()) * pixel_area_ha
    observed_per_yr = cnf.observed_ha * pixel_area_ha / cnf.years
    if expected_ha_per_yr is None:
        return observed_per_yr
    if expected_ha_per_yr * cnf.years > forest_ha:
        raise InputDataError(
            f"evaluate.expected_ha_per_yr = {expected_ha_per_yr:,.1f} ha/yr over {cnf.years:g} years is "
            f"{expected_ha_per_yr * cnf.years:,.0f} ha, more than the {forest_ha:,.0f} ha of forest at the start "
            f"of {cnf.name}: set a smaller expected deforestation (the observed rate was {observed_per_yr:,.1f} ha/yr)")
    return float(expected_ha_per_yr)


def run_vt0007(cal: PeriodLayers, cnf: PeriodLayers, bench: Benchmark, maps: list[MapPair], *,
               cells: np.ndarray | None, cells_label: str, pixel_area_ha: float,
               expected_ha_per_yr: float | None, min_forest_fraction: float = 0.0, cell_size_m: float | None = None,
               zones: np.ndarray | None = None, zones_label: str = "", class_method: str = "equal_area") -> Vt0007Run:
    """Fit and prediction tests of the benchmark and every map, the verdicts, and density.tif's map.

    ``cells`` None: the validation is skipped (``cells_label`` says why) but density.tif is still
    allocated. The density map is the first map of ``maps`` that has a calibration-period map
    (its calibration densities on its confirmation-period classes), else the benchmark's.
    ``zones`` crosses every map's classes with those divisions (VT0007's modelling regions);
    ``zones_label`` says what they are in the metrics' ``modeling_regions``.
    """
    expected = check_expected(cnf, expected_ha_per_yr, pixel_area_ha)
    source = "config" if expected_ha_per_yr is not None else "observed"
    common = dict(cal=cal, cnf=cnf, cells=cells, pixel_area_ha=pixel_area_ha, zones=zones, mff=min_forest_fraction)

    tables: dict[str, dict[str, vt.CellTable]] = {}
    b_fit = b_pred = None
    if cells is not None:
        b_fit = _fit(bench.classes_cal, **common)
        b_pred = _predict(bench.classes_cnf, bench.density, **common)
        tables["benchmark"] = {"fit": b_fit.validation.cells, "prediction": b_pred.validation.cells}
    density_src, density_name = (bench.classes_cnf, bench.density), "benchmark"
    rows = []
    for m in maps:
        c_cnf = vt.probability_classes(m.confirmation, cnf.forest, method=class_method)
        if m.calibration is None:  # no calibration densities: neither test is VT0007's
            rows.append(Vt0007Map(name=m.name, prediction=_empty(c_cnf.n_missing), note=m.note or
                                  "no calibration-period map: neither test can be run"))
            continue
        c_cal = vt.probability_classes(m.calibration, cal.forest, method=class_method)
        dens = vt.class_density(c_cal, cal.loss, cal.forest, cal.years, pixel_area_ha, zones)
        if density_name == "benchmark":
            density_src, density_name = (c_cnf, dens), m.name
        if cells is None:
            continue
        m_fit = _fit(c_cal, **common)
        m_pred = _predict(c_cnf, dens, **common)
        tables[m.name] = {"fit": m_fit.validation.cells, "prediction": m_pred.validation.cells}
        v = vt.verdict(b_fit, m_fit, b_pred, m_pred)
        rows.append(Vt0007Map(name=m.name, prediction=_errors(m_pred), fit=_errors(m_fit), passes_fit=v.passes_fit,
                              passes_prediction=v.passes_prediction, passes=v.passes, note=m.note))
    alloc = vt.allocate(density_src[0], density_src[1], expected, cnf.forest, years=cnf.years, zones=zones)
    bench_row = (Vt0007Map(name="benchmark", prediction=_errors(b_pred), fit=_errors(b_fit))
                 if b_pred is not None else None)
    metrics = Vt0007Metrics(
        calibration_period=cal.name, confirmation_period=cnf.name, threshold_m=bench.threshold_m,
        cells=cells_label, cell_size_m=cell_size_m, min_forest_fraction=min_forest_fraction, class_method=class_method,
        modeling_regions=(zones_label or f"{np.unique(zones[zones > 0]).size} zones") if zones is not None else "none",
        benchmark=bench_row,
        models=rows if cells is not None else [], density_map=density_name, expected_ha_per_yr=expected,
        expected_source=source, allocated_ha_per_yr=alloc.allocated_ha_per_yr,
        shortfall_ha_per_yr=alloc.shortfall_ha_per_yr, skipped="" if cells is not None else cells_label)
    return Vt0007Run(metrics, alloc.density_ha_per_pixel_yr, tables, cells)


def _fit(classes, *, cal, cnf, cells, pixel_area_ha, zones, mff) -> vt.PeriodScore:
    return vt.fit_test(classes, cal.loss, cal.forest, years=cal.years, pixel_area_ha=pixel_area_ha, cells=cells,
                       zones=zones, min_forest_fraction=mff)[1]


def _predict(classes, density, *, cal, cnf, cells, pixel_area_ha, zones, mff) -> vt.PeriodScore:
    return vt.prediction_test(classes, density, cnf.loss, cnf.forest, years=cnf.years, cells=cells, zones=zones,
                              min_forest_fraction=mff)


def _empty(n_missing: int) -> CellErrors:
    return CellErrors.empty(n_missing)
