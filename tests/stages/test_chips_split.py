"""tiles.chip_index on the synthetic stack: windows, valid fractions, the blocked split, GeoParquet.

Region config: chips of 32 px every 16 px on 96 × 96 px → starts 0, 16, 32, 48, 64 on each axis,
25 windows; blocks of 48 px, 20 % validation, a 16 px buffer, seed 0.
"""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.data.synthetic import data as region
from tiles import chip_index

SIZE, BUFFER, BLOCK = 32, 16, 48


@pytest.fixture(scope="module")
def index(synthetic_chips):
    return synthetic_chips.index


def chip(index, r, c):
    row = index[(index.row_px == r) & (index.col_px == c)]
    assert len(row) == 1, (r, c)
    return row.iloc[0]


def test_every_window_is_kept_and_split(index):
    starts = [0, 16, 32, 48, 64]
    assert sorted(zip(index.row_px, index.col_px)) == [(r, c) for r in starts for c in starts]
    # The chips' centres fall in blocks 0 (starts 0, 16) and 1 (starts 32, 48, 64) of 48 px on each
    # axis: blocks of 4, 6, 6 and 9 chips. Seed 0 draws block (row 1, col 0) first: its 6 chips
    # reach 20 % of 25, so they are the validation set. Train chips must stay 16 px from every
    # validation window (rows 32–95, columns 0–47): only column start 64 does (a 16 px gap), 5
    # chips; the other 14 are dropped as buffer.
    assert index.split.value_counts().to_dict() == {"buffer": 14, "val": 6, "train": 5}
    val = index[index.split == "val"]
    assert set(zip(val.row_px, val.col_px)) == {(r, c) for r in (32, 48, 64) for c in (0, 16)}
    assert set(index[index.split == "train"].col_px) == {64}


def test_val_windows_keep_buffer_px_from_every_train_window(index):
    train = np.asarray(index[index.split == "train"].geometry.values, dtype=object)
    val = np.asarray(index[index.split == "val"].geometry.values, dtype=object)
    gap_px = shapely.distance(train[:, None], val[None, :]) / region.RES
    assert gap_px.min() >= BUFFER
    # and the buffer holds only chips that were too close to a validation window
    buffer = np.asarray(index[index.split == "buffer"].geometry.values, dtype=object)
    assert (shapely.distance(buffer[:, None], val[None, :]).min(axis=1) / region.RES < BUFFER).all()


def test_validation_takes_whole_blocks(index):
    block = ((index.row_px + SIZE // 2) // BLOCK) * 10 + (index.col_px + SIZE // 2) // BLOCK
    val_blocks = set(block[index.split == "val"])
    assert ((index.split == "val") == block.isin(val_blocks)).all()


@pytest.mark.parametrize("r,c,valid_fraction,positive_fraction", [
    (0, 0, 24 * 32 / 1024, 0.0),  # columns 0–7 non-forest
    (16, 32, 29 * 32 / 1024, 6 * 12 / 1024),  # corridor 39–41 out; code 2 on rows 24–35
    (0, 32, 29 * 32 / 1024, 6 * 20 / 1024),  # code 2 on rows 0–11 and 24–31 of the flanks
    (0, 64, 29 * 32 / 1024, 6 * 20 / 1024),  # corridor 75–77 out; the DEM hole is filled, not out
    (64, 64, 29 * 26 / 1024, 6 * 12 / 1024),  # rows 90–95 outside the outline; code 2 on rows 72–83
])
def test_valid_and_positive_fractions_by_hand(index, r, c, valid_fraction, positive_fraction):
    row = chip(index, r, c)
    assert row.valid_fraction == pytest.approx(valid_fraction)
    assert row.positive_fraction == pytest.approx(positive_fraction)


def test_fractions_match_the_stack_and_the_threshold_filters(synthetic_stack, index):
    stack = synthetic_stack[0].sel(period="train")
    valid = stack["valid"].values
    label = stack["label"].values & valid
    for r, c, vf, pf in zip(index.row_px, index.col_px, index.valid_fraction, index.positive_fraction):
        assert vf == pytest.approx(valid[r:r + SIZE, c:c + SIZE].mean())
        assert pf == pytest.approx(label[r:r + SIZE, c:c + SIZE].mean())
    strict = chip_index(synthetic_stack[0], "train", SIZE, 16, 0.9, BLOCK, 0.2, BUFFER, 0)
    assert sorted(zip(strict.row_px, strict.col_px)) == sorted(
        (r, c) for r, c, vf in zip(index.row_px, index.col_px, index.valid_fraction) if vf >= 0.9)
    # ≥ 0.9 (29 of 32 columns valid): row starts 0–48 × column starts 16–64
    assert len(strict) == 16


def test_footprints_and_crs(index):
    assert index.crs.to_epsg() == 32620
    for r, c, geom in zip(index.row_px, index.col_px, index.geometry):
        x0, y1 = region.X0 + c * region.RES, region.Y0 - r * region.RES
        assert geom.equals(shapely.box(x0, y1 - SIZE * region.RES, x0 + SIZE * region.RES, y1))


def test_index_is_written_as_geoparquet_beside_the_chips(synthetic_chips, index):
    on_disk = gpd.read_parquet(synthetic_chips.store / "index.parquet")
    assert on_disk.crs == index.crs
    kept = index[index.split != "buffer"].reset_index(drop=True)  # the store holds train, val and test
    assert list(on_disk.columns) == ["row_px", "col_px", "split", "valid_fraction", "positive_fraction", "weight",
                                     "zones", "geometry"]
    assert on_disk.drop(columns=["geometry", "zones"]).equals(kept.drop(columns=["geometry", "zones"]))
    assert [list(z) for z in on_disk.zones] == [list(z) for z in kept.zones]
    assert on_disk.geometry.geom_equals(kept.geometry).all()
