"""The chip store (Zarr v3, one inner chunk per chip and variable, ``CHIPS_PER_SHARD`` chips per shard file) cut out
of the layer stack square by square, with its per-band normalisation statistics; written into a temporary folder
and renamed into place."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec
from zarr.errors import UnstableSpecificationWarning, ZarrUserWarning

from tiles.atomic import atomic_dir
from tiles.chip_shards import ChipShards
from tiles.chips import band_transform
from tiles.store import FORMAT_ATTR, STORE_FORMAT, STORED_SPLITS

#: side of the squares of the grid whose chips are cut from one read (:func:`chip_tiles`): a multiple of
#: ``tiles.store.STORE_CHUNK_PX``, so a square with its margin of one chip decodes (512 + 256)² / 512² = 2.25 times its
#: chunks at most, where rows of ≤ 32 windows decoded each whole 1024 px dask chunk under them; 1024 px
#: squares were as fast on the demo (2.99 against 3.07 s, median of 3) and held 100 MB more
CHIP_TILE_PX = 512
#: threads cutting, encoding and writing chips (numcodecs releases the GIL)
CHIP_WRITERS = 2
#: chips per shard file of each chip-store variable (Zarr v3 sharding, one inner chunk per chip: a chip still reads
#: alone, its shard's index then its own bytes). Creating a file cost ≈ 0.6 ms of CPU here whatever its size
#: (2,114 files of 53 kB: 1.2–1.5 s; 70 of 1.6 MB: 0.08 s), and one file per chip and variable made that most
#: of the store's time. A shard is written once its last chip is encoded; the chips of the index are in
#: row-major order, so only the shards of the current row of squares wait, at most two per chip row in it
#: (one swept, one across the row's end), whatever the size of the grid: on the demo, 88 chips at most
#: (24 MB compressed) are held
CHIPS_PER_SHARD = 16
#: the compressor of the chip arrays' inner chunks (zarr v2's default, which the store had before it was sharded):
#: lz4 decodes a training batch faster than zarr v3's default zstd
CHIP_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def chip_tiles(rows: np.ndarray, cols: np.ndarray, tile: int) -> list[np.ndarray]:
    """The chips (positions in ``rows``/``cols``) grouped by the square of ``tile`` px of the grid that holds
    their origin, squares in row-major order, chips in their own order within each: a square's chips lie in
    ``tile`` + one chip's size on a side, whatever the size of the grid."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if len(rows) == 0:
        return []
    tr, tc = rows // tile, cols // tile
    order = np.lexsort((np.arange(len(rows)), tc, tr))
    key = tr[order] * (int(tc.max()) + 1) + tc[order]
    return np.split(order, np.flatnonzero(np.diff(key)) + 1)


