import numpy as np
import pytest

from tiles.chips import band_stats, blocked_split, chip_windows, normalise, window_fractions, window_starts


@pytest.mark.parametrize(
    "length,size,stride,expected",
    [(10, 4, 4, [0, 4, 6]), (8, 4, 4, [0, 4]), (3, 4, 2, []), (4, 4, 1, [0]), (9, 4, 2, [0, 2, 4, 5])],
)
def test_window_starts(length, size, stride, expected):
    assert window_starts(length, size, stride) == expected


def test_chip_windows_cover_every_pixel():
    h, w, size = 37, 23, 8
    seen = np.zeros((h, w), bool)
    for r, c in chip_windows(h, w, size, 6):
        assert r + size <= h and c + size <= w
        seen[r:r + size, c:c + size] = True
    assert seen.all()


def test_window_fractions_match_brute_force():
    rng = np.random.default_rng(0)
    mask = rng.random((40, 50)) < 0.3
    rc = np.array(list(chip_windows(40, 50, 10, 7)))
    got = window_fractions(mask, rc[:, 0], rc[:, 1], 10)
    want = [mask[r:r + 10, c:c + 10].mean() for r, c in rc]
    np.testing.assert_allclose(got, want)


def _grid_chips(n=20, size=16, stride=8):
    rc = np.array(list(chip_windows(n * stride + size, n * stride + size, size, stride)))
    return rc[:, 0], rc[:, 1]


def test_blocked_split_keeps_buffer_between_train_and_val():
    rows, cols = _grid_chips()
    size, buffer = 16, 20
    split = blocked_split(rows, cols, size, 64, 0.25, buffer, seed=3)
    val, train = split == "val", split == "train"
    assert val.sum() >= 0.25 * len(rows) and train.sum() > 0
    for i in np.flatnonzero(train):
        dr = np.maximum(np.abs(rows[i] - rows[val]) - size, 0)
        dc = np.maximum(np.abs(cols[i] - cols[val]) - size, 0)
        assert np.hypot(dr, dc).min() >= buffer


def test_blocked_split_is_by_block_and_seeded():
    rows, cols = _grid_chips()
    a = blocked_split(rows, cols, 16, 64, 0.2, 0, seed=1)
    b = blocked_split(rows, cols, 16, 64, 0.2, 0, seed=1)
    assert (a == b).all()
    block = (rows + 8) // 64 * 1000 + (cols + 8) // 64
    for blk in np.unique(block[a == "val"]):
        assert (a[block == blk] == "val").all()  # a block is never split between train and val


def test_band_stats_and_normalise_use_valid_pixels_and_log_distances():
    rng = np.random.default_rng(1)
    img = np.stack([rng.normal(5, 2, (4, 8, 8)), rng.exponential(500, (4, 8, 8))], axis=1).astype(np.float32)
    valid = rng.random((4, 8, 8)) < 0.7
    img[:, 0][~valid] = 1e6  # invalid pixels must not move the statistics
    stats = band_stats(img, valid, ["altitude", "dist_roads_m"])
    assert stats["dist_roads_m"]["transform"] == "log1p"
    np.testing.assert_allclose(stats["altitude"]["mean"], img[:, 0][valid].mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["dist_roads_m"]["mean"], np.log1p(img[:, 1][valid]).mean(), rtol=1e-5)
    z = normalise(img, ["altitude", "dist_roads_m"], stats)
    np.testing.assert_allclose(z[:, 1][valid].mean(), 0, atol=1e-4)
    np.testing.assert_allclose(z[:, 1][valid].std(), 1, atol=1e-3)
    nan_img = img.copy()
    nan_img[0, 0, 0, 0] = np.nan
    assert np.isfinite(normalise(nan_img, ["altitude", "dist_roads_m"], stats)).all()
