"""Out-of-core tiling: rasterisation block by block and distances capped at ``layers.distance_cap_m``
computed block by block with an overlap (tiles/blockwise.py) give the whole-grid result: the very
same pixels burned, the same distances below the cap, the cap above it. On the synthetic region
with 32 px blocks (9 blocks, so the overlaps matter) and on the demo's real layers."""

import dask.array as da
import numpy as np
import pytest

import tiles.blockwise
import tiles.grid
import tiles.stack
from geo_risk.tiling import stack_spec
from tests.conftest import synthetic_config
from tiles import build_stack
from tiles.blockwise import burn_blocks, capped_distance
from tiles.grid import grid_from_raster
from tiles.layers import distance_to, distance_to_edge
from tiles.vectors import burn, grown_grid, read_vector

DISTANCES = ["dist_edge_m", "dist_past_loss_m", "dist_roads_m", "dist_rivers_m", "dist_towns_m"]


@pytest.mark.parametrize("cap_m", [150.0, 600.0, 5000.0])
def test_capped_stack_is_the_whole_grid_stack_below_the_cap(cap_m, synthetic_region, synthetic_stack, monkeypatch):
    for module in (tiles.grid, tiles.stack, tiles.blockwise):
        monkeypatch.setattr(module, "CHUNK_PX", 32)
    cfg = synthetic_config(synthetic_region, layers={"distance_cap_m": cap_m})
    ds, _ = build_stack(stack_spec(cfg))
    assert ds["features"].data.chunksize[-1] == 32  # 3 × 3 blocks
    ds = ds.compute()
    whole = synthetic_stack[0]
    for band in DISTANCES:
        got = ds["features"].sel(band=band).values
        want = whole["features"].sel(band=band).values
        np.testing.assert_array_equal(got, np.minimum(want, np.float32(cap_m)), err_msg=band)
    others = [b for b in whole.band.values if b not in DISTANCES]
    np.testing.assert_array_equal(ds["features"].sel(band=others).values, whole["features"].sel(band=others).values)
    for var in ("label", "valid", "eco", "zone"):
        np.testing.assert_array_equal(ds[var].values, whole[var].values)
    assert ds.attrs["distance_cap_m"] == cap_m


@pytest.fixture(scope="module")
def demo(demo_dir):
    grid = grid_from_raster(demo_dir / "forest" / "fcc12345.tif")
    return grid, demo_dir


@pytest.mark.parametrize("layer,all_touched", [("roads_PROJ.shp", True), ("ctry_PROJ.shp", False)])
def test_blockwise_burn_is_the_whole_grid_burn_on_the_demo(demo, layer, all_touched):
    grid, folder = demo
    gdf = read_vector(folder / layer, grid, layer)
    grown = grown_grid(grid, 10_000)
    np.testing.assert_array_equal(burn_blocks(gdf.geometry, grown, all_touched=all_touched).compute(),
                                  burn(list(gdf.geometry), grown, all_touched=all_touched))


def test_capped_distances_on_the_demo_are_exact_below_the_cap(demo):
    """Roads and the forest edge of 2010 on the 3340 × 2958 grid, cap 3 km (100 px of overlap)."""
    import rasterio

    grid, folder = demo
    cap = 3000.0
    roads = burn(list(read_vector(folder / "roads_PROJ.shp", grid, "roads").geometry), grid)
    whole = distance_to(roads, grid.resolution_m)
    got = capped_distance(da.from_array(roads, chunks=1024), grid.resolution_m, cap).compute()
    np.testing.assert_array_equal(got, np.minimum(whole, np.float32(cap)))
    assert (whole > cap).mean() > 0.1  # the cap matters on a fair share of the grid
    with rasterio.open(folder / "forest" / "fcc12345.tif") as src:
        forest = np.isin(src.read(1), [3, 4, 5])
    whole = distance_to_edge(forest, grid.resolution_m)
    got = capped_distance(da.from_array(forest, chunks=1024), grid.resolution_m, 900.0, of_unset=True,
                          beyond=1).compute()
    np.testing.assert_array_equal(got, np.minimum(whole, np.float32(900.0)))


def test_the_stack_written_region_by_region_is_the_stack(synthetic_region, synthetic_stack, monkeypatch, tmp_path):
    from tiles.store import open_store, write_stack

    for module in (tiles.grid, tiles.stack, tiles.blockwise):
        monkeypatch.setattr(module, "CHUNK_PX", 32)
    ds, _ = build_stack(stack_spec(synthetic_config(synthetic_region)))
    write_stack(ds, tmp_path / "stack.zarr", progress=False, region_chunks=2)  # regions of 2 × 2, 2 × 1, 1 × 1 chunks
    back = open_store(tmp_path / "stack.zarr", "layer stack")
    assert back["features"].data.chunksize[-2:] == (32, 32)
    for var in ("features", "label", "valid", "eco", "zone"):
        np.testing.assert_array_equal(back[var].values, synthetic_stack[0][var].values)
    assert back.rio.transform() == synthetic_stack[0].rio.transform() and back.rio.crs == synthetic_stack[0].rio.crs
    assert list(back.band.values) == list(synthetic_stack[0].band.values)


def test_the_chip_store_written_in_small_squares_is_the_chip_store(synthetic_chips, synthetic_stack, monkeypatch,
                                                                    tmp_path):
    import xarray as xr

    import tiles.chip_store
    from tiles import write_chip_store

    monkeypatch.setattr(tiles.chip_store, "CHIP_TILE_PX", 16)  # squares smaller than a chip: one per origin
    stats = write_chip_store(synthetic_stack[0], "train", synthetic_chips.index, tmp_path / "chips.zarr", 32)
    a, b = xr.open_zarr(tmp_path / "chips.zarr"), xr.open_zarr(synthetic_chips.store)
    assert a.sizes["chip"] == b.sizes["chip"] > 3
    for var in ("image", "label", "valid", "eco", "zone", "split"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert list(a.band.values) == list(b.band.values)
    for band, s in synthetic_chips.stats.items():
        assert stats[band]["mean"] == pytest.approx(s["mean"], rel=1e-12)
        assert stats[band]["std"] == pytest.approx(s["std"], rel=1e-9)