def write_chip_store(stack: xr.Dataset, period: str, index: gpd.GeoDataFrame, path: Path, size: int,
                     attrs: dict | None = None) -> dict:
    """Cut the chips of ``index`` (train, val and test; not buffer) out of ``stack`` into a Zarr store,
    with ``index.parquet`` (GeoParquet, row i = chip i) beside them.

    The store carries its band list, per-band normalisation statistics (train chips only, in the same
    pass), each chip's ``split`` and sampling ``weight``, and ``attrs``. Returns the statistics.

    Chips go square by square of the grid (:func:`chip_tiles`, ``CHIP_TILE_PX`` on a side): the stack under
    a square's chips (the square and one chip's margin) is computed once on the current dask scheduler, so
    each stack chunk is decoded about once, not once per row of windows, and the next square is read while
    this one is written. Each chip is cut and encoded as its array's inner chunk by ``CHIP_WRITERS`` threads
    (numcodecs releases the GIL; zarr's own write path cost 2–3 times as much per chunk, measured), and each
    shard of ``CHIPS_PER_SHARD`` chips written as one file once its last chip is in (:class:`ChipShards`);
    the statistics of the square's train chips are computed on the square itself,
    each pixel counted once per train chip that covers it (:meth:`BandMoments.of_windows`). Memory stays
    that of two squares whatever the size of the grid (the heap is trimmed after each, :func:`_trim_heap`).
    """
    index = index[index.split.isin(STORED_SPLITS)].reset_index(drop=True)
    sel = stack.sel(period=period)
    n, bands = len(index), [str(b) for b in stack.band.values]
    rows, cols = index.row_px.to_numpy(np.int64), index.col_px.to_numpy(np.int64)
    is_train = np.asarray(index.split == "train")
    weight = index["weight"].to_numpy(np.float32) if "weight" in index else np.ones(n, dtype=np.float32)
    layers = {"image": sel["features"], "label": sel["label"], "valid": sel["valid"], "eco": sel["eco"],
              "zone": sel["zone"]}

    per_shard = max(1, min(CHIPS_PER_SHARD, n))

    def template(var: xr.DataArray) -> xr.Variable:  # metadata only: one dask chunk; inner chunks of one chip
        shape = (n, *var.shape[:-2], size, size)
        dims = ("chip", *var.dims[:-2], "y", "x")
        return xr.Variable(dims, da.zeros(shape, dtype=var.dtype, chunks=shape), encoding={
            "chunks": (1, *shape[1:]), "shards": (per_shard, *shape[1:]), "compressors": (CHIP_COMPRESSOR,)})

    chips = xr.Dataset(
        {**{name: template(var) for name, var in layers.items()},
         "split": (("chip",), index.split.to_numpy().astype(str)), "weight": (("chip",), weight)},
        coords={"band": stack.band.values, "chip": np.arange(n)},
        attrs={FORMAT_ATTR: STORE_FORMAT, "period": period, "chip_size_px": size, "band_stats": {},
               "num_zones": int(stack.attrs["num_zones"]), "crs": str(stack.rio.crs), **(attrs or {})},
    )
    squares = chip_tiles(rows, cols, CHIP_TILE_PX)

    # the period and the square in ONE index of each variable's array: dask then reads only the square from
    # the store (it fuses one slice into the chunk's read, not two in a row: `.sel(period=…)` first would
    # decode every whole dask chunk under the square)
    period_at = stack.indexes["period"].get_loc(period)
    lead = {name: tuple(period_at if d == "period" else slice(None) for d in stack[var.name].dims[:-2])
            for name, var in layers.items()}

    def read(part: np.ndarray) -> tuple:
        r0, r1 = int(rows[part].min()), int(rows[part].max()) + size
        c0, c1 = int(cols[part].min()), int(cols[part].max()) + size
        data = dask.compute(*[stack[var.name].data[(*lead[name], slice(r0, r1), slice(c0, c1))]
                              for name, var in layers.items()])
        return r0, c0, dict(zip(layers, (np.asarray(a) for a in data)))

    moments = BandMoments(bands)
    with atomic_dir(path) as tmp, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(CHIP_WRITERS) as writers:
        with _unspecified_v3_metadata():
            chips.to_zarr(tmp, mode="w", consolidated=False, zarr_format=3, compute=False)  # metadata, split, weight
        group = zarr.open_group(str(tmp), mode="r+", zarr_format=3)
        shards = {name: ChipShards(group[name]) for name in layers}
        waiting = np.bincount(np.arange(n) // per_shard)  # chips of each shard not encoded yet
        held: dict[int, dict[int, dict]] = {}  # shard → chip → variable → its encoded bytes
        lock = threading.Lock()

        def write(i: int, r0: int, c0: int, square: dict) -> None:  # the group is a local folder: tmp
            r, c = int(rows[i]) - r0, int(cols[i]) - c0
            encoded = {name: shard.encode(square[name][..., r:r + size, c:c + size]) for name, shard in shards.items()}
            s = i // per_shard
            with lock:
                held.setdefault(s, {})[i] = encoded
                waiting[s] -= 1
                full = held.pop(s) if waiting[s] == 0 else None
            if full is not None:  # this chip was the shard's last: the shard is written, once
                for name, shard in shards.items():
                    data = shard.assemble([full[j][name] for j in range(s * per_shard, min(n, (s + 1) * per_shard))])
                    if data is not None:  # c/<shard>/0/…: zarr v3's default keys (the folders cost nothing seen)
                        file = tmp / name / shard.key(s)
                        file.parent.mkdir(parents=True, exist_ok=True)
                        file.write_bytes(data)

        _trim_heap()  # what the stages before freed, before this one's threads take arenas of their own
        ahead = reader.submit(read, squares[0]) if squares else None
        pending: list = []
        for t, part in enumerate(squares):
            r0, c0, square = ahead.result()
            for done in pending:  # the square before is written (and freed) before the next is read
                done.result()
            _trim_heap()
            ahead = reader.submit(read, squares[t + 1]) if t + 1 < len(squares) else None
            pending = [writers.submit(write, int(i), r0, c0, square) for i in part]
            train = part[is_train[part]]
            if len(train):
                moments.add(*moments.of_windows(square["image"], square["valid"], rows[train] - r0,
                                                cols[train] - c0, size))
        for done in pending:
            done.result()
        if held:  # every chip of the index is in exactly one square: a shard left here is a bug, not bad input
            raise RuntimeError(f"chip store {path}: shards {sorted(held)} were never completed")
        stats = moments.stats()
        group.attrs["band_stats"] = stats
        with _unspecified_v3_metadata():
            zarr.consolidate_metadata(str(tmp), zarr_format=3)
        index.attrs = {}  # pandas attrs are not GeoParquet metadata
        index.to_parquet(tmp / "index.parquet")
    return stats


@contextmanager
def _unspecified_v3_metadata():
    """Without zarr-python's warnings that two things the chip store keeps as before are not in the Zarr v3 spec
    yet: consolidated metadata (zarr-python and xarray read it), and fixed-length unicode (``band``, ``split``:
    readers get ``<U`` back; zarr-python's variable-length strings come back as numpy's StringDType, which
    ``.astype(str)`` refuses)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        warnings.filterwarnings("ignore", category=UnstableSpecificationWarning)
        yield


def _trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``, as dask's distributed workers
    do): the threads reading, cutting and encoding each square allocate and free arrays of a few MB in
    their own malloc arenas, whose freed pages glibc otherwise keeps, so the process's memory would grow
    square after square. A no-op without glibc."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 — glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


class BandMoments:
    """Per-band mean and standard deviation over valid pixels, after each band's transform
    (:func:`tiles.chips.band_transform`), merged batch by batch (Chan et al.'s pairwise update): one pass
    over the chips, float64, the same statistics as :func:`tiles.chips.band_stats` (population std, 1
    for a constant band)."""

    def __init__(self, bands: list[str]):
        self.bands = list(bands)
        self.log = np.array([band_transform(b) == "log1p" for b in self.bands])
        self.n = 0.0
        self.mean = np.zeros(len(self.bands))
        self.m2 = np.zeros(len(self.bands))

    def of_windows(self, image, valid, rows, cols, size: int) -> tuple:
        """(count, mean, M2) of the chips of ``size`` px at ``rows``, ``cols`` of one (C, H, W) ``image``
        and its (H, W) ``valid`` mask, without cutting them: each valid pixel weighs the number of those
        chips that cover it (the chips overlap when the stride is below their size), so the moments are
        those of the cut chips' valid pixels, from each pixel's values transformed once."""
        valid = np.asarray(valid, dtype=bool)
        h, w = valid.shape
        cover = np.zeros((h + 1, w + 1), dtype=np.int64)  # chip corners, summed into coverage counts
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        for dr, dc, sign in ((0, 0, 1), (0, size, -1), (size, 0, -1), (size, size, 1)):
            np.add.at(cover, (rows + dr, cols + dc), sign)
        cover = cover.cumsum(axis=0).cumsum(axis=1)[:h, :w]
        keep = valid & (cover > 0)
        wgt = cover[keep].astype(np.float64)
        n = float(wgt.sum())
        mean, m2 = np.zeros(len(self.bands)), np.zeros(len(self.bands))
        for b, band in enumerate(np.asarray(image)):  # band by band: float64 copies of one band at a time
            x = band[keep].astype(np.float64)
            if self.log[b]:
                np.log1p(np.maximum(x, 0, out=x), out=x)
            mean[b] = x @ wgt / max(n, 1.0)
            x -= mean[b]
            m2[b] = (x * x) @ wgt
        return n, mean, m2

    def add(self, n, mean, m2) -> None:
        n = float(n)
        if n == 0:
            return
        total = self.n + n
        delta = np.asarray(mean) - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + np.asarray(m2) + delta ** 2 * (self.n * n / total)
        self.n = total

    def stats(self) -> dict[str, dict]:
        out = {}
        for i, band in enumerate(self.bands):
            mean = float(self.mean[i]) if self.n else 0.0
            std = float(np.sqrt(self.m2[i] / self.n)) if self.n else 1.0
            out[band] = {"transform": band_transform(band), "mean": mean, "std": std if std > 1e-6 else 1.0}
        return out
