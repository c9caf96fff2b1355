"""Out-of-core versions of the whole-grid steps: rasterisation block by block, and distances capped
at a maximum, computed block by block with an overlap as deep as the cap (``dask.array.map_overlap``).

A capped distance is exact: the nearest feature within ``cap_m`` of a pixel lies within the overlap
around the pixel's block, so the block sees it; a pixel whose nearest feature is farther gets
``cap_m`` (the block may see a nearer-than-true feature only beyond the cap, where it is capped too).
Peak memory is that of a few blocks with their overlap, whatever the size of the grid.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import shapely
from affine import Affine
from scipy.ndimage import distance_transform_edt

from tiles.grid import CHUNK_PX, Grid
from tiles.vectors import burn


def burn_blocks(geoms, grid: Grid, values=None, all_touched: bool = True, dtype: str = "uint8", fill: float = 0,
                chunk_px: int | None = None) -> da.Array:
    """:func:`tiles.vectors.burn` block by block (same pixels): each block burns the geometries that
    touch it (an STRtree query), so no whole-grid array is ever made."""
    geoms = np.asarray(list(geoms), dtype=object)
    vals = None if values is None else np.asarray(list(values))
    tree = shapely.STRtree(geoms)
    t = grid.transform

    def block(block_info=None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        sub = Grid(grid.crs, t @ Affine.translation(c0, r0), c1 - c0, r1 - r0)
        left, bottom, right, top = sub.bounds
        hit = np.sort(tree.query(shapely.box(left - abs(t.a), bottom - abs(t.e), right + abs(t.a), top + abs(t.e))))
        if hit.size == 0:
            return np.full(sub.shape, fill, dtype=dtype)
        return burn(geoms[hit], sub, None if vals is None else vals[hit], all_touched, dtype, fill)

    return da.map_blocks(block, chunks=da.core.normalize_chunks(chunk_px or CHUNK_PX, grid.shape), dtype=dtype)


def _capped_edt(block: np.ndarray, resolution_m: float, cap_m: float, of_unset: bool) -> np.ndarray:
    target = np.asarray(block, dtype=bool)
    src = target if of_unset else ~target
    if src.all():  # nothing to measure to in this block and its overlap
        return np.full(block.shape, cap_m, dtype=np.float32)
    return np.minimum(distance_transform_edt(src, sampling=resolution_m), cap_m).astype(np.float32)


def capped_distance(mask: da.Array, resolution_m: float, cap_m: float, of_unset: bool = False,
                    beyond: int = 0) -> da.Array:
    """Distance (m) from every pixel to the nearest set pixel of ``mask`` (``of_unset``: to the nearest
    unset one, e.g. the forest edge from a forest mask), capped at ``cap_m``, block by block.

    ``beyond``: the value the mask takes beyond the array's edge (0: no feature there; 1 with
    ``of_unset``: the edge of the array is not an edge).
    """
    pad = max(1, int(np.ceil(cap_m / resolution_m)))
    m = mask.astype(bool).rechunk(max(CHUNK_PX, pad))
    depth = {axis: min(pad, n) for axis, n in enumerate(m.shape)}  # an overlap past the array sees it all
    out = da.map_overlap(_capped_edt, m, depth=depth, boundary=bool(beyond), trim=True, dtype=np.float32,
                         resolution_m=resolution_m, cap_m=float(cap_m), of_unset=of_unset)
    return out.rechunk(CHUNK_PX)


def _fill_block(block: np.ndarray) -> np.ndarray:
    from tiles.layers import fill_nearest

    return fill_nearest(block)


def fill_nearest_blocks(raw: da.Array, depth_px: int, fallback: float) -> da.Array:
    """:func:`tiles.layers.fill_nearest` block by block with an overlap of ``depth_px``: a missing pixel takes
    the value of a nearest valid pixel when one lies within the overlap, else ``fallback``."""
    depth = {axis: min(max(1, depth_px), n) for axis, n in enumerate(raw.shape)}
    r = raw.rechunk(max(CHUNK_PX, depth_px))
    out = da.map_overlap(_fill_block, r, depth=depth, boundary="none", trim=True, dtype=np.float32)
    return da.where(da.isfinite(out), out, np.float32(fallback)).astype(np.float32).rechunk(CHUNK_PX)


def exact_quantile(values: da.Array, where: da.Array, q: float, bins: int = 4096) -> float:
    """``np.quantile(values[where & finite], q)`` (linear interpolation), exactly, in three streaming passes:
    the range, a histogram locating the two order statistics, and the values of their bins only."""
    keep = where.astype(bool) & da.isfinite(values)
    n, lo, hi = dask.compute(keep.sum(), da.where(keep, values, np.inf).min(), da.where(keep, values, -np.inf).max())
    n, lo, hi = int(n), float(lo), float(hi)
    if n == 0:
        return float("nan")
    if lo == hi:
        return lo
    pos = (n - 1) * q
    k0, k1 = int(np.floor(pos)), int(np.ceil(pos))
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = da.histogram(da.where(keep, values, np.nan), bins=edges, range=(lo, hi))
    cum = np.cumsum(counts.compute())
    b0, b1 = int(np.searchsorted(cum, k0 + 1)), int(np.searchsorted(cum, k1 + 1))
    below = int(cum[b0 - 1]) if b0 > 0 else 0
    left = edges[b0]
    right = edges[b1 + 1]
    sel = keep & (values >= left) & ((values <= right) if b1 + 1 == bins else (values < right))
    inside = np.sort(values[sel].compute())
    pair = np.array([inside[k0 - below], inside[k1 - below]], dtype=values.dtype)
    return float(np.quantile(pair, pos - k0))  # numpy's own interpolation, in the values' dtype


def window_sums(mask: da.Array, rows: np.ndarray, cols: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Set pixels of ``mask`` in each ``size``² window at (rows, cols), without a whole-grid array: windows on
    the ``stride`` lattice from a summed-area table of stride × stride cell sums (small), the others (the
    last row and column of windows, flush with the edge) summed one by one."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    m = da.asarray(mask).astype("int32")
    out = np.zeros(len(rows), dtype=np.int64)
    aligned = (rows % stride == 0) & (cols % stride == 0) & (size % stride == 0)
    h, w = mask.shape
    if aligned.any():
        step = stride * max(1, CHUNK_PX // stride)
        hh, ww = h // stride * stride, w // stride * stride
        cells = da.coarsen(np.sum, m[:hh, :ww].rechunk(step), {0: stride, 1: stride}).compute().astype(np.int64)
        sat = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int64)
        sat[1:, 1:] = cells.cumsum(0).cumsum(1)
        k = size // stride
        r, c = rows[aligned] // stride, cols[aligned] // stride
        out[aligned] = sat[r + k, c + k] - sat[r, c + k] - sat[r + k, c] + sat[r, c]
    other = np.flatnonzero(~aligned)
    if other.size:
        out[other] = dask.compute(*[m[rows[i]:rows[i] + size, cols[i]:cols[i] + size].sum() for i in other])
    return out


def _zone_cell_counts(zone: np.ndarray, mask: np.ndarray, stride: int, num_zones: int) -> np.ndarray:
    """(cells_y, cells_x, num_zones) counts of ``mask`` pixels of each zone in each stride × stride cell."""
    h, w = zone.shape
    cy, cx = h // stride, w // stride
    cell = (np.arange(h)[:, None] // stride) * cx + np.arange(w)[None, :] // stride
    z = np.clip(zone.astype(np.int64), 0, num_zones - 1)
    m = np.asarray(mask, dtype=bool)
    counts = np.bincount((cell[m] * num_zones + z[m]).ravel(), minlength=cy * cx * num_zones)
    return counts.reshape(cy, cx, num_zones).astype(np.int32)


def window_zones(zone: da.Array, mask: da.Array, rows: np.ndarray, cols: np.ndarray, size: int, stride: int,
                 num_zones: int) -> list[list[int]]:
    """The zone ids (≥ 1; 0 is outside every zone) holding at least one set pixel of ``mask`` in each
    ``size``² window at (rows, cols), without a whole-grid array: per-zone counts in stride × stride cells
    (one pass; cells × zones int32, small), a summed-area table over them, and the windows off the stride
    lattice (flush with the last row or column) read one by one."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    out: list[list[int]] = [[] for _ in rows]
    if num_zones <= 1 or len(rows) == 0:
        return out
    z, m = da.asarray(zone), da.asarray(mask).astype(bool)
    aligned = (rows % stride == 0) & (cols % stride == 0) & (size % stride == 0)
    h, w = z.shape
    if aligned.any():
        step = stride * max(1, CHUNK_PX // stride)
        hh, ww = h // stride * stride, w // stride * stride
        zc, mc = z[:hh, :ww].rechunk(step), m[:hh, :ww].rechunk(step)
        cells = da.map_blocks(_zone_cell_counts, zc, mc, stride=stride, num_zones=num_zones, new_axis=2,
                              chunks=(tuple(c // stride for c in zc.chunks[0]),
                                      tuple(c // stride for c in zc.chunks[1]), (num_zones,)),
                              dtype=np.int32).compute()
        sat = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1, num_zones), dtype=np.int64)
        sat[1:, 1:] = cells.cumsum(0).cumsum(1)
        k = size // stride
        idx = np.flatnonzero(aligned)
        r, c = rows[idx] // stride, cols[idx] // stride
        present = (sat[r + k, c + k] - sat[r, c + k] - sat[r + k, c] + sat[r, c]) > 0  # (windows, zones)
        for i, p in zip(idx, present):
            out[i] = [int(v) for v in np.flatnonzero(p) if v > 0]
    other = np.flatnonzero(~aligned)
    if other.size:
        parts = dask.compute(*[da.where(m[rows[i]:rows[i] + size, cols[i]:cols[i] + size],
                                        z[rows[i]:rows[i] + size, cols[i]:cols[i] + size], 0) for i in other])
        for i, part in zip(other, parts):
            out[i] = [int(v) for v in np.unique(part) if v > 0]
    return out


def _window_share_block(block: np.ndarray, side: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return np.clip(uniform_filter(block, size=side, mode="constant", cval=0.0), 0.0, 1.0).astype(np.float32)


def window_share(mask: da.Array, side: int) -> da.Array:
    """Share of set pixels of ``mask`` in the ``side`` × ``side`` window (odd) centred on each pixel, block by
    block; beyond the array counts as unset."""
    half = side // 2
    m = mask.astype(np.float32).rechunk(max(CHUNK_PX, half))
    depth = {axis: min(half, n) for axis, n in enumerate(m.shape)}
    out = da.map_overlap(_window_share_block, m, depth=depth, boundary=0, trim=True, dtype=np.float32, side=side)
    return out.rechunk(CHUNK_PX)
