"""VT0007 benchmark, allocation and validation on tiny grids, checked against hand-computed values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import distance_transform_edt

from geo_risk_errors import InputDataError
from geo_risk.evaluate.vt0007 import (
    MEDIAN_PROJECT_AREA_HA,
    N_CLASSES,
    VulnerabilityClasses,
    allocate,
    benchmark_classes,
    class_density,
    edge_distance_threshold,
    fit_test,
    prediction_test,
    probability_classes,
    square_cells,
    validate,
    verdict,
)

# ---------------------------------------------------------------------------------------------
# Distance threshold
# ---------------------------------------------------------------------------------------------

# 10 lost pixels (row 0) at these distances; row 1 is forest that stays (its distances don't count).
LOST_DIST = [30, 30, 30, 60, 60, 90, 120, 150, 300, 600]


def _threshold_grid():
    dist = np.array([LOST_DIST, [900.0] * 10])
    forest = np.ones((2, 10), bool)
    loss = np.zeros((2, 10), bool)
    loss[0] = True
    return dist, loss, forest


@pytest.mark.parametrize(("quantile", "expected"), [
    (0.5, 60.0),    # k = ceil(0.5·10) = 5 → 5th smallest = 60
    (0.9, 300.0),   # k = 9 → 300
    (0.995, 600.0),  # k = ceil(9.95) = 10 → 600 (99.5 % needs all ten)
    (1.0, 600.0),
])
def test_edge_distance_threshold_is_the_order_statistic(quantile, expected):
    dist, loss, forest = _threshold_grid()
    assert edge_distance_threshold(dist, loss, forest, quantile) == expected


def test_edge_distance_threshold_exact_multiple_is_not_rounded_up():
    # 200 lost pixels at 1 … 200 m: 0.995·200 = 199 exactly (199.00000000000003 in floats) → 199th = 199 m.
    dist = np.arange(1, 201, dtype=float).reshape(10, 20)
    ones = np.ones((10, 20), bool)
    assert edge_distance_threshold(dist, ones, ones) == 199.0


def test_edge_distance_threshold_refuses_no_loss_and_loss_outside_forest():
    dist, loss, forest = _threshold_grid()
    with pytest.raises(InputDataError, match="no forest loss"):
        edge_distance_threshold(dist, np.zeros_like(loss), forest)
    forest[0, 0] = False
    with pytest.raises(InputDataError, match="not forest at the start"):
        edge_distance_threshold(dist, loss, forest)


# ---------------------------------------------------------------------------------------------
# Benchmark classes
# ---------------------------------------------------------------------------------------------


def test_benchmark_classes_four_classes_by_hand():
    # n_classes = 4 → 3 geometric bins from 240 m down to 30 m: r = (30/240)^(1/3) = 0.5, edges 240, 120, 60, 30.
    # Right-closed bins: ≤60 → 4, (60,120] → 3, (120,240] → 2, >240 → 1.
    dist = np.array([[30.0, 60.0, 61.0, 120.0, 121.0, 240.0, 240.5, np.nan, 30.0]])
    forest = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 0]], bool)
    out = benchmark_classes(dist, forest, 240.0, pixel_size_m=30.0, n_classes=4)
    np.testing.assert_array_equal(out.classes, [[4, 4, 3, 3, 2, 2, 1, 1, 0]])
    np.testing.assert_allclose(out.edges, [30, 60, 120, 240])
    assert out.n_missing == 1  # the NaN forest pixel, put in class 1 (lowest risk)
    assert out.n_classes == 4


def test_benchmark_classes_default_is_thirty_geometric_classes():
    out = benchmark_classes(np.array([[30.0, 33.0, 239.0, 240.0, 240.01]]), np.ones((1, 5), bool), 240.0,
                            pixel_size_m=30.0)
    assert out.n_classes == N_CLASSES == 30
    edges = out.edges
    assert edges.size == 30 and edges[0] == 30.0 and edges[-1] == 240.0  # 29 bins inside the threshold
    np.testing.assert_allclose(edges[1:] / edges[:-1], 8.0 ** (1 / 29))  # constant ratio (240/30)^(1/29)
    # 30 m: nearest the edge → 30; 33 m > e(1) = 30·8^(1/29) ≈ 32.23 → 29; 239 and 240 m → 2; beyond → 1.
    np.testing.assert_array_equal(out.classes, [[30, 29, 2, 2, 1]])


def test_benchmark_classes_on_a_real_distance_map():
    # 6×6, forest everywhere but the first column; distance to the edge by EDT at 30 m:
    # columns 1…5 are 30, 60, 90, 120, 150 m. Threshold 120 m, 4 classes.
    forest = np.ones((6, 6), bool)
    forest[:, 0] = False
    dist = distance_transform_edt(forest, sampling=30.0)
    out = benchmark_classes(dist, forest, 120.0, pixel_size_m=30.0, n_classes=4)
    # r = (30/120)^(1/3) = 0.63: edges 30, 47.6, 75.6, 120 → 30 → 4; 60 → 3; 90, 120 → 2; 150 → 1.
    np.testing.assert_array_equal(out.classes[0], [0, 4, 3, 2, 2, 1])
    assert (out.classes == out.classes[0]).all()


def test_benchmark_classes_threshold_at_pixel_size():
    # All loss at the edge: threshold = pixel size leaves one inner class (the highest) and class 1.
    out = benchmark_classes(np.array([[30.0, 42.4, 60.0]]), np.ones((1, 3), bool), 30.0, pixel_size_m=30.0)
    np.testing.assert_array_equal(out.classes, [[30, 1, 1]])


# ---------------------------------------------------------------------------------------------
# Probability classes
# ---------------------------------------------------------------------------------------------


def test_probability_classes_four_classes_by_hand():
    # u = p / max p (max 0.5). Edges a_j = 2 − 2^((4−j)/4):
    #   0, 2−2^0.75 = 0.3182, 2−√2 = 0.5858, 2−2^0.25 = 0.8108, 1.
    # p 0.5 → u 1 → 4; 0.1 → 0.2 → 1; 0.2 → 0.4 → 2; 0.35 → 0.7 → 3; 0.42 → 0.84 → 4;
    # NaN → 1 (counted); 0 → 1.
    prob = np.array([[0.5, 0.1, 0.2, 0.35, 0.42, np.nan, 0.0, 0.9]])
    forest = np.array([[1, 1, 1, 1, 1, 1, 1, 0]], bool)  # the 0.9 is off forest: ignored, class 0
    out = probability_classes(prob, forest, n_classes=4, method="geometric")
    np.testing.assert_array_equal(out.classes, [[4, 1, 2, 3, 4, 1, 1, 0]])
    np.testing.assert_allclose(out.edges, [0, 2 - 2 ** 0.75, 2 - 2 ** 0.5, 2 - 2 ** 0.25, 1])
    assert out.n_missing == 1


def test_probability_classes_default_thirty_narrow_at_high_risk():
    u_top = 2 - 2 ** (1 / 30)  # lower edge of class 30 ≈ 0.97716
    prob = np.array([[1.0, u_top + 1e-6, u_top - 1e-6, 0.0]])
    out = probability_classes(prob, np.ones((1, 4), bool), method="geometric")
    np.testing.assert_array_equal(out.classes, [[30, 30, 29, 1]])
    widths = np.diff(out.edges)
    assert (np.diff(widths) < 0).all()  # geometric: widest at low risk, narrowest at high risk


def test_probability_classes_equal_area_by_hand():
    # 8 forest values, 4 classes: quantile edges (linear interpolation between order statistics)
    # 0, 0.01 + 0.75·0.01 = 0.0175, (0.1 + 0.2)/2 = 0.15, 0.3 + 0.25·0.3 = 0.375, 0.9: two values per class.
    # A value's class is 1 + the inner edges strictly below it; NaN → 1 (counted); off forest → 0.
    prob = np.array([[0.0, 0.01, 0.02, 0.1, 0.2, 0.3, 0.6, 0.9, np.nan, 0.95]])
    forest = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, 0]], bool)
    out = probability_classes(prob, forest, n_classes=4, method="equal_area")
    np.testing.assert_allclose(out.edges, [0.0, 0.0175, 0.15, 0.375, 0.9])
    np.testing.assert_array_equal(out.classes, [[1, 1, 2, 2, 3, 3, 4, 4, 1, 0]])
    assert out.n_missing == 1


def test_probability_classes_equal_area_keeps_the_low_end_apart():
    # A sharp map: 90 % of the forest below 4 % of the maximum. Geometric classes put all of it in
    # class 1; equal-area classes spread it over 27 of the 30.
    prob = np.concatenate([np.linspace(0.0, 0.03, 900), np.linspace(0.5, 0.95, 100)])[None]
    forest = np.ones_like(prob, bool)
    geo = probability_classes(prob, forest, method="geometric").classes
    eq = probability_classes(prob, forest).classes  # equal_area is the default
    assert (geo[prob < 0.03] == 1).all()
    assert len(np.unique(eq[prob < 0.03])) == 27
    assert np.bincount(eq.ravel())[1:].max() <= 34  # ≈ 1000 / 30 pixels per class


def test_probability_classes_degenerate_maps():
    forest = np.ones((2, 2), bool)
    for method in ("equal_area", "geometric"):
        assert (probability_classes(np.zeros((2, 2)), forest, method=method).classes == 1).all()
        all_nan = probability_classes(np.full((2, 2), np.nan), forest, method=method)
        assert (all_nan.classes == 1).all() and all_nan.n_missing == 4
    assert (probability_classes(np.full((2, 2), 0.3), forest).classes == 1).all()  # constant: one class
    with pytest.raises(InputDataError, match="method"):
        probability_classes(np.zeros((2, 2)), forest, method="quantile")
    with pytest.raises(InputDataError, match="finite and ≥ 0"):
        probability_classes(np.array([[0.1, -0.2], [0.3, 0.4]]), forest)


# ---------------------------------------------------------------------------------------------
# Class densities
# ---------------------------------------------------------------------------------------------


def _six_by_six():
    """Column 0 non-forest; columns 1–2 class 3, 3–4 class 2, 5 class 1 (30 forest pixels).

    Loss: all of column 1 (6 px, class 3), rows 0–2 of column 3 (3 px, class 2).
    Zones: rows 0–2 → zone 1, rows 3–5 → zone 2.
    """
    forest = np.ones((6, 6), bool)
    forest[:, 0] = False
    classes = np.zeros((6, 6), np.int16)
    classes[:, 1:3], classes[:, 3:5], classes[:, 5] = 3, 2, 1
    loss = np.zeros((6, 6), bool)
    loss[:, 1] = True
    loss[0:3, 3] = True
    zones = np.repeat([[1], [2]], 3, axis=0) * np.ones((1, 6), np.int64)
    return classes, loss, forest, zones


def test_class_density_by_hand():
    classes, loss, forest, _ = _six_by_six()
    dens = class_density(classes, loss, forest, years=5, pixel_area_ha=0.09)
    # class 1: 0/6; class 2: 3/12 = 0.25; class 3: 6/12 = 0.5 → × 0.09 ha / 5 yr.
    np.testing.assert_array_equal(dens.class_id, [1, 2, 3])
    np.testing.assert_array_equal(dens.n_pixels, [6, 12, 12])
    np.testing.assert_array_equal(dens.n_lost, [0, 3, 6])
    np.testing.assert_allclose(dens.relative_frequency, [0.0, 0.25, 0.5])
    np.testing.assert_allclose(dens.density_ha_per_pixel_yr, [0.0, 0.0045, 0.009])


def test_class_density_crossed_with_zones_by_hand():
    classes, loss, forest, zones = _six_by_six()
    dens = class_density(classes, loss, forest, years=5, pixel_area_ha=0.09, zones=zones)
    # (class, zone): (1,1) 3 px 0 lost; (1,2) 3/0; (2,1) 6/3; (2,2) 6/0; (3,1) 6/3; (3,2) 6/3.
    np.testing.assert_array_equal(dens.class_id, [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(dens.zone, [1, 2, 1, 2, 1, 2])
    np.testing.assert_array_equal(dens.n_pixels, [3, 3, 6, 6, 6, 6])
    np.testing.assert_array_equal(dens.n_lost, [0, 0, 3, 0, 3, 3])
    np.testing.assert_allclose(dens.density_ha_per_pixel_yr, [0, 0, 0.009, 0, 0.009, 0.009])


def test_class_density_edge_cases():
    classes, loss, forest, _ = _six_by_six()
    none = class_density(classes, np.zeros_like(loss), forest, years=5, pixel_area_ha=0.09)
    assert (none.density_ha_per_pixel_yr == 0).all()
    every = class_density(classes, forest, forest, years=5, pixel_area_ha=0.09)  # all forest lost
    np.testing.assert_allclose(every.density_ha_per_pixel_yr, 0.09 / 5)  # = the cap of a 5-year period
    bad = classes.copy()
    bad[0, 5] = 0
    with pytest.raises(InputDataError, match="no vulnerability class"):
        class_density(bad, loss, forest, years=5, pixel_area_ha=0.09)


# ---------------------------------------------------------------------------------------------
# Allocation and quantity adjustment
# ---------------------------------------------------------------------------------------------


def _fitted():
    classes, loss, forest, zones = _six_by_six()
    return classes, forest, zones, class_density(classes, loss, forest, years=5, pixel_area_ha=0.09)


def test_allocate_scales_down_without_cap():
    # Modelled: 12·0.009 + 12·0.0045 + 6·0 = 0.162 ha/yr; expected 0.081 → AR 0.5.
    classes, forest, _, dens = _fitted()
    out = allocate(classes, dens, 0.081, forest, years=5)
    d = out.density_ha_per_pixel_yr
    assert np.isnan(d[:, 0]).all()  # off forest
    np.testing.assert_allclose(d[:, 1:3], 0.0045)
    np.testing.assert_allclose(d[:, 3:5], 0.00225)
    np.testing.assert_allclose(d[:, 5], 0.0)
    assert out.adjustment_ratio == pytest.approx(0.5)
    assert out.allocated_ha_per_yr == pytest.approx(0.081) and out.shortfall_ha_per_yr == 0
    assert out.n_capped == 0 and out.iterations == 1


def test_allocate_cap_binds_and_is_iterated():
    # Cap = 0.09 ha / 5 yr = 0.018. Expected 0.36: AR 0.36/0.162 = 2.22 → class 3 at 0.02 > cap → capped.
    # Left: 0.36 − 12·0.018 = 0.144 on class 2 (12·0.0045 = 0.054) → AR 2.667 → 0.012 ≤ cap.
    # Sum 0.216 + 0.144 = 0.36.
    classes, forest, _, dens = _fitted()
    out = allocate(classes, dens, 0.36, forest, years=5)
    d = out.density_ha_per_pixel_yr
    np.testing.assert_allclose(d[:, 1:3], 0.018)
    np.testing.assert_allclose(d[:, 3:5], 0.012)
    assert out.cap_ha_per_pixel_yr == pytest.approx(0.018)
    assert out.n_capped == 12 and out.iterations == 2
    assert out.adjustment_ratio == pytest.approx(0.144 / 0.054)
    assert np.nansum(d) == pytest.approx(0.36)


def test_allocate_cascade_to_zero_density_pixels_reports_shortfall():
    # Expected 0.45: class 3 capped (0.216), then class 2 needs 0.234/0.054 = 4.33 → 0.0195 > cap → capped too
    # (0.216). 0.018 ha/yr are left for class 1, whose density is 0: nothing can hold it → shortfall 0.018.
    classes, forest, _, dens = _fitted()
    out = allocate(classes, dens, 0.45, forest, years=5)
    assert out.n_capped == 24
    assert out.allocated_ha_per_yr == pytest.approx(0.432)
    assert out.shortfall_ha_per_yr == pytest.approx(0.018)
    np.testing.assert_allclose(out.density_ha_per_pixel_yr[:, 5], 0.0)


def test_allocate_zero_expected_unmatched_classes_and_zones():
    classes, forest, zones, dens = _fitted()
    zero = allocate(classes, dens, 0.0, forest, years=5)
    assert np.nansum(zero.density_ha_per_pixel_yr) == 0 and zero.adjustment_ratio == 0
    other = classes.copy()
    other[0, 1:3] = 4  # a class the fitting period never saw → density 0, counted
    out = allocate(other, dens, 0.081, forest, years=5)
    assert out.n_unmatched == 2
    np.testing.assert_allclose(out.density_ha_per_pixel_yr[0, 1:3], 0.0)
    assert np.nansum(out.density_ha_per_pixel_yr) == pytest.approx(0.081)
    with pytest.raises(InputDataError, match="without zones"):
        allocate(classes, dens, 0.081, forest, years=5, zones=zones)


def test_allocate_with_zones_uses_zone_densities():
    # Zoned densities: only (2,1), (3,1), (3,2) are 0.009; 18 such pixels → modelled 0.162; expected 0.081 → AR 0.5.
    classes, loss, forest, zones = _six_by_six()
    dens = class_density(classes, loss, forest, years=5, pixel_area_ha=0.09, zones=zones)
    out = allocate(classes, dens, 0.081, forest, years=5, zones=zones)
    d = out.density_ha_per_pixel_yr
    np.testing.assert_allclose(d[0:3, 3:5], 0.0045)  # class 2, zone 1
    np.testing.assert_allclose(d[3:6, 3:5], 0.0)  # class 2, zone 2: no loss there in the fitting period
    np.testing.assert_allclose(d[:, 1:3], 0.0045)
    with pytest.raises(InputDataError, match="fitted per zone"):
        allocate(classes, dens, 0.081, forest, years=5)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2 ** 32 - 1),
    shape=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    years=st.floats(0.5, 12),
    fill=st.floats(0.0, 1.2),
)
def test_allocation_sums_to_expected_and_respects_the_cap(seed, shape, years, fill):
    rng = np.random.default_rng(seed)
    forest = rng.random(shape) < 0.8
    forest.flat[0] = True
    classes = np.where(forest, rng.integers(1, 6, shape), 0).astype(np.int16)
    loss = forest & (rng.random(shape) < rng.random())
    dens = class_density(classes, loss, forest, years=rng.uniform(1, 10), pixel_area_ha=0.09)
    base, _ = dens.lookup(classes, forest)
    cap = 0.09 / years
    capacity = cap * int((base[forest] > 0).sum())  # only pixels with a positive density can receive loss
    expected = fill * cap * int(forest.sum())
    out = allocate(classes, dens, expected, forest, years=years)
    d = out.density_ha_per_pixel_yr
    assert np.isnan(d[~forest]).all()
    v = d[forest]
    assert (v >= 0).all() and (v <= cap * (1 + 1e-12)).all()
    assert out.allocated_ha_per_yr == pytest.approx(min(expected, capacity), rel=1e-9, abs=1e-12)
    assert out.shortfall_ha_per_yr == pytest.approx(max(0.0, expected - capacity), rel=1e-9, abs=1e-12)
    # the adjustment keeps the ranking: a higher fitted density never gets less
    b = base[forest]
    order = np.argsort(b, kind="stable")
    assert (np.diff(v[order]) >= -1e-15).all()


# ---------------------------------------------------------------------------------------------
# Validation cells
# ---------------------------------------------------------------------------------------------


def test_square_cells_by_hand():
    np.testing.assert_array_equal(square_cells((6, 6), 10.0, 30.0), np.repeat(np.repeat([[1, 2], [3, 4]], 3, 0), 3, 1))
    # 5×7 grid, 3×3-pixel cells: 3 cell columns (the last 1 px wide), 2 cell rows (the last 2 px high).
    cells = square_cells((5, 7), 10.0, 30.0)
    np.testing.assert_array_equal(cells[0], [1, 1, 1, 2, 2, 2, 3])
    np.testing.assert_array_equal(cells[4], [4, 4, 4, 5, 5, 5, 6])
    whole = square_cells((5, 7), 10.0, 30.0, drop_partial=True)
    assert set(np.unique(whole)) == {0, 1, 2}  # only the two complete 3×3 cells survive
    # (x, y) pixel sizes: 60 m cells on 10 × 20 m pixels → 6 px wide, 3 px high.
    np.testing.assert_array_equal(np.unique(square_cells((6, 12), (10.0, 20.0), 60.0)), [1, 2, 3, 4])


def test_square_cells_default_is_the_median_project_area_and_valid_mask():
    assert MEDIAN_PROJECT_AREA_HA == 100_000
    # 100,000 ha → side √(1e9 m²) = 31,623 m → 3 pixels of 10 km.
    cells = square_cells((6, 6), 10_000.0)
    assert (cells == np.repeat(np.repeat([[1, 2], [3, 4]], 3, 0), 3, 1)).all()
    valid = np.ones((6, 6), bool)
    valid[0, 0] = False
    cut = square_cells((6, 6), 10_000.0, valid=valid, drop_partial=True)
    assert cut[0, 0] == 0 and (cut[:3, :3] == 0).all() and (cut[3:, 3:] == 4).all()


# ---------------------------------------------------------------------------------------------
# Validation metrics
# ---------------------------------------------------------------------------------------------


def _validation_grid():
    """6×6, 1-ha pixels, four 3×3 cells. Forest: cell 1 all 9, cell 2 all 9, cell 3 4 px, cell 4 1 px.

    Observed / predicted ha: cell 1 3 / 2.0, cell 2 0 / 1.0, cell 3 2 / 2.5, cell 4 1 / 0.
    Errors (pred − obs): −1, +1, +0.5, −1.
    """
    cells = square_cells((6, 6), 100.0, 300.0)
    forest = np.zeros((6, 6), bool)
    forest[0:3, 0:6] = True  # cells 1 and 2
    forest[3:5, 0:2] = True  # cell 3: 4 px
    forest[3, 3] = True  # cell 4: 1 px
    obs = np.zeros((6, 6))
    obs[0, 0:3] = 1  # cell 1: 3 ha
    obs[3, 0:2] = 1  # cell 3: 2 ha
    obs[3, 3] = 1  # cell 4: 1 ha
    pred = np.full((6, 6), 5.0)  # off forest: must be ignored
    pred[forest] = 0.0
    pred[1, 0:2] = 1.0  # cell 1: 2 ha
    pred[2, 3:5] = 0.5  # cell 2: 1 ha
    pred[4, 0:2] = 1.25  # cell 3: 2.5 ha
    return pred, obs, cells, forest


def test_validate_metrics_by_hand():
    pred, obs, cells, forest = _validation_grid()
    v = validate(pred, obs, cells, forest, pixel_area_ha=1.0)
    np.testing.assert_array_equal(v.cells.cell_id, [1, 2, 3, 4])
    np.testing.assert_allclose(v.cells.forest_ha, [9, 9, 4, 1])
    np.testing.assert_allclose(v.cells.observed_ha, [3, 0, 2, 1])
    np.testing.assert_allclose(v.cells.predicted_ha, [2, 1, 2.5, 0])
    np.testing.assert_allclose(v.cells.error_ha, [-1, 1, 0.5, -1])
    assert v.medae_ha == pytest.approx(1.0)  # median(0.5, 1, 1, 1)
    assert v.medae_pct_cell == pytest.approx(100 / 9)  # 1 ha of a 9-ha cell
    assert v.mae_ha == pytest.approx(0.875)  # 3.5 / 4
    assert v.rmse_ha == pytest.approx(math.sqrt(3.25 / 4))
    assert v.wrmse_ha == pytest.approx(math.sqrt((9 * 1 + 9 * 1 + 4 * 0.25 + 1 * 1) / 23))  # weights 9,9,4,1 / 23
    # squared Pearson: cov sum 2.75, SS pred 3.6875, SS obs 5 → 2.75² / (3.6875·5) = 0.41017
    assert v.r2 == pytest.approx(7.5625 / 18.4375)
    assert (v.n_cells, v.n_dropped) == (4, 0)
    assert v.observed_total_ha == 6 and v.predicted_total_ha == 5.5


def test_validate_drops_cells_with_too_little_forest():
    pred, obs, cells, forest = _validation_grid()
    v = validate(pred, obs, cells, forest, pixel_area_ha=1.0, min_forest_fraction=0.2)
    # cell 4 (1/9 forest) dropped, cell 3 (4/9) kept: errors −1, +1, +0.5.
    np.testing.assert_array_equal(v.cells.cell_id, [1, 2, 3])
    assert v.n_dropped == 1
    assert v.medae_ha == pytest.approx(1.0) and v.mae_ha == pytest.approx(2.5 / 3)
    no_forest = forest.copy()
    no_forest[3, 3] = False  # cell 4 now has no forest at all: dropped even with the default 0
    assert validate(pred, obs, cells, no_forest, 1.0).n_dropped == 1
    sparse = np.zeros_like(forest)
    sparse[3, 3] = True  # one forest pixel in a 9-pixel cell: below a 50 % minimum, nothing is left
    with pytest.raises(InputDataError, match="no validation cell"):
        validate(pred, obs, cells, sparse, 1.0, min_forest_fraction=0.5)


def test_validate_no_loss_and_missing_predictions():
    pred, obs, cells, forest = _validation_grid()
    v = validate(pred, np.zeros_like(obs), cells, forest, 1.0)
    assert math.isnan(v.r2)  # observed constant: correlation undefined
    assert v.medae_ha == pytest.approx(1.5)  # median(2, 1, 2.5, 0)
    pred[0, 0] = np.nan
    with pytest.raises(InputDataError, match="no value on 1 forest pixel"):
        validate(pred, obs, cells, forest, 1.0)


# ---------------------------------------------------------------------------------------------
# Fit test, prediction test, verdict
# ---------------------------------------------------------------------------------------------


def _periods():
    """Calibration = the 6×6 grid above (5 yr). Confirmation (4 yr): forest = CAL forest minus CAL loss;
    loss = column 2 rows 0–1 (class 3) and column 5 row 0 (class 1). Cells: columns 0–2 → 1, 3–5 → 2.
    """
    classes, loss, forest, _ = _six_by_six()
    forest_cnf = forest & ~loss
    loss_cnf = np.zeros((6, 6), bool)
    loss_cnf[0:2, 2] = True
    loss_cnf[0, 5] = True
    cells = np.ones((6, 6), np.int32)
    cells[:, 3:] = 2
    return classes, loss, forest, forest_cnf, loss_cnf, cells


def test_fit_test_reproduces_the_observed_total():
    classes, loss, forest, _, _, cells = _periods()
    dens, fit = fit_test(classes, loss, forest, years=5, pixel_area_ha=0.09, cells=cells)
    # Fitted per-pixel loss over the period: class 3 0.5·0.09 = 0.045, class 2 0.0225. Cell 1: 12·0.045 = 0.54
    # = 6 lost px · 0.09; cell 2: 12·0.0225 = 0.27 = 3 · 0.09 → both errors 0.
    assert fit.allocation.adjustment_ratio == pytest.approx(1.0) and fit.allocation.n_capped == 0
    np.testing.assert_allclose(fit.validation.cells.observed_ha, [0.54, 0.27])
    np.testing.assert_allclose(fit.validation.cells.predicted_ha, [0.54, 0.27])
    assert fit.validation.medae_ha == pytest.approx(0.0, abs=1e-12)
    assert fit.period == "fit" and fit.n_missing == 0
    np.testing.assert_allclose(dens.density_ha_per_pixel_yr, [0, 0.0045, 0.009])


def test_prediction_test_by_hand():
    classes, loss, forest, forest_cnf, loss_cnf, cells = _periods()
    dens, _ = fit_test(classes, loss, forest, years=5, pixel_area_ha=0.09, cells=cells)
    pred = prediction_test(classes, dens, loss_cnf, forest_cnf, years=4, cells=cells)
    # CNF forest: class 3 6 px (col 2), class 2 9 px, class 1 6 px. Modelled 6·0.009 + 9·0.0045 = 0.0945 ha/yr;
    # observed 3·0.09 / 4 = 0.0675 ha/yr → AR = 5/7. Over 4 yr: class 3 px 0.036·5/7, class 2 px 0.018·5/7.
    assert pred.allocation.adjustment_ratio == pytest.approx(5 / 7)
    np.testing.assert_allclose(pred.validation.cells.predicted_ha, [6 * 0.036 * 5 / 7, 9 * 0.018 * 5 / 7])
    np.testing.assert_allclose(pred.validation.cells.observed_ha, [0.18, 0.09])
    assert pred.validation.medae_ha == pytest.approx(0.18 / 7)  # both cells off by 0.0257 ha
    assert pred.validation.predicted_total_ha == pytest.approx(0.27)


def test_model_with_missing_values_is_scored_and_counted():
    classes, loss, forest, forest_cnf, loss_cnf, cells = _periods()
    prob = np.where(classes == 3, 0.9, np.where(classes == 2, 0.5, 0.05))
    prob[5, 1] = np.nan  # one forest pixel without a value
    model_classes = probability_classes(prob, forest)
    dens, fit = fit_test(model_classes, loss, forest, years=5, pixel_area_ha=0.09, cells=cells)
    assert fit.n_missing == 1 and isinstance(model_classes, VulnerabilityClasses)
    assert model_classes.classes[5, 1] == 1  # lowest class
    assert fit.validation.predicted_total_ha == pytest.approx(9 * 0.09)


def test_verdict_needs_both_tests():
    pred, obs, cells, forest = _validation_grid()
    base = validate(pred, obs, cells, forest, 1.0)

    def m(x):
        return dataclasses.replace(base, medae_ha=x)

    ok = verdict(m(2.0), m(1.0), m(3.0), m(2.5))
    assert ok.passes and ok.passes_fit and ok.passes_prediction
    only_fit = verdict(m(2.0), m(1.0), m(3.0), m(3.5))
    assert only_fit.passes_fit and not only_fit.passes_prediction and not only_fit.passes
    tie = verdict(m(2.0), m(2.0), m(3.0), m(1.0))
    assert not tie.passes  # a tie keeps the benchmark


def test_validation_and_metrics_json_cell_errors_share_one_definition():
    # the computed form (with its cell table) and the serialised form (with the allocation's figures)
    # are both ValidationErrors: a field added there appears in both, and CellErrors.of copies them all
    from geo_risk.artifacts import CellErrors, ValidationErrors
    from geo_risk.evaluate.vt0007 import Validation

    assert issubclass(Validation, ValidationErrors) and issubclass(CellErrors, ValidationErrors)
    shared = [f.name for f in dataclasses.fields(ValidationErrors)]
    pred, obs, cells, forest = _validation_grid()
    v = validate(pred, obs, cells, forest, pixel_area_ha=1.0)
    e = CellErrors.of(v, adjustment_ratio=1.5, n_capped=2, n_missing=3)
    assert {n: getattr(e, n) for n in shared} == {n: getattr(v, n) for n in shared}
    assert (e.adjustment_ratio, e.n_capped, e.n_missing) == (1.5, 2, 3)
    assert not hasattr(e, "cells")
    assert math.isnan(CellErrors.empty(4).medae_ha) and CellErrors.empty(4).n_missing == 4
