"""A torch Dataset over the chip store written by :mod:`tiles.store`."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from geo_risk_errors import ChipStoreError
from tiles.chip_shards import chip_reader
from tiles.chips import normalise
from tiles.store import check_store_format


class Sample(NamedTuple):
    """One chip: normalised image (C,H,W) and aligned label, valid, eco (1,H,W) float, zone (1,H,W) int64.
    ``valid`` holds the chip's sampling weight on its valid pixels (1 unless negatives were subsampled)."""

    image: torch.Tensor
    label: torch.Tensor
    valid: torch.Tensor
    eco: torch.Tensor
    zone: torch.Tensor


def d4(arrays: list[np.ndarray], k: int, flip: bool) -> list[np.ndarray]:
    """Apply one of the 8 dihedral transforms (rot90 ×k, then optional flip) to aligned (…, H, W) arrays."""
    out = [np.rot90(a, k, axes=(-2, -1)) for a in arrays]
    if flip:
        out = [a[..., ::-1] for a in out]
    return [np.ascontiguousarray(a) for a in out]


class ChipDataset(Dataset):
    """Chips of one split ('train' or 'val'), normalised with the store's training statistics.

    Reads each chip straight from Zarr (milliseconds per chip), so the loader can stay in the
    main process: on small CPU machines worker processes would only compete with the model.

    Augmentation (``augment``) draws chip ``j``'s dihedral transform from a generator seeded with
    (seed, epoch, j): the same in any order, in any DataLoader worker and after a resume. Call
    :meth:`set_epoch` at the start of each epoch (the trainer does) so each epoch draws anew.
    """

    def __init__(self, path: Path, split: str, augment: bool = False, seed: int = 0):
        path = Path(path)
        if not path.exists():
            raise ChipStoreError(f"chip store {path} not found — run `geo-risk tile CONFIG` first")
        self.group = zarr.open_group(str(path), mode="r")
        attrs = dict(self.group.attrs)
        check_store_format(attrs, path, "chip store")
        self.bands: list[str] = [str(b) for b in self.group["band"][:]]
        self.stats: dict = attrs["band_stats"]
        self.num_zones: int = int(attrs["num_zones"])
        splits = np.asarray(self.group["split"][:]).astype(str)
        self.indices = np.flatnonzero(splits == split)
        if self.indices.size == 0:
            counts = {str(k): int(v) for k, v in zip(*np.unique(splits, return_counts=True))}
            raise ChipStoreError(
                f"chip store {path} holds no '{split}' chips (it holds {counts or 'no chips at all'}) — re-run "
                f"`geo-risk tile` with more chips: raise chips.max_chips, lower chips.min_valid_fraction, "
                f"chips.stride_px or chips.size_px, or change chips.val_fraction (the share of blocks held out "
                f"for validation), chips.block_size_px or chips.buffer_px")
        # opened once: opening an array reads its metadata, a fifth of a chip's read time; a sharded array's reader
        # keeps each shard's index, read once (tiles.chip_shards.chip_reader)
        self.arrays = {k: chip_reader(self.group[k]) for k in ("image", "label", "valid", "eco", "zone")}
        # each chip's sampling weight (1 / chips.negative_keep for a kept pure-negative chip): it scales
        # the chip's valid mask, so the loss is the population's, not the subsample's
        self.weight = (np.asarray(self.group["weight"][:], dtype=np.float32) if "weight" in self.group
                       else np.ones(splits.size, dtype=np.float32))
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentation of ``epoch`` (a pure function of seed, epoch and chip)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> Sample:
        j = int(self.indices[i])
        g = self.arrays
        image = normalise(g["image"](j), self.bands, self.stats)
        arrays = [image, g["label"](j)[None], g["valid"](j)[None], g["eco"](j)[None], g["zone"](j)[None]]
        if self.augment:
            k, flip = np.random.default_rng((self.seed, self.epoch, j)).integers(0, [4, 2])
            arrays = d4(arrays, int(k), bool(flip))
        image, label, valid, eco, zone = arrays
        return Sample(
            torch.from_numpy(image),
            torch.from_numpy(label.astype(np.float32)),
            torch.from_numpy(valid.astype(np.float32) * self.weight[j]),
            torch.from_numpy(np.nan_to_num(eco.astype(np.float32))),
            torch.from_numpy(zone.astype(np.int64)),
        )
