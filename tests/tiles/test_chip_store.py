"""The chip store cut square by square (tiles.chip_store.write_chip_store): every chip written is its stack window
bit for bit and the statistics are those of the train chips computed directly (tiles.chips.band_stats),
whatever the squares — smaller than a chip, not aligned with the stride, or the whole grid — from a stack
in memory and from a stack read back from Zarr through dask (chunks of 32 px, so squares cross chunks).

Synthetic region (tests/data/synthetic/data.py): 96 × 96 px, chips of 32 px every 16 px, periods train and
forecast (their labels and past-loss bands differ, so a chip cut from the wrong period is caught).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import tiles.chip_store
from geo_risk_errors import ChipStoreError
from tiles import open_store, write_chip_store, write_stack
from tiles.chips import band_stats
from tiles.chip_shards import ShardedChipReader, chip_reader
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


def shard_files(folder: Path) -> list[str]:
    """The shard files under an array's folder (its zarr.json left out), as paths relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "zarr.json")


def shard_index(shard: Path, per_shard: int) -> np.ndarray:
    """The (offset, length) pairs of a Zarr v3 shard with its index at the end (the sharding codec's spec):
    little-endian uint64, 2⁶⁴ − 1 twice for a chunk left out, then the index's 4-byte CRC32C."""
    raw = shard.read_bytes()[-(16 * per_shard + 4):-4]
    return np.frombuffer(raw, dtype="<u8").reshape(per_shard, 2)


@pytest.fixture
def sharded_store(synthetic_stack, synthetic_chips, tmp_path, monkeypatch):
    """The synthetic chip store with 3 chips per shard: several shards, the last one partial."""
    monkeypatch.setattr(tiles.chip_store, "CHIPS_PER_SHARD", 3)
    path = tmp_path / "chips.zarr"
    write_chip_store(synthetic_stack[0], "train", synthetic_chips.index, path, SIZE)
    return path


