"""Window inference with fake models (no checkpoint, no stack) and the zone step, checked by hand."""

import numpy as np
import pytest
import torch
from scipy.special import expit

from geo_risk.predict import infer_logits, project_zones, taper

IDENTITY_STATS = {b: {"transform": "none", "mean": 0.0, "std": 1.0} for b in ("a", "b")}


class Band0(torch.nn.Module):
    """Logit = band 0 of the input, pixel by pixel (translation-equivariant)."""

    def forward(self, x):
        return x[:, :1]


class WindowMean(torch.nn.Module):
    """Logit = the mean of band 0 over the whole window (one value per window)."""

    def forward(self, x):
        return x[:, :1].mean(dim=(2, 3), keepdim=True).expand(-1, 1, *x.shape[2:])


def reader(features):
    return lambda r, c, s: features[:, r:r + s, c:c + s]


def test_taper_ramps_by_hand():
    w = taper(8, 2)
    np.testing.assert_allclose(w[4], [1 / 3, 2 / 3, 1, 1, 1, 1, 2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(w[0, 0], 1 / 9, rtol=1e-6)  # corners: product of both ramps
    np.testing.assert_array_equal(taper(8, 0), np.ones((8, 8)))


def test_each_window_is_read_where_it_lies():
    """A per-pixel model must give back its input everywhere a window reached: any offset between
    where a window is read and where its output is written would show."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 40, 50)).astype(np.float32)
    valid = np.ones((40, 50), dtype=bool)
    valid[24:, :] = False  # windows lying wholly here are skipped
    logit, n = infer_logits(Band0(), reader(features), valid, ["a", "b"], IDENTITY_STATS, window_px=16,
                            overlap_px=4, batch_size=3, temperature=2.0)
    # window starts 0, 12, 24 (rows; 24 is flush with the end: 40 - 16) and 0, 12, 24, 34 (columns);
    # row start 24 covers rows 24..39, all invalid: skipped
    assert n == 2 * 4
    covered = np.zeros_like(valid)
    covered[:28, :] = True
    np.testing.assert_allclose(logit[covered], features[0][covered] / 2.0, rtol=1e-5, atol=1e-6)
    assert np.isnan(logit[~covered]).all()


def test_overlapping_windows_are_blended_by_their_tapers():
    """Where two windows overlap, the result is their outputs weighted by each window's taper there."""
    h, size, overlap = 8, 8, 2
    features = np.zeros((2, h, 14), dtype=np.float32)
    features[0] = np.arange(14, dtype=np.float32)[None, :]  # band 0 = column index
    logit, n = infer_logits(WindowMean(), reader(features), np.ones((h, 14), bool), ["a", "b"], IDENTITY_STATS,
                            window_px=size, overlap_px=overlap, batch_size=8)
    assert n == 2  # column starts 0 and 6
    a, b = np.arange(0, 8).mean(), np.arange(6, 14).mean()  # 3.5 and 9.5
    ramp = taper(size, overlap)[h // 2]
    # column 6 is column 6 of window A (weight 2/3) and column 0 of window B (weight 1/3)
    expected6 = (ramp[6] * a + ramp[0] * b) / (ramp[6] + ramp[0])
    expected7 = (ramp[7] * a + ramp[1] * b) / (ramp[7] + ramp[1])
    np.testing.assert_allclose(logit[4, [0, 5, 6, 7, 8, 13]], [a, a, expected6, expected7, b, b], rtol=1e-6)
    assert expected6 == pytest.approx(5.5) and expected7 == pytest.approx(7.5)


def test_zone_step_without_projection_is_the_sigmoid_and_tabulates_zones():
    logit = np.array([[-2.0, 0.0, 1.0], [np.nan, 3.0, -1.0]], dtype=np.float32)
    valid = np.array([[1, 1, 1], [1, 1, 0]], dtype=bool)
    zone = np.array([[1, 1, 2], [2, 2, 2]])
    prob, table = project_zones(logit, valid, zone, lambda_fair=0.0, min_zone_pixels=2)
    np.testing.assert_allclose(prob[0], expit([-2.0, 0.0, 1.0]), rtol=1e-6)
    assert np.isnan(prob[1, 0]) and np.isnan(prob[1, 2])  # no logit; not valid
    # zone 1: pixels -2, 0; zone 2: pixels 1, 3 (the NaN and the invalid pixel do not count)
    assert table.zone_id.tolist() == [1, 2] and table.pixels.tolist() == [2, 2]
    np.testing.assert_allclose(table.mean_risk_model, [expit([-2, 0]).mean(), expit([1, 3]).mean()])
    np.testing.assert_allclose(table.mean_risk_map, table.mean_risk_model)
    assert (table.logit_offset == 0).all()
    _, small = project_zones(logit, valid, zone, lambda_fair=0.0, min_zone_pixels=3)
    assert small.empty  # no zone has 3 scored pixels


def test_zone_step_with_projection_narrows_zone_means_and_keeps_the_mean():
    rng = np.random.default_rng(1)
    zone = np.repeat([1, 2, 3], 200).reshape(30, 20)
    logit = (rng.normal(size=zone.shape) + np.array([-3.0, -1.0, 0.5])[zone - 1]).astype(np.float32)
    valid = np.ones(zone.shape, bool)
    prob, table = project_zones(logit, valid, zone, lambda_fair=20.0, min_zone_pixels=50)
    assert table.mean_risk_map.std(ddof=0) < 0.5 * table.mean_risk_model.std(ddof=0)
    assert prob.mean() == pytest.approx(expit(logit).mean(), abs=1e-6)
