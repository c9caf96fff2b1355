"""The chip store cut square by square (tiles.chip_store.write_chip_store): every chip written is its stack window
bit for bit and the statistics are those of the train chips computed directly (tiles.chips.band_stats),
whatever the squares — smaller than a chip, not aligned with the stride, or the whole grid — from a stack
in memory and from a stack read back from Zarr through dask (chunks of 32 px, so squares cross chunks).

Synthetic region (tests/data/synthetic/data.py): 96 × 96 px, chips of 32 px every 16 px, periods train and
forecast (their labels and past-loss bands differ, so a chip cut from the wrong period is caught).
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import tiles.chip_store
from tiles import open_store, write_chip_store, write_stack
from tiles.chips import band_stats
from tiles.chip_store import BandMoments, chip_tiles

SIZE = 32
LAYERS = {"image": "features", "label": "label", "valid": "valid", "eco": "eco", "zone": "zone"}


@pytest.fixture(scope="module")
def zarr_stack(synthetic_stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("chip-store") / "stack.zarr"
    write_stack(synthetic_stack[0].chunk({"y": 32, "x": 32}), path, progress=False)
    return open_store(path, "layer stack", chunks={"y": 32, "x": 32})


@pytest.mark.parametrize("tile_px", [16, 40, 1024])
@pytest.mark.parametrize("source", ["memory", "zarr"])
def test_chips_are_the_stack_windows_bit_for_bit_and_stats_the_direct_ones(
        source, tile_px, synthetic_stack, synthetic_chips, zarr_stack, monkeypatch, tmp_path):
    monkeypatch.setattr(tiles.chip_store, "CHIP_TILE_PX", tile_px)
    stack = synthetic_stack[0] if source == "memory" else zarr_stack
    if source == "zarr":
        assert stack["features"].chunks is not None and stack["features"].data.chunksize[-1] == 32
    index = synthetic_chips.index
    stats = write_chip_store(stack, "train", index, tmp_path / "chips.zarr", SIZE)

    train = synthetic_stack[0].sel(period="train")
    forecast = synthetic_stack[0].sel(period="forecast")
    assert not np.array_equal(train["label"].values, forecast["label"].values)
    stored = index[index.split != "buffer"].reset_index(drop=True)
    assert len(stored) > 4 and len(chip_tiles(stored.row_px.to_numpy(), stored.col_px.to_numpy(), tile_px)) > (
        1 if tile_px < 96 else 0)
    group = zarr.open_group(str(tmp_path / "chips.zarr"), mode="r")
    for name, var in LAYERS.items():
        got = group[name][:]
        want = np.stack([train[var].values[..., r:r + SIZE, c:c + SIZE]
                         for r, c in zip(stored.row_px, stored.col_px)])
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), name  # bitwise, NaN included
    assert list(group["split"][:].astype(str)) == list(stored.split)
    np.testing.assert_array_equal(group["weight"][:], stored.weight.to_numpy(np.float32))

    is_train = (stored.split == "train").to_numpy()
    wins = list(zip(stored.row_px[is_train], stored.col_px[is_train]))
    images = np.stack([train["features"].values[:, r:r + SIZE, c:c + SIZE] for r, c in wins])
    valid = np.stack([train["valid"].values[r:r + SIZE, c:c + SIZE] for r, c in wins])
    expected = band_stats(images, valid, [str(b) for b in stack.band.values])
    assert group.attrs["band_stats"] == stats and set(stats) == set(expected)
    for band, want in expected.items():
        assert stats[band]["transform"] == want["transform"]
        assert stats[band]["mean"] == pytest.approx(want["mean"], rel=1e-12, abs=1e-12)
        assert stats[band]["std"] == pytest.approx(want["std"], rel=1e-9)


def test_a_chip_of_the_fill_value_is_left_out_and_reads_back_as_it(synthetic_stack, synthetic_chips, tmp_path):
    write_chip_store(synthetic_stack[0], "train", synthetic_chips.index, tmp_path / "chips.zarr", SIZE)
    group = zarr.open_group(str(tmp_path / "chips.zarr"), mode="r")
    label = group["label"][:]
    empty = [i for i in range(len(label)) if not label[i].any()]
    assert empty and len(empty) < len(label)  # the synthetic loss misses some chips
    for i in range(len(label)):
        key = group["label"].metadata.encode_chunk_key((i, 0, 0))
        assert (tmp_path / "chips.zarr" / "label" / key).exists() == (i not in empty)
        assert (tmp_path / "chips.zarr" / "image" / group["image"].metadata.encode_chunk_key((i, 0, 0, 0))).exists()


def test_band_moments_of_overlapping_windows_are_those_of_the_cut_chips():
    rng = np.random.default_rng(5)
    bands = ["altitude", "dist_roads_m", "constant"]
    img = rng.normal(100, 30, (3, 70, 90))
    img[1] = rng.exponential(2000, (70, 90))
    img[2] = 7.0
    valid = rng.random((70, 90)) < 0.6
    rows = np.array([0, 0, 8, 8, 40, 50, 54])  # overlapping, repeated and edge windows
    cols = np.array([0, 8, 0, 8, 66, 3, 66])
    size = 16
    chips = np.stack([img[:, r:r + size, c:c + size] for r, c in zip(rows, cols)])
    masks = np.stack([valid[r:r + size, c:c + size] for r, c in zip(rows, cols)])
    a = BandMoments(bands)
    a.add(*a.of_windows(img, valid, rows, cols, size))
    want = band_stats(chips, masks, bands)
    assert a.n == masks.sum()
    for band in bands:
        got = a.stats()[band]
        assert got["mean"] == pytest.approx(want[band]["mean"], rel=1e-12)
        assert got["std"] == pytest.approx(want[band]["std"], rel=1e-9)
    empty = BandMoments(bands)
    empty.add(*empty.of_windows(img, np.zeros_like(valid), rows, cols, size))
    assert empty.n == 0 and empty.stats()["altitude"] == {"transform": "none", "mean": 0.0, "std": 1.0}


def test_chip_tiles_group_chips_by_the_square_holding_their_origin():
    rows = np.array([0, 0, 0, 64, 64, 128, 128, 128, 0])
    cols = np.array([0, 64, 128, 0, 128, 0, 64, 128, 192])
    parts = chip_tiles(rows, cols, 100)
    assert [list(p) for p in parts] == [[0, 1, 3], [2, 4, 8], [5, 6], [7]]
    assert sorted(np.concatenate(parts)) == list(range(len(rows)))
    for p in parts:
        assert len(set(rows[p] // 100)) == 1 and len(set(cols[p] // 100)) == 1
    assert chip_tiles(rows[:0], cols[:0], 100) == []
