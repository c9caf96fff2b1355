import numpy as np
import pytest
import rasterio

from tiles.grid import grid_from_raster
from tiles.layers import codes_mask, distance_to, distance_to_edge, normalise_eco


def brute_distance(mask, res):
    targets = np.argwhere(mask)
    rr, cc = np.indices(mask.shape)
    d = np.hypot(rr[..., None] - targets[:, 0], cc[..., None] - targets[:, 1]).min(axis=-1)
    return d * res


def test_distance_to_matches_brute_force():
    rng = np.random.default_rng(0)
    mask = rng.random((25, 31)) < 0.02
    mask[3, 4] = True
    np.testing.assert_allclose(distance_to(mask, 30.0), brute_distance(mask, 30.0), rtol=1e-6)


def test_distance_to_empty_mask_is_larger_than_grid():
    d = distance_to(np.zeros((10, 20), bool), 30.0)
    assert (d > np.hypot(10, 20) * 30 - 1).all()


def test_distance_to_edge_is_distance_to_nearest_non_forest():
    forest = np.ones((9, 9), bool)
    forest[:, 0] = False
    d = distance_to_edge(forest, 30.0)
    np.testing.assert_allclose(d[4, 1:], 30.0 * np.arange(1, 9))
    assert d[4, 0] == 0


def test_codes_mask_ignores_nan():
    codes = np.array([[0, 1, 2], [3, np.nan, 5]], dtype=np.float32)
    np.testing.assert_array_equal(codes_mask(codes, [2, 3, 5]), [[0, 0, 1], [1, 0, 1]])


def test_normalise_eco_scales_to_unit_interval():
    raw = np.array([0, 50, 100, 200, np.nan], dtype=np.float32)
    out, scale = normalise_eco(raw, np.ones(5, bool), quantile=0.5)
    assert scale == pytest.approx(75.0)
    assert np.nanmax(out) == 1.0 and np.isnan(out[-1]) and out[0] == 0


def test_distance_to_edge_reproduces_forestatrisk_reference(shared_guadeloupe):
    """Our exact EDT against forestatrisk's own dist_edge.tif on the real 2010 forest."""
    with rasterio.open(shared_guadeloupe / "forest" / "fcc12345.tif") as src:
        codes = src.read(1)
    grid = grid_from_raster(shared_guadeloupe / "forest" / "fcc12345.tif")
    forest_2010 = codes_mask(codes, [3, 4, 5]).astype(bool)
    ours = distance_to_edge(forest_2010, grid.resolution_m)
    with rasterio.open(shared_guadeloupe / "dist_edge.tif") as src:
        ref = src.read(1).astype(np.float64)
        nodata = src.nodata
    m = forest_2010 & (ref > 0) & (ref != nodata)
    assert m.sum() > 500_000
    assert np.abs(ours[m] - ref[m]).mean() < 2.0  # metres, on a 30 m grid
    assert np.corrcoef(ours[m], ref[m])[0, 1] > 0.999