def test_shards_hold_several_chips_and_a_chip_of_the_fill_value_is_left_out(sharded_store):
    group = zarr.open_group(str(sharded_store), mode="r")
    n = group["label"].shape[0]
    assert n % 3 and n > 6  # several shards, the last one partial
    for name in LAYERS:
        assert group[name].metadata.chunk_grid.chunk_shape[0] == 3 and group[name].chunks[0] == 1, name
        data = group[name][:]
        files = shard_files(sharded_store / name)
        stored = []  # chips with bytes in their shard
        for s in range(-(-n // 3)):
            key = group[name].metadata.encode_chunk_key((s, *(0,) * (data.ndim - 1)))
            if not (sharded_store / name / key).exists():
                continue
            pairs = shard_index(sharded_store / name / key, 3)
            stored += [s * 3 + k for k in range(3) if not (pairs[k] == np.iinfo(np.uint64).max).all()]
            assert (pairs[s * 3 + np.arange(3) >= n] == np.iinfo(np.uint64).max).all()  # beyond the array: none
        assert 1 < len(files) < n and len(files) == len({f.split("/")[1] for f in files}), name  # one per shard
        blank = [i for i in range(n) if (np.isnan(data[i]).all() if data.dtype.kind == "f" else not data[i].any())]
        assert stored == [i for i in range(n) if i not in blank], name
    label = group["label"][:]
    empty = [i for i in range(n) if not label[i].any()]
    assert empty and len(empty) < n  # the synthetic loss misses some chips: they read back as zeros


def test_the_shards_are_the_bytes_zarr_itself_writes(sharded_store, tmp_path):
    """The same chips written through zarr-python's own write path, into arrays of the same metadata, give the
    same files byte for byte: the hand-assembled shards are zarr's layout, not one zarr merely tolerates."""
    import shutil

    group = zarr.open_group(str(sharded_store), mode="r")
    twin = tmp_path / "twin.zarr"
    twin.mkdir()
    shutil.copy(sharded_store / "zarr.json", twin / "zarr.json")
    for name in LAYERS:
        (twin / name).mkdir()
        shutil.copy(sharded_store / name / "zarr.json", twin / name / "zarr.json")
        array = zarr.open_array(str(twin / name), mode="r+")
        array[:] = group[name][:]
        ours = shard_files(sharded_store / name)
        assert ours == shard_files(twin / name) and len(ours) > 2, name
        for key in ours:
            assert (sharded_store / name / key).read_bytes() == (twin / name / key).read_bytes(), (name, key)


@pytest.mark.parametrize("per_shard", [1, 3])
def test_chip_reader_reads_what_zarr_reads(per_shard, synthetic_stack, synthetic_chips, tmp_path, monkeypatch):
    """Every chip of every array, chips of the fill value and (one chip per shard) shards left out included, and
    again after the store is rewritten in place (the index kept for a shard is read again); an older store's
    arrays (one chunk per chip, no shards) are read by zarr."""
    monkeypatch.setattr(tiles.chip_store, "CHIPS_PER_SHARD", per_shard)
    path = tmp_path / "chips.zarr"
    write_chip_store(synthetic_stack[0], "train", synthetic_chips.index, path, SIZE)
    group = zarr.open_group(str(path), mode="r")
    readers = {name: chip_reader(group[name]) for name in LAYERS}
    assert all(isinstance(r, ShardedChipReader) for r in readers.values())
    if per_shard == 1:  # a chip without loss is a label shard of the fill value only: no file
        assert len(shard_files(path / "label")) < group["label"].shape[0]
    for period in ("train", "forecast"):
        if period == "forecast":  # the same chips from the other period, renamed into place over the first
            write_chip_store(synthetic_stack[0], period, synthetic_chips.index, path, SIZE)
            group = zarr.open_group(str(path), mode="r")
        for name in LAYERS:
            want = group[name][:]
            for j in range(len(want)):
                got = readers[name](j)
                assert got.dtype == want.dtype and got.shape == want[j].shape and got.tobytes() == want[j].tobytes(), (
                    period, name, j)
    train = synthetic_stack[0].sel(period="train")["label"].values
    forecast = synthetic_stack[0].sel(period="forecast")["label"].values
    assert not np.array_equal(train, forecast)  # the rewrite changed the labels the readers then read
    older = tmp_path / "older.zarr"  # the store as written before it was sharded: zarr v2, one chunk per chip
    zarr.save_group(str(older), zarr_format=2, label=group["label"][:])
    old = zarr.open_group(str(older), mode="r")["label"]
    assert not isinstance(chip_reader(old), ShardedChipReader)
    np.testing.assert_array_equal(chip_reader(old)(2), group["label"][2])


def test_the_dataset_reads_a_chip_without_its_neighbours_bytes(sharded_store, monkeypatch):
    """ChipDataset[i] reads, of each array's shard, chip i's own bytes, and the shard's index the first time only:
    nothing of the shard's other chips."""
    import os

    from geo_risk.data import ChipDataset

    ds = ChipDataset(sharded_store, "train")
    group = zarr.open_group(str(sharded_store), mode="r")
    reads: list[tuple[str, int]] = []
    pread = os.pread

    def logged(fd, n, offset):
        out = pread(fd, n, offset)
        reads.append((os.readlink(f"/proc/self/fd/{fd}"), len(out)))
        return out

    monkeypatch.setattr(os, "pread", logged)
    seen: set[str] = set()
    for i in range(min(len(ds), 5)):
        for again in (False, True):
            reads.clear()
            ds[i]
            j = int(ds.indices[i])
            for name in LAYERS:
                key = group[name].metadata.encode_chunk_key((j // 3, *(0,) * (group[name].ndim - 1)))
                offset, length = shard_index(sharded_store / name / key, 3)[j % 3]
                chip = 0 if length == np.iinfo(np.uint64).max else int(length)
                first = str(sharded_store / name / key) not in seen and (sharded_store / name / key).exists()
                got = sum(n for f, n in reads if f == str(sharded_store / name / key))
                assert got == chip + (16 * 3 + 4 if first else 0), (name, i, again, got, chip)
                seen.add(str(sharded_store / name / key))
            assert reads, i
        assert {Path(f).relative_to(sharded_store).parts[0] for f, _ in reads} <= set(LAYERS)


def test_a_damaged_shard_is_a_chip_store_error_naming_it(sharded_store):
    group = zarr.open_group(str(sharded_store), mode="r")
    key = group["image"].metadata.encode_chunk_key((0, 0, 0, 0))
    shard = sharded_store / "image" / key
    data = shard.read_bytes()
    shard.write_bytes(data[:-30] + bytes([data[-30] ^ 1]) + data[-29:])  # one bit of the index (52 bytes) flipped
    with pytest.raises(ChipStoreError, match=rf"chip store shard {shard} is damaged.*geo-risk tile"):
        chip_reader(group["image"])(0)
    shard.write_bytes(data[:100] + data[-52:])  # the chips' bytes cut short, the index kept
    with pytest.raises(ChipStoreError, match=rf"chip store shard {shard} is damaged.*geo-risk tile"):
        chip_reader(group["image"])(1)


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
