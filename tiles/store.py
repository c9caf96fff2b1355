"""On-disk stores: the layer stack (Zarr) and the chip index (GeoParquet); the chip store is
:mod:`tiles.chip_store`.

Every store is written into a temporary folder beside its target and renamed into place, so a
failed run never leaves half a store.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from dask.diagnostics import ProgressBar

from geo_risk_errors import ChipStoreError
from tiles.atomic import atomic_dir
from tiles.errors import ChipLayoutError
from tiles.blockwise import window_sums, window_zones
from tiles.chips import blocked_split, chip_windows, keep_positive_chips

#: version of the stack and chip stores' layout, kept in their attrs as ``store_format``; bump when
#: a variable, band or attribute changes meaning, so an older store is refused, not misread
STORE_FORMAT = 3  # 3: valid = forest inside the outline (missing inputs filled), coverage attrs
FORMAT_ATTR = "store_format"


def check_store_format(attrs, path: Path, what: str) -> None:
    """Refuse a store written by another version of geo-risk, saying how to rebuild it."""
    version = attrs.get(FORMAT_ATTR)
    if version != STORE_FORMAT:
        written = "an older geo-risk (no format version)" if version is None else f"store format {version}"
        raise ChipStoreError(f"{what} {path} was written by {written}; this geo-risk reads format {STORE_FORMAT} — "
                             "run `geo-risk tile CONFIG` again to rebuild it")


#: the stack is computed and written region by region, each this many chunks on a side: the blocks
#: shared by many outputs (forest-change codes, masks) then live for one region only, so peak memory
#: does not grow with the grid
REGION_CHUNKS = 4
#: side of the stack's Zarr chunks (when the dask chunks are multiples of it): a chip of 128 px reads at most
#: 4 of them, where a 1024 px chunk would make it decompress 64 times its own pixels
STORE_CHUNK_PX = 256


def write_stack(ds: xr.Dataset, path: Path, progress: bool = True, region_chunks: int = REGION_CHUNKS) -> None:
    """Compute the lazy stack and write it as Zarr (one chunk per 1024² block), region by region."""
    bar = ProgressBar(minimum=1.0) if progress else nullcontext()
    ds = ds.assign_attrs({FORMAT_ATTR: STORE_FORMAT})
    ys, xs = ds["features"].chunks[-2:]
    cuts_y = np.cumsum((0,) + ys)[::region_chunks].tolist() + ([sum(ys)] if len(ys) % region_chunks else [])
    cuts_x = np.cumsum((0,) + xs)[::region_chunks].tolist() + ([sum(xs)] if len(xs) % region_chunks else [])
    cuts_y, cuts_x = sorted(set(cuts_y)), sorted(set(cuts_x))
    spatial = [v for v in ds.variables if {"y", "x"} & set(ds[v].dims)]
    ds = ds.copy()
    for v in ds.data_vars:  # merged into each variable's encoding: rioxarray keeps grid_mapping there
        if {"y", "x"} <= set(ds[v].dims) and ds[v].chunks is not None:
            ds[v].encoding = {k: e for k, e in ds[v].encoding.items() if k != "preferred_chunks"} | {
                "chunks": _store_chunks(ds[v])}
    with atomic_dir(path) as tmp, bar:  # on the scheduler of the caller (tiles.scheduler.use_scheduler)
        if len(cuts_y) == 2 and len(cuts_x) == 2:  # one region: one write
            ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
            return
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2, compute=False)  # metadata, small coords
        for y0, y1 in zip(cuts_y, cuts_y[1:]):
            for x0, x1 in zip(cuts_x, cuts_x[1:]):
                region = {"y": slice(y0, y1), "x": slice(x0, x1)}
                part = ds[spatial].isel(region)
                part = part.drop_vars([v for v in part.variables if not {"y", "x"} & set(part[v].dims)])
                part.to_zarr(tmp, region=region, zarr_format=2)


def _store_chunks(var: xr.DataArray) -> tuple[int, ...]:
    """Zarr chunks of a stack variable: its dask chunks, with y and x of ``STORE_CHUNK_PX`` when the dask
    chunks are multiples of it (each dask chunk then writes whole Zarr chunks)."""
    out = []
    for dim, chunks in zip(var.dims, var.chunks):
        first = chunks[0]
        out.append(STORE_CHUNK_PX if dim in ("y", "x") and first % STORE_CHUNK_PX == 0 else first)
    return tuple(out)


def open_store(path: Path, what: str, chunks: dict | None = None) -> xr.Dataset:
    """Open a Zarr store written by this module, or say which stage makes it.

    Dask chunks of ``CHUNK_PX`` in y and x by default, whatever the Zarr chunks (a stack's are smaller, for
    chip reads); ``chunks={}`` gives the Zarr chunks themselves."""
    from tiles import grid

    path = Path(path)
    if not path.exists():
        raise ChipStoreError(f"{what} {path} not found — run `geo-risk tile CONFIG` first")
    if chunks is None:
        chunks = {"y": grid.CHUNK_PX, "x": grid.CHUNK_PX}
    try:
        ds = xr.open_zarr(path, consolidated=True, decode_coords="all", chunks=chunks)
    except Exception as e:
        raise ChipStoreError(f"{what} {path} is unreadable ({e}) — delete it and run `geo-risk tile` again") from e
    check_store_format(ds.attrs, path, what)
    return ds


def chip_index(
    stack: xr.Dataset, period: str, size: int, stride: int, min_valid_fraction: float,
    block_size_px: int, val_fraction: float, buffer_px: int, seed: int, max_chips: int | None = None,
    negative_keep: float = 1.0, test_fraction: float = 0.0,
) -> gpd.GeoDataFrame:
    """Chip windows of one period with enough valid pixels, sampled and split by spatial blocks.

    Every chip with a loss pixel is kept; pure-negative chips are kept with probability ``negative_keep``
    (seeded) and get the weight 1 / negative_keep (:func:`tiles.chips.keep_positive_chips`); then at most
    ``max_chips`` are drawn uniformly. Columns: the window (``row_px``, ``col_px``), ``split`` (train, val,
    test or buffer), ``valid_fraction``, ``positive_fraction``, ``weight``, ``zones`` (the zone ids ≥ 1 with
    a valid pixel in the chip) and the footprint. Fractions and zones are counted without loading the grid
    (:func:`window_sums`, :func:`window_zones`).
    """
    valid = da.asarray(stack["valid"].sel(period=period).data)
    label = da.asarray(stack["label"].sel(period=period).data) & valid
    h, w = valid.shape
    if size > min(h, w):
        raise ChipLayoutError(f"chips.size_px {size} is larger than the region's grid ({h} × {w} px) — lower "
                              f"chips.size_px to at most {min(h, w)} (and chips.stride_px with it)")
    rc = np.array(list(chip_windows(h, w, size, stride)), dtype=np.int64).reshape(-1, 2)
    rows, cols = rc[:, 0], rc[:, 1]
    vfrac = window_sums(valid, rows, cols, size, stride) / float(size * size)
    keep = vfrac >= min_valid_fraction
    rows, cols, vfrac = rows[keep], cols[keep], vfrac[keep]
    if len(rows) < 2:
        raise ChipLayoutError(
            f"only {len(rows)} chip(s) of {size} px have ≥ {min_valid_fraction:.0%} forest pixels inside the region in "
            f"period '{period}' ({int(valid.sum().compute())} forest pixels in all) — lower chips.min_valid_fraction or "
            "chips.size_px"
        )
    pfrac = window_sums(label, rows, cols, size, stride) / float(size * size)
    keep, weight = keep_positive_chips(pfrac > 0, negative_keep, seed)
    sampling = {"negative_keep": float(negative_keep), "candidates": int(len(rows)),
                "positive": int((pfrac > 0).sum()), "negative": int((pfrac == 0).sum()),
                "negative_kept": int((keep & (pfrac == 0)).sum())}
    rows, cols, vfrac, pfrac = rows[keep], cols[keep], vfrac[keep], pfrac[keep]
    if max_chips is not None and len(rows) > max_chips:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), max_chips, replace=False))
        rows, cols, vfrac, pfrac, weight = rows[pick], cols[pick], vfrac[pick], pfrac[pick], weight[pick]
    if len(rows) < 2:
        raise ChipLayoutError(
            f"only {len(rows)} chip(s) of {size} px are left after keeping {negative_keep:.0%} of the chips without "
            f"loss (period '{period}') — raise chips.negative_keep")
    split = blocked_split(rows, cols, size, block_size_px, val_fraction, buffer_px, seed, test_fraction)
    num_zones = int(stack.attrs.get("num_zones", 1))
    zones = window_zones(stack["zone"].data, valid, rows, cols, size, stride, num_zones)
    t = stack.rio.transform()
    x0, y0 = t @ (cols, rows)
    x1, y1 = t @ (cols + size, rows + size)
    index = gpd.GeoDataFrame(
        {"row_px": rows, "col_px": cols, "split": split.astype(str), "valid_fraction": vfrac,
         "positive_fraction": pfrac, "weight": weight.astype(np.float32),
         "zones": pd.Series([np.asarray(z, dtype=np.int16) for z in zones], dtype=object)},
        geometry=shapely.box(x0, y1, x1, y0), crs=stack.rio.crs,
    )
    index.attrs["sampling"] = sampling | {"max_chips": max_chips, "drawn": int(len(index))}
    return index


def check_split(index: gpd.GeoDataFrame, test_fraction: float = 0.0) -> dict[str, int]:
    """The chips per split; a set left empty is a ChipLayoutError naming the settings that fix it."""
    counts = {str(k): int(v) for k, v in index.split.value_counts().items()}
    wanted = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    words = {"train": "train", "val": "validation", "test": "test"}
    empty = [words[s] for s in wanted if counts.get(s, 0) == 0]
    if empty:
        got = ", ".join(f"{counts.get(s, 0)} {words[s]}" for s in wanted[:-1]) + f" and {counts.get(wanted[-1], 0)} "
        got += f"{words[wanted[-1]]} chips"
        raise ChipLayoutError(
            f"the blocked split left {got} ({counts.get('buffer', 0)} in buffers, of {len(index)}): no "
            f"{' and no '.join(empty)} chip — lower chips.block_size_px or chips.buffer_px, or raise chips.max_chips "
            "or chips.negative_keep" + (", or lower chips.val_fraction and chips.test_fraction" if "train" in empty
                                        else ""))
    return counts


#: the splits whose chips go into the chip store (buffer chips are left out)
STORED_SPLITS = ("train", "val", "test")
