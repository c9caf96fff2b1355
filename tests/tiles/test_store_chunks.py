"""The stack's Zarr chunks are smaller than its dask chunks (tiles.store.STORE_CHUNK_PX), so that a chip reads
little more than its own pixels; written region by region, read back with either chunking, it is the stack."""

from __future__ import annotations

import numpy as np
import zarr

import tiles.blockwise
import tiles.grid
import tiles.stack
import tiles.store
from geo_risk.tiling import stack_spec
from tests.conftest import synthetic_config
from tiles import build_stack
from tiles.store import open_store, write_stack


def test_small_zarr_chunks_under_dask_chunks_region_by_region(synthetic_region, synthetic_stack, monkeypatch,
                                                              tmp_path):
    for module in (tiles.grid, tiles.stack, tiles.blockwise):
        monkeypatch.setattr(module, "CHUNK_PX", 64)
    monkeypatch.setattr(tiles.store, "STORE_CHUNK_PX", 32)
    ds, _ = build_stack(stack_spec(synthetic_config(synthetic_region)))
    write_stack(ds, tmp_path / "stack.zarr", progress=False, region_chunks=1)  # 2 × 2 regions of 64 px chunks
    group = zarr.open_group(str(tmp_path / "stack.zarr"), mode="r")
    assert group["features"].chunks[-2:] == (32, 32) and group["zone"].chunks == (32, 32)
    dask_chunks = open_store(tmp_path / "stack.zarr", "layer stack")
    zarr_chunks = open_store(tmp_path / "stack.zarr", "layer stack", chunks={})
    assert dask_chunks["features"].data.chunksize[-2:] == (64, 64)
    assert zarr_chunks["features"].data.chunksize[-2:] == (32, 32)
    want = synthetic_stack[0]
    for back in (dask_chunks, zarr_chunks):
        for var in ("features", "label", "valid", "eco", "zone"):
            np.testing.assert_array_equal(back[var].values, want[var].values)
        assert back.rio.crs == want.rio.crs and back.rio.transform() == want.rio.transform()
