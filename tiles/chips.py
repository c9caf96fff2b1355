"""Chip windows, filters, a spatially blocked split and per-band normalisation statistics."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: bands whose values are standardised after log1p (long-tailed distances in metres)
LOG_BANDS_SUFFIX = "_m"


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts covering [0, length) with windows fully inside; the last one flush with the end."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def chip_windows(height: int, width: int, size: int, stride: int) -> Iterator[tuple[int, int]]:
    """Top-left (row, col) of every ``size``×``size`` window on a ``height``×``width`` grid."""
    for r in window_starts(height, size, stride):
        for c in window_starts(width, size, stride):
            yield r, c


def window_fractions(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Fraction of set pixels of ``mask`` in each window (summed-area table, O(1) per window)."""
    sat = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    sat[1:, 1:] = np.asarray(mask, dtype=np.int64).cumsum(0).cumsum(1)
    r1, c1 = rows + size, cols + size
    total = sat[r1, c1] - sat[rows, c1] - sat[r1, cols] + sat[rows, cols]
    return total / float(size * size)


def blocked_split(
    rows: np.ndarray, cols: np.ndarray, size: int, block_size_px: int, val_fraction: float,
    buffer_px: int, seed: int, test_fraction: float = 0.0,
) -> np.ndarray:
    """Assign chips to 'train' / 'val' / 'test' by spatial block, dropping chips near a held-out set.

    A chip belongs to the block holding its centre. Blocks are drawn in a seeded random order into
    validation until ``val_fraction`` of the chips are there, then (the same order going on) into
    test until ``test_fraction`` are. Chips whose window comes closer than ``buffer_px`` to a window
    of a set held out after theirs are marked 'buffer' (neighbouring pixels leak): train chips near
    validation or test chips, validation chips near test chips.
    """
    n = len(rows)
    split = np.full(n, "train", dtype=object)
    if n < 2:
        return split
    block = (rows + size // 2) // block_size_px * 100_000 + (cols + size // 2) // block_size_px
    uniq = np.unique(block)
    order = iter(np.random.default_rng(seed).permutation(uniq))
    held = 0
    for name, fraction in (("val", val_fraction), ("test", test_fraction)):
        taken = 0
        for b in order:
            if taken >= fraction * n:
                break
            sel = block == b
            if held + sel.sum() >= n:  # never hold everything out: train keeps a block
                continue
            split[sel] = name
            taken += sel.sum()
            held += sel.sum()
        else:
            continue
        # the block that stopped the loop was not drawn: put it back for the next set
        order = iter([b, *order])
    if buffer_px >= 0:
        for held_out, near_ones in (("test", ("train", "val")), ("val", ("train",))):
            out = split == held_out
            if not out.any():
                continue
            near = _near(rows, cols, rows[out], cols[out], size, buffer_px)
            split[np.isin(split, near_ones) & near] = "buffer"
    return split


def _near(rows: np.ndarray, cols: np.ndarray, hr: np.ndarray, hc: np.ndarray, size: int, buffer_px: int) -> np.ndarray:
    """Whether each window comes closer than ``buffer_px`` to one of the windows at (hr, hc) (or overlaps it),
    1024 windows at a time: memory stays O(1024 × held-out windows)."""
    near = np.zeros(len(rows), dtype=bool)
    for lo in range(0, len(rows), 1024):
        dr = np.abs(rows[lo:lo + 1024, None] - hr[None]) - size
        dc = np.abs(cols[lo:lo + 1024, None] - hc[None]) - size
        gap = np.hypot(np.maximum(dr, 0), np.maximum(dc, 0))
        near[lo:lo + 1024] = ((gap < buffer_px) | ((dr < 0) & (dc < 0))).any(axis=1)
    return near


def keep_positive_chips(positive: np.ndarray, negative_keep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive-aware sampling: every chip with a loss pixel (``positive``) is kept; a pure-negative chip is
    kept with probability ``negative_keep`` (seeded). Returns (keep mask, weight of each kept chip: 1 for
    positive chips, 1 / negative_keep for negative ones — what re-weights the sample to the population)."""
    positive = np.asarray(positive, dtype=bool)
    if not 0 < negative_keep <= 1:
        raise ValueError(f"negative_keep {negative_keep} must lie in (0, 1]")
    if negative_keep >= 1:
        return np.ones(len(positive), dtype=bool), np.ones(len(positive), dtype=np.float32)
    draw = np.random.default_rng([seed, 0x6E6567]).random(len(positive))  # its own stream: the split's is unchanged
    keep = positive | (draw < negative_keep)
    weight = np.where(positive, 1.0, 1.0 / negative_keep).astype(np.float32)
    return keep, weight[keep]


def band_transform(band: str) -> str:
    """'log1p' for distance bands (names ending in '_m'), else 'none'."""
    return "log1p" if band.endswith(LOG_BANDS_SUFFIX) else "none"


def band_stats(images: np.ndarray, valid: np.ndarray, bands: list[str]) -> dict[str, dict]:
    """Mean and std per band over valid pixels, after each band's transform.

    ``images`` (N, C, H, W), ``valid`` (N, H, W). A constant band gets std 1.
    """
    m = np.asarray(valid, dtype=bool)
    stats = {}
    for i, band in enumerate(bands):
        v = images[:, i][m].astype(np.float64)
        kind = band_transform(band)
        if kind == "log1p":
            v = np.log1p(np.maximum(v, 0))
        mean = float(v.mean()) if v.size else 0.0
        std = float(v.std()) if v.size else 1.0
        stats[band] = {"transform": kind, "mean": mean, "std": std if std > 1e-6 else 1.0}
    return stats


def band_stats_lazy(images, valid, bands: list[str], batch: int = 32) -> dict[str, dict]:
    """:func:`band_stats` over lazy (N, C, H, W) chips in two streaming passes (mean, then the squared
    deviations), ``batch`` chips at a time, so the training chips are never all in memory."""
    import dask
    import dask.array as da

    def values(lo: int, hi: int):
        out = []
        for i, band in enumerate(bands):
            v = images[lo:hi, i].astype(np.float64)
            out.append(da.log1p(da.maximum(v, 0)) if band_transform(band) == "log1p" else v)
        return out

    batches = [(lo, min(lo + batch, images.shape[0])) for lo in range(0, images.shape[0], batch)]
    count, sums = 0, np.zeros(len(bands))
    for lo, hi in batches:
        m = valid[lo:hi].astype(bool)
        n, *s = dask.compute(m.sum(), *[da.where(m, v, 0).sum() for v in values(lo, hi)])
        count, sums = count + int(n), sums + np.asarray(s, dtype=np.float64)
    means = [float(s) / count if count else 0.0 for s in sums]
    squares = np.zeros(len(bands))
    for lo, hi in batches:
        m = valid[lo:hi].astype(bool)
        squares += np.asarray(dask.compute(*[da.where(m, (v - mu) ** 2, 0).sum()
                                             for v, mu in zip(values(lo, hi), means)]), dtype=np.float64)
    stats = {}
    for band, mu, sq in zip(bands, means, squares):
        std = float(np.sqrt(sq / count)) if count else 1.0
        stats[band] = {"transform": band_transform(band), "mean": mu, "std": std if std > 1e-6 else 1.0}
    return stats


def normalise(images: np.ndarray, bands: list[str], stats: dict[str, dict]) -> np.ndarray:
    """Apply :func:`band_stats` to (…, C, H, W) images; NaN becomes 0 (the mean)."""
    out = np.empty(images.shape, dtype=np.float32)
    for i, band in enumerate(bands):
        s = stats[band]
        v = images[..., i, :, :]
        if s["transform"] == "log1p":
            v = np.log1p(np.maximum(v, 0))
        out[..., i, :, :] = (v - s["mean"]) / s["std"]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
