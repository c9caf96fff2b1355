"""Block inference with fake models (no checkpoint, no stack) and the zone step, checked by hand."""

import dask.array as da
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import expit

from geo_risk.predict import infer_blocks, project_zones, seam_metric
from geo_risk.predict.blocks import aligned_chunks

STATS = {b: {"transform": "none", "mean": 0.0, "std": 1.0} for b in ("a", "b")}


class Band0(torch.nn.Module):
    """Logit = band 0, pixel by pixel: equivariant under every flip and rotation."""

    def forward(self, x):
        return x[:, :1]


class Box(torch.nn.Module):
    """Logit = mean of band 0 over a (2r+1)² box, zero padding at the input's border (like a conv net)."""

    def __init__(self, r):
        super().__init__()
        self.r = r

    def forward(self, x):
        return F.avg_pool2d(x[:, :1], 2 * self.r + 1, stride=1, padding=self.r, count_include_pad=True)


class LeftNeighbour(torch.nn.Module):
    """Logit = band 0 of the pixel to the left: not equivariant under a horizontal flip."""

    def forward(self, x):
        return F.pad(x[:, :1], (1, 0, 0, 0), mode="replicate")[..., :-1]


def run(model, feats, valid, **kw):
    out = infer_blocks(model, da.from_array(feats, chunks=(2, 40, 40)), da.from_array(valid, chunks=40),
                       ["a", "b"], STATS, **kw)
    return out.compute(scheduler="sync")


@pytest.mark.parametrize("length,block,offset,expected", [
    (100, 40, 0, (32, 32, 36)),  # block rounded down to 32; a last chunk of 4 px merged into the one before
    (100, 64, 40, (32, 68)),  # offset rounded to 32
    (64, 64, 0, (64,)), (70, 1024, 0, (70,)), (200, 64, 0, (64, 64, 72)),
])
def test_block_starts_lie_on_the_32_px_lattice(length, block, offset, expected):
    chunks = aligned_chunks(length, block, offset)
    assert chunks == expected and sum(chunks) == length
    assert all(start % 32 == 0 for start in np.cumsum((0, *chunks[:-1])))


