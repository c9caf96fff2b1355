"""tiles.write_chip_store + geo_risk.data.ChipDataset on the synthetic chips (5 train, 6 val of 32 px)."""

import numpy as np
import pytest
import torch

from geo_risk.data import ChipDataset, d4
from tiles.chips import band_stats

SIZE = 32
BANDS = ["forest", "past_loss", "dist_edge_m", "dist_past_loss_m", "dist_roads_m", "dist_rivers_m",
         "dist_towns_m", "altitude", "eco_weight"]


def windows(synthetic_chips, split):
    kept = synthetic_chips.index[synthetic_chips.index.split != "buffer"].reset_index(drop=True)
    sel = kept[kept.split == split]
    return list(zip(sel.row_px, sel.col_px))


def cut(arr, wins):
    return np.stack([arr[..., r:r + SIZE, c:c + SIZE] for r, c in wins])


@pytest.fixture(scope="module")
def train_stack(synthetic_stack):
    return synthetic_stack[0].sel(period="train")


@pytest.mark.parametrize("split,n", [("train", 5), ("val", 6)])
def test_samples_shapes_dtypes_and_contents(synthetic_chips, train_stack, split, n):
    ds = ChipDataset(synthetic_chips.store, split)
    assert len(ds) == n and ds.bands == BANDS and ds.num_zones == 4
    wins = windows(synthetic_chips, split)
    for i, (r, c) in enumerate(wins):
        s = ds[i]
        assert s.image.shape == (9, SIZE, SIZE) and s.image.dtype == torch.float32
        for t in (s.label, s.valid, s.eco):
            assert t.shape == (1, SIZE, SIZE) and t.dtype == torch.float32
        assert s.zone.shape == (1, SIZE, SIZE) and s.zone.dtype == torch.int64
        win = (..., slice(r, r + SIZE), slice(c, c + SIZE))
        np.testing.assert_array_equal(s.label[0].numpy(), train_stack["label"].values[win])
        np.testing.assert_array_equal(s.valid[0].numpy(), train_stack["valid"].values[win])
        np.testing.assert_array_equal(s.zone[0].numpy(), train_stack["zone"].values[win])
        np.testing.assert_allclose(s.eco[0].numpy(), train_stack["eco"].values[win])
        assert torch.isfinite(s.image).all()


def test_statistics_come_from_train_chips_only(synthetic_chips, train_stack):
    feats, valid = train_stack["features"].values, train_stack["valid"].values
    train, val = windows(synthetic_chips, "train"), windows(synthetic_chips, "val")
    expected = band_stats(cut(feats, train), cut(valid, train), BANDS)
    with_val = band_stats(cut(feats, train + val), cut(valid, train + val), BANDS)
    stored = ChipDataset(synthetic_chips.store, "train").stats
    assert synthetic_chips.stats == stored
    for b in BANDS:
        assert stored[b]["transform"] == ("log1p" if b.endswith("_m") else "none")
        assert stored[b]["mean"] == pytest.approx(expected[b]["mean"], rel=1e-9)
        assert stored[b]["std"] == pytest.approx(expected[b]["std"], rel=1e-9)
    # the train chips sit on column 64–95, the validation chips on 0–47: the statistics differ
    assert abs(with_val["dist_towns_m"]["mean"] - stored["dist_towns_m"]["mean"]) > 0.05
    # forest is 1 and past loss 0 on every valid pixel: a constant band gets std 1 (not 0)
    assert stored["forest"] == {"transform": "none", "mean": 1.0, "std": 1.0}
    assert stored["past_loss"] == {"transform": "none", "mean": 0.0, "std": 1.0}


def test_normalised_train_pixels_have_zero_mean_unit_std(synthetic_chips):
    ds = ChipDataset(synthetic_chips.store, "train")
    samples = [ds[i] for i in range(len(ds))]
    valid = torch.cat([s.valid[0].bool().flatten() for s in samples])
    for k, b in enumerate(BANDS):
        v = torch.cat([s.image[k].flatten() for s in samples])[valid].double()
        assert float(v.mean()) == pytest.approx(0.0, abs=1e-5), b
        if b in ("forest", "past_loss"):  # constant on valid (forest) pixels: 1 and 0
            assert float(v.abs().max()) == 0.0
        else:
            assert float(v.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5), b


def test_d4_augmentation_keeps_image_label_valid_eco_zone_aligned(synthetic_chips):
    plain = ChipDataset(synthetic_chips.store, "train")
    augmented = ChipDataset(synthetic_chips.store, "train", augment=True, seed=3)
    used = set()
    for _ in range(3):  # three passes: the generator moves on
        for i in range(len(plain)):
            p, a = plain[i], augmented[i]
            arrays = [t.numpy() for t in p]
            matches = [(k, f) for k in range(4) for f in (False, True)
                       if np.array_equal(d4([arrays[0]], k, f)[0], a.image.numpy())]
            assert matches, "the augmented image is no dihedral transform of the chip"
            k, f = matches[0]
            used.add(d4([np.arange(4).reshape(2, 2)], k, f)[0].tobytes())
            for name, t_plain, t_aug in zip(("label", "valid", "eco", "zone"), arrays[1:], list(a)[1:]):
                np.testing.assert_array_equal(d4([t_plain], k, f)[0], t_aug.numpy(), err_msg=name)
    assert len(used) >= 4  # augmentation really moves the chips


def test_a_chips_sampling_weight_scales_its_valid_mask(synthetic_chips, train_stack, tmp_path):
    import shutil

    import zarr

    store = tmp_path / "chips.zarr"
    shutil.copytree(synthetic_chips.store, store)
    group = zarr.open_group(str(store), mode="r+")
    ds0 = ChipDataset(store, "train")
    j = int(ds0.indices[1])
    weight = np.asarray(group["weight"][:], dtype=np.float32)
    assert (weight == 1).all()  # no negative subsampling in the synthetic store
    weight[j] = 2.5  # a kept pure-negative chip at chips.negative_keep = 0.4
    group["weight"][:] = weight
    ds = ChipDataset(store, "train")
    (r, c) = windows(synthetic_chips, "train")[1]
    mask = train_stack["valid"].values[..., r:r + SIZE, c:c + SIZE].astype(np.float32)
    np.testing.assert_array_equal(ds[1].valid[0].numpy(), 2.5 * mask)
    np.testing.assert_array_equal(ds[0].valid[0].numpy(), ds0[0].valid[0].numpy())
