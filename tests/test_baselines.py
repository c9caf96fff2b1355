"""Baselines in the box (geo_risk/baselines.py) on the synthetic region's tiled and trained run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from geo_risk.baselines import (
    BASELINES, BaselineMaps, fit_and_score, fit_baselines, fit_glm, informative_bands, sample_pixels,
)
from geo_risk.paths import RunPaths
from geo_risk_errors import ChipStoreError, InputDataError
from tiles import open_store
from tiles.chips import normalise


@pytest.fixture(scope="module")
def paths(synthetic_run) -> RunPaths:
    return RunPaths(synthetic_run.cfg.run_dir)


@pytest.fixture(scope="module")
def stack(paths):
    return open_store(paths.stack, "layer stack").compute()


@pytest.fixture(scope="module")
def windows(paths) -> pd.DataFrame:
    return pd.read_parquet(paths.chips / "index.parquet", columns=["row_px", "col_px", "split"])


@pytest.fixture(scope="module")
def baseline_maps(synthetic_run) -> BaselineMaps:
    return fit_and_score(synthetic_run.cfg)


def _window_mask(windows: pd.DataFrame, split: str, shape: tuple[int, int], size: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for r, c in windows.loc[windows.split == split, ["row_px", "col_px"]].itertuples(index=False):
        m[r:r + size, c:c + size] = True
    return m


def test_sample_is_the_valid_pixels_of_train_chips_once_each(paths, stack, windows, synthetic_run):
    size = synthetic_run.cfg.chips.size_px
    s = sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0)
    train = stack.sel(period="train")
    valid = train["valid"].values.astype(bool)
    in_train = _window_mask(windows, "train", valid.shape, size)
    # no cap reached: every valid pixel of the train windows, once, and nothing else
    assert s.population == len(s) == int((valid & in_train).sum())
    assert len(set(zip(s.row_px.tolist(), s.col_px.tolist()))) == len(s)
    assert valid[s.row_px, s.col_px].all() and in_train[s.row_px, s.col_px].all()
    assert not _window_mask(windows, "val", valid.shape, size)[s.row_px, s.col_px].any()
    np.testing.assert_array_equal(s.label, train["label"].values[s.row_px, s.col_px])
    # covariates: the stack's bands exactly as the U-Net sees them
    raw = train["features"].values[:, s.row_px, s.col_px][:, :, None]
    np.testing.assert_allclose(s.features, normalise(raw, list(s.bands), s.stats)[:, :, 0].T, rtol=1e-6)
    assert s.rate_positive == s.rate_negative == 1.0 and s.logit_offset == 0.0
    assert set(informative_bands(s)) == set(s.bands) - {"forest", "past_loss"}  # constant on forest pixels


def test_capped_sample_keeps_positives_and_weights_restore_the_prior(paths):
    full = sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0)
    cap = 2 * full.population_positives + 100  # every positive fits in half the cap; negatives are subsampled
    s = sample_pixels(paths.chips, "train", max_pixels=cap, seed=0)
    assert len(s) == cap and s.population == full.population
    assert int(s.label.sum()) == full.population_positives and s.rate_positive == 1.0
    negatives = full.population - full.population_positives
    assert s.rate_negative == pytest.approx((cap - full.population_positives) / negatives)
    assert float((s.weight * s.label).sum() / s.weight.sum()) == pytest.approx(full.prior, rel=1e-12)
    assert float(s.weight.sum()) == pytest.approx(full.population, rel=1e-12)
    assert s.logit_offset == pytest.approx(np.log(s.rate_negative))
    # a cap below twice the positives: half of it positives, drawn at random
    small = sample_pixels(paths.chips, "train", max_pixels=200, seed=0)
    assert int(small.label.sum()) == 100 and small.rate_positive < 1.0
    assert float((small.weight * small.label).sum() / small.weight.sum()) == pytest.approx(full.prior, rel=1e-12)


def test_prior_correction_calibrates_the_glm(paths):
    full = sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0)
    s = sample_pixels(paths.chips, "train", max_pixels=2 * full.population_positives + 100, seed=0)
    assert s.label.mean() > 2 * full.prior  # the sample is far richer in loss than the population
    p = fit_glm(s).predict_proba(full.features)
    assert p.mean() == pytest.approx(full.prior, rel=0.15)  # corrected back to the population's rate


def test_sampling_and_fitting_are_seeded(paths):
    a = sample_pixels(paths.chips, "train", max_pixels=300, seed=3)
    b = sample_pixels(paths.chips, "train", max_pixels=300, seed=3)
    c = sample_pixels(paths.chips, "train", max_pixels=300, seed=4)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, f.name
    assert not np.array_equal(a.row_px, c.row_px)
    val = sample_pixels(paths.chips, "val", max_pixels=300, seed=5)
    fa, fb = fit_baselines(a, val, seed=0), fit_baselines(b, val, seed=0)
    for name in BASELINES:
        np.testing.assert_array_equal(fa[name].predict_proba(c.features), fb[name].predict_proba(c.features))


def test_glm_loss_is_near_roads_and_forest_edges(paths):
    glm = fit_glm(sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0))
    assert "forest" not in glm.bands and "past_loss" not in glm.bands
    # alone, each covariate says the same: the farther from a road or the edge, the less loss
    s = sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0)
    assert fit_glm(s, ["dist_roads_m"]).coefficients["dist_roads_m"] < 0
    assert fit_glm(s, ["dist_edge_m"]).coefficients["dist_edge_m"] < 0
    assert glm.coefficients["dist_roads_m"] < 0


def test_maps_are_nan_exactly_off_valid_and_beat_chance(baseline_maps, stack, synthetic_run):
    fc = stack.sel(period="forecast")
    valid = fc["valid"].values.astype(bool)
    label = fc["label"].values[valid]
    assert baseline_maps.names == BASELINES and baseline_maps.period == "forecast"
    for name in BASELINES:
        p = baseline_maps[name]
        assert p.shape == valid.shape and p.dtype == np.float32
        np.testing.assert_array_equal(np.isfinite(p), valid)
        assert ((p[valid] >= 0) & (p[valid] <= 1)).all()
        assert baseline_maps.fit_seconds[name] >= 0
    # the per-pixel models beat chance on the forecast; the GBM is checked on the period it was fitted
    # on: on this synthetic layout (loss rows alternate between the periods) its splits on the distance
    # to past loss do not carry over to the forecast (AUC 0.49 there since the DEM hole is filled)
    for name in ("distance_to_edge", "glm"):
        assert roc_auc_score(label, baseline_maps[name][valid]) > 0.5, name
    tr = fit_and_score(synthetic_run.cfg, period="train")
    t_valid = stack.sel(period="train")["valid"].values.astype(bool)
    assert roc_auc_score(stack.sel(period="train")["label"].values[t_valid], tr["gbm"][t_valid]) > 0.5
    # the distance-to-edge map ranks pixels exactly as the distance does
    edge = roc_auc_score(label, -fc["features"].sel(band="dist_edge_m").values[valid])
    assert roc_auc_score(label, baseline_maps["distance_to_edge"][valid]) == pytest.approx(edge, abs=1e-12)


def test_no_chips_or_no_loss_is_a_clear_error(paths):
    with pytest.raises(ChipStoreError, match="no 'buffer' chips"):
        sample_pixels(paths.chips, "buffer")
    s = sample_pixels(paths.chips, "train", max_pixels=10**6, seed=0)
    no_loss = dataclasses.replace(s, label=np.zeros_like(s.label))
    with pytest.raises(InputDataError, match="needs both lost and kept forest"):
        fit_glm(no_loss)
    with pytest.raises(InputDataError, match="not among the chip store's bands"):
        fit_glm(s, ["dist_nowhere_m"])
