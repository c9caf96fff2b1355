"""`geo-risk tile` reuses tiles/ when the tiling settings and input files are unchanged (geo_risk.tiling.tiling_hash,
recorded in the stores' attrs), and rebuilds it when any of them changed or with --force."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import xarray as xr

from geo_risk.tiling import HASH_ATTR, run_tile, tiling_hash
from tests.conftest import synthetic_config


@pytest.fixture
def region(synthetic_region, tmp_path):
    """A private copy of the synthetic region (its inputs get touched here)."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_region.parent, data)
    return data / synthetic_region.name


def mtimes(tiles):
    return {p.relative_to(tiles): p.stat().st_mtime_ns for p in sorted(tiles.rglob("*")) if p.is_file()}


def test_unchanged_config_reuses_the_tiles_without_writing(region, tmp_path, caplog):
    cfg = synthetic_config(region, tmp_path / "run")
    first = run_tile(cfg)
    tiles = tmp_path / "run" / "tiles"
    before = mtimes(tiles)
    key = tiling_hash(cfg)
    assert xr.open_zarr(first.stack).attrs[HASH_ATTR] == key == xr.open_zarr(first.chips).attrs[HASH_ATTR]
    caplog.set_level("INFO", logger="geo_risk.tiling")
    again = run_tile(synthetic_config(region, tmp_path / "run", train={"epochs": 3}))  # not a tiling setting
    assert "reusing tiles/ (config unchanged)" in caplog.text
    assert again.reused and not first.reused
    assert mtimes(tiles) == before
    assert (again.num_train, again.num_val, again.num_buffer, again.bands) == (
        first.num_train, first.num_val, first.num_buffer, first.bands)


@pytest.mark.parametrize("change", ["chips.size_px", "touched input", "force", "dask only"])
def test_a_changed_setting_or_input_rebuilds(change, region, tmp_path, caplog):
    base = {"chips": {"buffer_px": 0, "stride_px": 48}}  # so that 48 px chips on 96 px leave train chips
    cfg = synthetic_config(region, tmp_path / "run", **base)
    first = run_tile(cfg)
    key0 = tiling_hash(cfg)
    stack_mtime = (first.stack / ".zattrs").stat().st_mtime_ns
    force = False
    if change == "chips.size_px":
        cfg = synthetic_config(region, tmp_path / "run", chips={"buffer_px": 0, "stride_px": 48, "size_px": 48})
    elif change == "touched input":
        dem = region.parent / "dem.tif"
        st = dem.stat()
        os.utime(dem, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes, newer
    elif change == "force":
        force = True
    else:
        cfg = synthetic_config(region, tmp_path / "run", dask={"scheduler": "synchronous"}, **base)
    assert (tiling_hash(cfg) == key0) == (
        change in ("force", "dask only"))
    caplog.set_level("INFO", logger="geo_risk.tiling")
    again = run_tile(cfg, force=force)
    if change == "dask only":  # every scheduler gives the same tiles: nothing to redo
        assert again.reused and (first.stack / ".zattrs").stat().st_mtime_ns == stack_mtime
        return
    assert not again.reused
    assert "rebuilding tiles/" in caplog.text and "reusing" not in caplog.text
    assert (first.stack / ".zattrs").stat().st_mtime_ns != stack_mtime
    chips = xr.open_zarr(again.chips)
    assert chips.attrs[HASH_ATTR] == tiling_hash(cfg)
    assert chips.attrs["chip_size_px"] == (48 if change == "chips.size_px" else 32)


def test_a_store_without_the_hash_is_rebuilt(region, tmp_path):
    """Tiles written before the hash existed (or edited by hand) are not trusted."""
    import zarr

    cfg = synthetic_config(region, tmp_path / "run")
    first = run_tile(cfg)
    group = zarr.open_group(str(first.chips), mode="r+")
    del group.attrs[HASH_ATTR]
    zarr.consolidate_metadata(str(first.chips))
    assert not run_tile(cfg).reused


def test_cli_tile_twice_reuses_and_force_rebuilds(region, tmp_path):
    run = tmp_path / "run"

    def tile(*extra):
        return subprocess.run([sys.executable, "-m", "geo_risk", "tile", str(region), "--out", str(run), *extra],
                              capture_output=True, text=True, timeout=600)

    assert tile().returncode == 0
    before = mtimes(run / "tiles")
    second = tile()
    assert second.returncode == 0 and "reusing tiles/ (config unchanged)" in second.stderr
    assert mtimes(run / "tiles") == before
    third = tile("--force")
    assert third.returncode == 0 and "rebuilding tiles/ (--force)" in third.stderr
    assert mtimes(run / "tiles") != before
