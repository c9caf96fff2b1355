"""Out-of-core versions of the whole-grid steps: rasterisation block by block, and distances capped
at a maximum, computed block by block with an overlap as deep as the cap (``dask.array.map_overlap``).

A capped distance is exact: the nearest feature within ``cap_m`` of a pixel lies within the overlap
around the pixel's block, so the block sees it; a pixel whose nearest feature is farther gets
``cap_m`` (the block may see a nearer-than-true feature only beyond the cap, where it is capped too).
Peak memory is that of a few blocks with their overlap, whatever the size of the grid.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import shapely
from affine import Affine
from scipy.ndimage import distance_transform_edt

from tiles.grid import CHUNK_PX, Grid
from tiles.vectors import burn


def burn_blocks(geoms, grid: Grid, values=None, all_touched: bool = True, dtype: str = "uint8", fill: float = 0,
                chunk_px: int = CHUNK_PX) -> da.Array:
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

    return da.map_blocks(block, chunks=da.core.normalize_chunks(chunk_px, grid.shape), dtype=dtype)


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
