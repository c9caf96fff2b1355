"""The streaming helpers of tiles/blockwise.py against their whole-array numpy versions."""

import dask.array as da
import numpy as np
import pytest

from tiles.blockwise import capped_distance, exact_quantile, fill_nearest_blocks, window_sums
from tiles.chips import band_stats, band_stats_lazy, chip_windows, window_fractions
from tiles.layers import distance_to, distance_to_edge, fill_nearest


@pytest.mark.parametrize("q", [0.0, 0.37, 0.5, 0.99, 1.0])
def test_exact_quantile_is_numpys(q):
    rng = np.random.default_rng(1)
    v = rng.gamma(2, 50, (300, 410)).astype(np.float32)
    v[rng.random(v.shape) < 0.1] = np.nan
    where = rng.random(v.shape) < 0.5
    got = exact_quantile(da.from_array(v, chunks=128), da.from_array(where, chunks=128), q, bins=64)
    assert got == float(np.quantile(v[where & np.isfinite(v)], q))


def test_window_sums_are_the_summed_area_table_counts():
    rng = np.random.default_rng(2)
    mask = rng.random((300, 410)) < 0.3
    rc = np.array(list(chip_windows(300, 410, 64, 32)))  # the last row and column of windows are off the lattice
    got = window_sums(da.from_array(mask, chunks=100), rc[:, 0], rc[:, 1], 64, 32) / 64**2
    np.testing.assert_array_equal(got, window_fractions(mask, rc[:, 0], rc[:, 1], 64))


def test_fill_nearest_blocks_is_the_whole_grid_fill_within_its_depth(monkeypatch):
    import tiles.blockwise

    monkeypatch.setattr(tiles.blockwise, "CHUNK_PX", 64)  # 5 × 7 blocks
    rng = np.random.default_rng(3)
    raw = rng.random((300, 410)).astype(np.float32)
    raw[rng.random(raw.shape) < 0.3] = np.nan
    raw[50:150, 60:260] = np.nan  # a hole 100 px across: its centre is 50 px from a value
    np.testing.assert_array_equal(fill_nearest_blocks(da.from_array(raw, chunks=64), 60, -1.0).compute(),
                                  fill_nearest(raw))
    shallow = fill_nearest_blocks(da.from_array(raw, chunks=64), 10, -1.0).compute()
    assert (shallow == -1).sum() > 0 and np.isfinite(shallow).all()  # beyond the block and its depth: the fallback


@pytest.mark.parametrize("cap", [60.0, 300.0, 3000.0])
def test_capped_distance_is_exact_below_the_cap(cap, monkeypatch):
    import tiles.blockwise

    monkeypatch.setattr(tiles.blockwise, "CHUNK_PX", 64)  # several blocks unless the cap is deeper
    rng = np.random.default_rng(4)
    mask = rng.random((300, 410)) < 0.001
    np.testing.assert_array_equal(capped_distance(da.from_array(mask, chunks=64), 30.0, cap).compute(),
                                  np.minimum(distance_to(mask, 30.0), np.float32(cap)))
    forest = rng.random((300, 410)) < 0.99
    np.testing.assert_array_equal(
        capped_distance(da.from_array(forest, chunks=64), 30.0, cap, of_unset=True, beyond=1).compute(),
        np.minimum(distance_to_edge(forest, 30.0), np.float32(cap)))


def test_band_stats_in_two_streaming_passes():
    rng = np.random.default_rng(5)
    img = np.stack([rng.normal(5, 2, (20, 16, 16)), rng.exponential(500, (20, 16, 16))], axis=1).astype(np.float32)
    valid = rng.random((20, 16, 16)) < 0.7
    bands = ["altitude", "dist_roads_m"]
    lazy = band_stats_lazy(da.from_array(img, chunks=(1, 2, 16, 16)), da.from_array(valid, chunks=(1, 16, 16)), bands)
    for band, s in band_stats(img, valid, bands).items():
        assert lazy[band]["transform"] == s["transform"]
        assert lazy[band]["mean"] == pytest.approx(s["mean"], rel=1e-12)
        assert lazy[band]["std"] == pytest.approx(s["std"], rel=1e-9)
