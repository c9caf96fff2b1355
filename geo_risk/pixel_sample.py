"""The baselines' pixels: valid pixels drawn from one split of the chip store, with their normalised
covariates, grid positions and case-control weights (:mod:`geo_risk.baselines` says how they are used)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from geo_risk_errors import ChipStoreError
from tiles.chips import normalise
from tiles.store import open_store

#: default cap on the training pixels (validation pixels: a quarter of it)
MAX_PIXELS = 200_000
#: chips read from the store at a time while sampling
_CHIP_BATCH = 64


@dataclass(frozen=True)
class PixelSample:
    """Pixels drawn from one split of the chip store, with their normalised covariates.

    ``features`` (n, C) float32 holds every band of the store in ``bands`` order; ``row_px`` and
    ``col_px`` are the pixels' positions on the stack's grid (each grid pixel at most once);
    ``weight`` is 1 / the inclusion rate of the pixel's class, so weighted sums estimate sums over
    the population (every valid pixel of the split's chips).
    """

    split: str
    period: str
    bands: tuple[str, ...]
    stats: dict[str, dict]  # the chip store's normalisation statistics (``band_stats``)
    features: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    row_px: np.ndarray
    col_px: np.ndarray
    population: int
    population_positives: int
    rate_positive: float
    rate_negative: float

    def __len__(self) -> int:
        return int(self.label.size)

    @property
    def prior(self) -> float:
        """Share of lost pixels in the population the sample was drawn from."""
        return self.population_positives / self.population if self.population else float("nan")

    @property
    def logit_offset(self) -> float:
        """Add to a logit fitted on the sample as drawn to get the population's (prior correction)."""
        if self.rate_positive <= 0 or self.rate_negative <= 0:
            return 0.0
        return math.log(self.rate_negative / self.rate_positive)

    def column(self, band: str) -> np.ndarray:
        """Normalised values of one band."""
        return self.features[:, self.bands.index(band)]


def _chip_table(chips: Path) -> tuple[xr.Dataset, pd.DataFrame]:
    ds = open_store(chips, "chip store")
    index_path = Path(chips) / "index.parquet"
    try:
        index = pd.read_parquet(index_path, columns=["row_px", "col_px", "split"])
    except Exception as e:  # missing or unreadable: the store is half made
        raise ChipStoreError(f"chip index {index_path} is unreadable ({e}) — run `geo-risk tile CONFIG` again") from e
    if len(index) != ds.sizes["chip"] or not np.array_equal(index.split.to_numpy().astype(str),
                                                            ds["split"].values.astype(str)):
        raise ChipStoreError(f"chip index {index_path} does not match the chips of {chips} — "
                             "run `geo-risk tile CONFIG` again")
    return ds, index


def sample_pixels(chips: Path, split: str = "train", max_pixels: int = MAX_PIXELS, seed: int = 0) -> PixelSample:
    """Draw up to ``max_pixels`` valid pixels of the ``split`` chips of a chip store.

    All positives are kept when they fit in half the cap (else a random half-cap of them), and
    negatives are drawn at random to fill the rest; with fewer valid pixels than the cap, all are
    taken. Seeded: the same store, split, cap and seed give the same sample.
    """
    if max_pixels < 2:
        raise ValueError(f"max_pixels must be at least 2, got {max_pixels}")
    chips = Path(chips)
    ds, index = _chip_table(chips)
    size = int(ds.attrs["chip_size_px"])
    picked = np.flatnonzero(index.split.to_numpy().astype(str) == split)
    if picked.size == 0:
        raise ChipStoreError(f"chip store {chips} holds no '{split}' chips — re-run `geo-risk tile` with more chips")
    rows, cols = index.row_px.to_numpy(np.int64), index.col_px.to_numpy(np.int64)
    height, width = int(rows[picked].max()) + size, int(cols[picked].max()) + size

    # one pass over the chips' masks: which grid pixels are valid in some chip, lost, and which
    # chip to read them from (overlapping chips hold the same values for a pixel)
    eligible = np.zeros((height, width), dtype=bool)
    lost = np.zeros((height, width), dtype=bool)
    owner = np.full((height, width), -1, dtype=np.int32)
    for start in range(0, picked.size, _CHIP_BATCH):
        batch = picked[start:start + _CHIP_BATCH]
        valid = ds["valid"].isel(chip=batch).values.astype(bool)
        label = ds["label"].isel(chip=batch).values.astype(bool)
        for k, j in enumerate(batch):
            win = np.s_[rows[j]:rows[j] + size, cols[j]:cols[j] + size]
            v = valid[k]
            eligible[win] |= v
            lost[win] |= v & label[k]
            owner[win][v] = j

    ids = np.flatnonzero(eligible)
    is_pos = lost.ravel()[ids]
    pos, neg = ids[is_pos], ids[~is_pos]
    if ids.size <= max_pixels:
        take_pos, take_neg = pos.size, neg.size
    else:
        take_pos = min(pos.size, max(max_pixels // 2, max_pixels - neg.size))
        take_neg = min(neg.size, max_pixels - take_pos)
    rng = np.random.default_rng(seed)
    chosen = np.sort(np.concatenate([
        pos[np.sort(rng.choice(pos.size, take_pos, replace=False))],
        neg[np.sort(rng.choice(neg.size, take_neg, replace=False))],
    ]))
    r, c = np.divmod(chosen, width)
    label = lost[r, c].astype(np.uint8)
    rate_pos = take_pos / pos.size if pos.size else 1.0
    rate_neg = take_neg / neg.size if neg.size else 1.0

    bands = tuple(str(b) for b in ds.band.values)
    stats = dict(ds.attrs["band_stats"])
    features = np.empty((chosen.size, len(bands)), dtype=np.float32)
    src = owner[r, c]
    order = np.argsort(src, kind="stable")
    bounds = np.flatnonzero(np.diff(src[order])) + 1
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        j = int(src[group[0]])
        image = normalise(ds["image"].isel(chip=j).values, list(bands), stats)
        features[group] = image[:, r[group] - rows[j], c[group] - cols[j]].T
    return PixelSample(
        split=split, period=str(ds.attrs.get("period", "")), bands=bands, stats=stats, features=features,
        label=label,
        weight=np.where(label == 1, 1.0 / rate_pos, 1.0 / rate_neg),
        row_px=r, col_px=c, population=int(ids.size), population_positives=int(pos.size),
        rate_positive=float(rate_pos), rate_negative=float(rate_neg),
    )
