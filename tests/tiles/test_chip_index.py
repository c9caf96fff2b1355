"""The chip index (tiles.store.chip_index) on the synthetic region: positive-aware sampling with its recorded
weight, the zones present in each chip, the blocked test split, and a split that leaves a set empty.

Synthetic layout (tests/data/synthetic/data.py): 96 × 96 px, chips of 32 px every 16 px (starts 0, 16, 32,
48, 64); zones West (columns < 32), Centre (32–63), East (≥ 64); forest on columns ≥ 8 of rows < 90 (the
outline); the train period's loss (code 2) on the corridor flanks, columns 36–38, 42–44, 72–74, 78–80.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.conftest import synthetic_config
from tiles import chip_index, write_chip_store
from tiles.blockwise import window_zones
from tiles.chips import blocked_split, keep_positive_chips
from tiles.errors import ChipLayoutError
from tiles.store import check_split

SIZE, STRIDE, BLOCK, BUFFER = 32, 16, 48, 16
WEST, CENTRE, EAST = 1, 2, 3


@pytest.fixture(scope="module")
def stack(synthetic_stack):
    return synthetic_stack[0]


def index_of(stack, **kw):
    args = dict(period="train", size=SIZE, stride=STRIDE, min_valid_fraction=0.05, block_size_px=BLOCK,
                val_fraction=0.2, buffer_px=BUFFER, seed=0)
    return chip_index(stack, **(args | kw))


def brute_zones(stack, rows, cols, size):
    s = stack.sel(period="train")
    valid, zone = s["valid"].values.astype(bool), s["zone"].values
    return [sorted(int(z) for z in np.unique(zone[r:r + size, c:c + size][valid[r:r + size, c:c + size]]) if z > 0)
            for r, c in zip(rows, cols)]


# --- zones present ------------------------------------------------------------------------------

def test_zones_present_by_hand(stack):
    index = index_of(stack)
    by_col = {0: [WEST], 16: [WEST, CENTRE], 32: [CENTRE], 48: [CENTRE, EAST], 64: [EAST]}
    for c, zones in zip(index.col_px, index.zones):
        assert list(zones) == by_col[c], c


def test_zones_present_match_the_stack_off_the_stride_lattice(stack):
    """Stride 24: starts 0, 24, 48 and 64 (flush with the edge, off the lattice): both paths of window_zones."""
    index = index_of(stack, stride=24)
    assert 64 in set(index.col_px) and 64 % 24  # some windows are off the lattice
    assert [list(z) for z in index.zones] == brute_zones(stack, index.row_px, index.col_px, SIZE)


def test_window_zones_against_brute_force_on_random_layers():
    import dask.array as da

    rng = np.random.default_rng(4)
    zone = rng.integers(0, 6, (150, 130)).astype("int16")
    zone[:60, :60] = 2  # a big zone: some windows hold one zone only
    mask = rng.random((150, 130)) < 0.3
    mask[100:, :] = False  # and some windows no valid pixel at all
    rows, cols = np.array([0, 0, 20, 40, 100, 118, 37]), np.array([0, 98, 20, 60, 10, 98, 51])
    got = window_zones(da.from_array(zone, chunks=64), da.from_array(mask, chunks=64), rows, cols, 32, 20, 6)
    want = [sorted(int(z) for z in np.unique(zone[r:r + 32, c:c + 32][mask[r:r + 32, c:c + 32]]) if z > 0)
            for r, c in zip(rows, cols)]
    assert got == want
    assert [] in got and [2] in got


# --- positive-aware sampling --------------------------------------------------------------------

def test_keep_positive_chips_keeps_every_positive_and_the_share_of_negatives():
    positive = np.random.default_rng(1).random(20_000) < 0.1
    keep, weight = keep_positive_chips(positive, 0.25, seed=7)
    assert keep[positive].all()
    kept_neg = keep[~positive].mean()
    n = (~positive).sum()
    assert abs(kept_neg - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    assert np.array_equal(weight, np.where(positive[keep], 1.0, 4.0).astype(np.float32))
    # the re-weighted sample counts as many negative chips as the population, within sampling error
    assert abs(weight[~positive[keep]].sum() / n - 1) < 4 * np.sqrt(0.75 / 0.25 / n)
    again, _ = keep_positive_chips(positive, 0.25, seed=7)
    other, _ = keep_positive_chips(positive, 0.25, seed=8)
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)
    everything, w1 = keep_positive_chips(positive, 1.0, seed=7)
    assert everything.all() and (w1 == 1).all()


def test_chip_index_keeps_chips_with_loss_and_weights_the_negatives_kept(stack):
    full = index_of(stack)
    assert (full.weight == 1).all()
    positive = {(r, c) for r, c, p in zip(full.row_px, full.col_px, full.positive_fraction) if p > 0}
    negative = {(r, c) for r, c, p in zip(full.row_px, full.col_px, full.positive_fraction) if p == 0}
    assert positive and negative  # column start 0 holds no loss
    sampled = index_of(stack, negative_keep=0.5)
    kept = set(zip(sampled.row_px, sampled.col_px))
    assert positive <= kept and kept - positive <= negative
    for r, c, p, w in zip(sampled.row_px, sampled.col_px, sampled.positive_fraction, sampled.weight):
        assert w == (1.0 if p > 0 else 2.0)
    s = sampled.attrs["sampling"]
    assert (s["positive"], s["negative"]) == (len(positive), len(negative))
    assert s["negative_kept"] == len(kept - positive)
    again = index_of(stack, negative_keep=0.5)
    assert set(zip(again.row_px, again.col_px)) == kept  # seeded


def test_the_chip_store_records_each_chips_weight_and_split(stack, tmp_path):
    index = index_of(stack, negative_keep=0.5, val_fraction=0.2, buffer_px=0)
    write_chip_store(stack, "train", index, tmp_path / "chips.zarr", SIZE)
    chips = xr.open_zarr(tmp_path / "chips.zarr", consolidated=True)
    stored = index[index.split != "buffer"]
    assert np.array_equal(chips["weight"].values, stored.weight.to_numpy(np.float32))
    assert list(chips["split"].values.astype(str)) == list(stored.split)
    assert set(np.unique(chips["weight"].values)) == {1.0, 2.0}


# --- the blocked test split ---------------------------------------------------------------------

def test_blocked_split_test_blocks_after_val_with_the_buffer():
    rows, cols = np.meshgrid(np.arange(0, 512, 16), np.arange(0, 512, 16), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    no_test = blocked_split(rows, cols, 32, 128, 0.2, 16, seed=2)
    split = blocked_split(rows, cols, 32, 128, 0.2, 16, seed=2, test_fraction=0.2)
    n = len(rows)
    assert (split == "test").sum() >= 0.2 * n and (split == "train").sum() > 0
    # validation is drawn first, from the same seeded order: adding a test set leaves its blocks alone
    block = (rows + 16) // 128 * 100 + (cols + 16) // 128
    assert set(block[split == "val"]) | set(block[(split == "buffer") & (no_test == "val")]) == set(
        block[no_test == "val"])
    assert not set(block[split == "test"]) & set(block[no_test == "val"])
    # every kept chip is buffer_px from every chip of another held-out set
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        ia, ib = np.flatnonzero(split == a), np.flatnonzero(split == b)
        dr = np.abs(rows[ia, None] - rows[None, ib]) - 32
        dc = np.abs(cols[ia, None] - cols[None, ib]) - 32
        assert np.hypot(np.maximum(dr, 0), np.maximum(dc, 0)).min() >= 16, (a, b)
        assert not ((dr < 0) & (dc < 0)).any()


def test_test_fraction_zero_is_the_split_of_before():
    rows, cols = np.meshgrid(np.arange(0, 400, 20), np.arange(0, 400, 20), indexing="ij")
    a = blocked_split(rows.ravel(), cols.ravel(), 40, 100, 0.25, 10, seed=5)
    b = blocked_split(rows.ravel(), cols.ravel(), 40, 100, 0.25, 10, seed=5, test_fraction=0.0)
    assert np.array_equal(a, b) and "test" not in set(a)


def test_synthetic_region_with_a_test_split(stack):
    index = index_of(stack, block_size_px=32, buffer_px=0, test_fraction=0.2, val_fraction=0.2)
    counts = check_split(index, 0.2)
    assert counts["test"] > 0 and counts["val"] > 0 and counts["train"] > 0


def test_a_split_that_leaves_the_test_set_empty_is_a_clear_error(stack):
    # blocks of 48 px: validation takes one block and the 16 px buffer every chip near it; the test set
    # then finds no block that leaves train a chip
    index = index_of(stack, test_fraction=0.5, val_fraction=0.45)
    with pytest.raises(ChipLayoutError) as e:
        check_split(index, 0.5)
    msg = str(e.value)
    assert "blocked split left" in msg and ("no test chip" in msg or "no train chip" in msg)
    assert "chips.block_size_px" in msg


def test_run_tile_refuses_an_empty_test_set_and_writes_nothing(synthetic_region, tmp_path):
    from geo_risk.tiling import run_tile

    cfg = synthetic_config(synthetic_region, tmp_path / "run",
                           chips={"test_fraction": 0.5, "val_fraction": 0.45})
    with pytest.raises(ChipLayoutError, match="blocked split left"):
        run_tile(cfg)
    assert not (tmp_path / "run" / "tiles").exists()


def test_val_and_test_fractions_must_leave_train_chips():
    from pydantic import ValidationError

    from geo_risk.config import ChipsConfig

    with pytest.raises(ValidationError, match="leave no chip to train on"):
        ChipsConfig(val_fraction=0.6, test_fraction=0.4)


# --- normalisation statistics in one pass ---------------------------------------------------------

def test_band_moments_merged_batch_by_batch_are_band_stats():
    from tiles.chips import band_stats
    from tiles.chip_store import BandMoments

    rng = np.random.default_rng(3)
    bands = ["altitude", "dist_roads_m", "constant"]
    img = rng.normal(100, 30, (23, 3, 16, 16))
    img[:, 1] = rng.exponential(2000, (23, 16, 16))
    img[:, 2] = 7.0
    valid = rng.random((23, 16, 16)) < 0.6
    valid[5] = False  # a chip without a valid pixel
    moments = BandMoments(bands)
    for i in range(23):  # each chip its own image, merged one by one
        moments.add(*moments.of_windows(img[i], valid[i], [0], [0], 16))
    got, want = moments.stats(), band_stats(img, valid, bands)
    for band in bands:
        assert got[band]["transform"] == want[band]["transform"]
        assert got[band]["mean"] == pytest.approx(want[band]["mean"], rel=1e-12)
        assert got[band]["std"] == pytest.approx(want[band]["std"], rel=1e-9)
    assert got["constant"]["std"] == 1.0 and want["dist_roads_m"]["transform"] == "log1p"