@pytest.mark.parametrize("tta", [1, 8])
def test_every_pixel_is_read_where_it_lies(tta):
    """A per-pixel model gives back its input, for any block grid and under every test-time view:
    a misplaced block, halo crop or inverse transform would show."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, 70, 90)).astype(np.float32)
    valid = np.ones((70, 90), bool)
    valid[:32, :40] = False
    out = run(Band0(), feats, valid, block_px=32, halo_px=8, tta=tta, temperature=2.0)
    # blocks on the 32 px lattice: rows 32/38, columns 32/58 (short last chunks merged); block (0, 0)
    # has no valid pixel, block (0, 1) has some
    assert out.shape == (2, 70, 90)
    assert np.isnan(out[0, :32, :32]).all()
    covered = ~np.isnan(out[0])
    assert covered.sum() == 70 * 90 - 32 * 32
    np.testing.assert_allclose(out[0][covered], feats[0][covered] / 2.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1][covered], 0.0, atol=1e-6)  # every view agrees: no spread


def test_with_a_halo_as_wide_as_the_context_the_map_does_not_depend_on_the_block_grid():
    """A model that sees r px around each pixel (zero-padded at its input's border, like a U-Net):
    with a halo ≥ r two block grids give the same map, equal to the model run on the whole region
    mirrored at its edges; with no halo the block borders show. (The halo is rounded up to 32 px.)"""
    r = 3
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(2, 128, 160)).astype(np.float32)
    valid = np.ones((128, 160), bool)
    whole = np.pad(feats[0], r, mode="symmetric")
    truth = F.avg_pool2d(torch.from_numpy(whole)[None, None], 2 * r + 1, stride=1).numpy()[0, 0]
    a = run(Box(r), feats, valid, block_px=64, halo_px=r)[0]
    b = run(Box(r), feats, valid, block_px=64, halo_px=r, offset=(32, 32))[0]
    np.testing.assert_allclose(a, truth, atol=1e-5)
    np.testing.assert_allclose(b, truth, atol=1e-5)
    seamless = seam_metric(expit(a), expit(b), valid)
    assert seamless["p99"] < 1e-5
    c = run(Box(r), feats, valid, block_px=64, halo_px=0)[0]
    d = run(Box(r), feats, valid, block_px=64, halo_px=0, offset=(32, 32))[0]
    assert seam_metric(expit(c), expit(d), valid)["p99"] > 0.01  # zero padding at block borders shows


class PoolUp(torch.nn.Module):
    """Average over 2×2 cells, then back to full resolution: like a U-Net's strided stages, its
    output changes when the input is shifted by an odd number of pixels."""

    def forward(self, x):
        return F.interpolate(F.avg_pool2d(x[:, :1], 2), scale_factor=2, mode="nearest")


def test_blocks_share_one_pooling_phase_so_shifted_grids_agree():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(2, 128, 128)).astype(np.float32)
    valid = np.ones((128, 128), bool)
    a = run(PoolUp(), feats, valid, block_px=64, halo_px=0)[0]
    b = run(PoolUp(), feats, valid, block_px=64, halo_px=0, offset=(37, 45))[0]  # rounded to (32, 32)
    np.testing.assert_allclose(a, b, atol=1e-6)
    truth = F.interpolate(F.avg_pool2d(torch.from_numpy(feats[None, :1]), 2), scale_factor=2).numpy()[0, 0]
    np.testing.assert_allclose(a, truth, atol=1e-6)


def test_tta_averages_the_views_and_their_spread_is_the_uncertainty():
    """With the identity and the horizontal flip, a left-neighbour model sees the left and the right
    neighbour: the logit is their mean, the spread half the gap of their probabilities."""
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(2, 40, 40)).astype(np.float32)
    out = run(LeftNeighbour(), feats, np.ones((40, 40), bool), block_px=40, halo_px=4, tta=2)
    x = feats[0]
    left, right = x[10, 19], x[10, 21]
    assert out[0, 10, 20] == pytest.approx((left + right) / 2, abs=1e-5)
    assert out[1, 10, 20] == pytest.approx(abs(expit(left) - expit(right)) / 2, abs=1e-5)


def test_seam_metric_by_hand():
    a = np.array([0.1, 0.2, 0.5, np.nan])
    b = np.array([0.1, 0.3, 0.5, 0.2])
    s = seam_metric(a, b, np.ones(4, bool))
    # relative differences 0, 0.1/0.25 = 0.4, 0 over the 3 finite pixels
    assert s["pixels"] == 3 and s["median"] == 0 and s["p99"] == pytest.approx(0.4 * 0.98 + 0 * 0.02, rel=1e-6)


def _zones_case(seed=1):
    rng = np.random.default_rng(seed)
    zone = np.repeat([1, 2, 3], 2000).reshape(60, 100)
    logit = (rng.normal(size=zone.shape) + np.array([-3.0, -1.0, 0.5])[zone - 1]).astype(np.float32)
    valid = np.ones(zone.shape, np.uint8)
    valid[:, :5] = 0
    logit[0, 50] = np.nan  # a pixel no block reached
    return logit, valid, zone


def lazy(*arrays):
    return [da.from_array(a, chunks=(25, 40)) for a in arrays]


def test_zone_step_without_projection_tabulates_exact_zone_means():
    logit, valid, zone = _zones_case()
    offsets, table, n = project_zones(*lazy(logit, valid, zone), lambda_fair=0.0, min_zone_pixels=50)
    scored = (valid > 0) & np.isfinite(logit)
    assert n == scored.sum() and (offsets == 0).all()
    for g in (1, 2, 3):
        m = scored & (zone == g)
        row = table[table.zone_id == g].iloc[0]
        assert row.pixels == m.sum()
        assert row.mean_risk_model == pytest.approx(expit(logit[m].astype(np.float64)).mean(), rel=1e-9)
        assert row.mean_risk_map == pytest.approx(row.mean_risk_model, rel=1e-12)
    _, small, _ = project_zones(*lazy(logit, valid, zone), lambda_fair=0.0, min_zone_pixels=2000)
    assert small.empty  # 5 columns of every zone are not valid: none has 2000 scored pixels


def test_zone_projection_on_a_sample_matches_the_full_fit():
    logit, valid, zone = _zones_case()
    full, t_full, n_full = project_zones(*lazy(logit, valid, zone), lambda_fair=20.0, min_zone_pixels=50)
    part, t_part, n_part = project_zones(*lazy(logit, valid, zone), lambda_fair=20.0, min_zone_pixels=50,
                                         sample_px=1500)
    assert n_part < 0.4 * n_full
    assert t_full.mean_risk_map.std(ddof=0) < 0.5 * t_full.mean_risk_model.std(ddof=0)
    np.testing.assert_allclose(part[1:4], full[1:4], atol=0.15)
    # the table is exact over every pixel whatever the offsets were fitted on
    np.testing.assert_allclose(t_part.mean_risk_model, t_full.mean_risk_model, rtol=1e-12)
    scored = (valid > 0) & np.isfinite(logit)
    mean_map = np.average(t_full.mean_risk_map, weights=t_full.pixels)
    assert mean_map == pytest.approx(expit(logit[scored].astype(np.float64)).mean(), abs=1e-6)
