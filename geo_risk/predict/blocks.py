"""Seamless block inference: every output block is predicted from itself plus a halo of context.

The region is cut into blocks (Dask chunks). Each block is read with ``halo`` pixels of its
neighbours around it (mirrored at the region's edges, never zero-padded), passed through the
model — optionally under the eight flips and rotations of the square (test-time augmentation) —
and only its centre is kept. Every pixel is thus predicted once, at least ``halo`` pixels away
from the border of what the network saw, so its value does not depend on where the blocks fell
(docs/prediction.md measures it). Blocks are computed lazily, one at a time, so memory does not
grow with the region.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import torch

from tiles.chips import normalise

#: the eight symmetries of the square as (quarter turns, horizontal flip); the first ``tta`` are used
D4 = [(0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True)]
#: U-Net inputs must be multiples of this (five stride-2 stages)
MULTIPLE = 32


def aligned_chunks(length: int, block: int, offset: int = 0, min_last: int = MULTIPLE) -> tuple[int, ...]:
    """Chunk sizes covering ``length`` whose starts all lie on multiples of :data:`MULTIPLE`.

    A U-Net downsamples by 2 five times, so its output is not invariant to shifts of less than 32 px
    (the pooling phase changes): blocks that start on a common 32 px lattice see the region at
    the same phase, and a pixel's value no longer depends on where the blocks fell. ``block`` and
    ``offset`` (a shifted grid, for the seam metric) are rounded to multiples of 32; a last chunk
    shorter than ``min_last`` is merged into the one before.
    """
    block = max(MULTIPLE, block // MULTIPLE * MULTIPLE)
    offset = offset // MULTIPLE * MULTIPLE
    sizes = [offset] if 0 < offset < length else []
    while sum(sizes) < length:
        sizes.append(min(block, length - sum(sizes)))
    if len(sizes) > 1 and sizes[-1] < min_last:
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


@dataclass(frozen=True)
class ModelRef:
    """A checkpoint to load where the blocks are computed, once per process (a dask worker, or this
    process under the threaded scheduler) — instead of shipping the network inside every task."""

    checkpoint: str
    device: str = "cpu"
    torch_threads: int | None = None  # torch's intra-op threads in that process (None: leave as is)


_MODELS: dict[tuple, torch.nn.Module] = {}
_MODELS_LOCK = threading.Lock()


def resolve_model(model: torch.nn.Module | ModelRef) -> torch.nn.Module:
    """The network itself, or the one of a :class:`ModelRef`, loaded on first use in this process."""
    if not isinstance(model, ModelRef):
        return model
    key = (model.checkpoint, os.stat(model.checkpoint).st_mtime_ns, model.device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from geo_risk.model import load_checkpoint

            if model.torch_threads:
                torch.set_num_threads(model.torch_threads)
            net, _ = load_checkpoint(model.checkpoint)
            _MODELS.clear()  # one checkpoint at a time per process
            _MODELS[key] = net.to(torch.device(model.device)).to(memory_format=torch.channels_last)
        return _MODELS[key]


def _transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, dims=(-2, -1)) if k else x
    return torch.flip(x, dims=(-1,)) if flip else x


def _untransform(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.flip(y, dims=(-1,)) if flip else y
    return torch.rot90(y, -k, dims=(-2, -1)) if k else y


def _pad_to_multiple(x: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Mirror-pad (C, H, W) at the bottom/right up to multiples of :data:`MULTIPLE`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
    if ph or pw:
        mode = "symmetric" if ph <= h and pw <= w else "edge"
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode=mode)
    return x, (h, w)


@torch.inference_mode()
def predict_window(model: torch.nn.Module, x: np.ndarray, *, tta: int = 1, temperature: float = 1.0,
                   device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated logit (mean over the ``tta`` views) and probability spread (std over them) of a
    normalised (C, H, W) window; any H, W (mirror-padded to a multiple of 32 internally)."""
    device = device or torch.device("cpu")
    padded, (h, w) = _pad_to_multiple(x)
    base = torch.from_numpy(np.ascontiguousarray(padded))[None].to(device)
    logits = []
    for k, flip in D4[:tta]:
        out = model(_transform(base, k, flip).contiguous(memory_format=torch.channels_last))
        logits.append(_untransform(out.float(), k, flip)[0, 0, :h, :w] / temperature)
    stack = torch.stack(logits)
    spread = torch.sigmoid(stack).std(dim=0, unbiased=False) if tta > 1 else torch.zeros_like(stack[0])
    return stack.mean(dim=0).cpu().numpy(), spread.cpu().numpy()


def _block(x: np.ndarray, *, model, bands, stats, halo: tuple[int, int], tta: int, temperature: float,
           device) -> np.ndarray:
    """(2, h, w): logit and spread of one block given with its halo, the valid mask as its last band;
    NaN when the block has no valid pixel."""
    (hy, hx) = halo
    h, w = x.shape[1] - 2 * hy, x.shape[2] - 2 * hx
    out = np.full((2, h, w), np.nan, dtype=np.float32)
    if not (x[-1, hy:hy + h, hx:hx + w] > 0).any():
        return out
    logit, spread = predict_window(resolve_model(model), normalise(x[:-1], bands, stats), tta=tta, temperature=temperature,
                                   device=device)
    out[0] = np.clip(logit[hy:hy + h, hx:hx + w], -60, 60)
    out[1] = spread[hy:hy + h, hx:hx + w]
    return out


def infer_blocks(model: torch.nn.Module | ModelRef, features: da.Array, valid: da.Array, bands: Sequence[str], stats: dict, *,
                 block_px: int, halo_px: int, tta: int = 1, temperature: float = 1.0,
                 device: torch.device | None = None, offset: tuple[int, int] = (0, 0)) -> da.Array:
    """Lazy (2, H, W) float32 array: calibrated logit and TTA probability spread per pixel.

    ``features`` (C, H, W) raw bands and ``valid`` (H, W), both lazy. ``offset`` shifts the block
    grid (used to measure seams). Nothing is computed until the result is. ``model`` a network, or a
    :class:`ModelRef` that each process computing blocks loads once (what a dask cluster needs).
    """
    _, h, w = features.shape
    halo_px = -(-halo_px // MULTIPLE) * MULTIPLE  # a halo on the 32 px lattice keeps the phase at the edges
    chunks = (aligned_chunks(h, block_px, offset[0], max(halo_px, MULTIPLE)),
              aligned_chunks(w, block_px, offset[1], max(halo_px, MULTIPLE)))
    halo = (min(halo_px, *chunks[0]), min(halo_px, *chunks[1]))  # dask needs depth ≤ every chunk
    stacked = da.concatenate([features.astype(np.float32), valid.astype(np.float32)[None]], axis=0)
    stacked = stacked.rechunk(((stacked.shape[0],), *chunks))
    ov = da.overlap.overlap(stacked, depth={0: 0, 1: halo[0], 2: halo[1]},
                            boundary={0: "none", 1: "reflect", 2: "reflect"})
    return da.map_blocks(
        _block, ov, dtype=np.float32, chunks=((2,), *chunks), name=f"predict-{uuid.uuid4().hex}",
        model=model, bands=list(bands), stats=stats, halo=halo, tta=tta, temperature=temperature,
        device=device or torch.device("cpu"), meta=np.empty((0, 0, 0), np.float32),
    )


def store_blocks(out: da.Array, path, *, batch: int = 1, progress: bool = True) -> da.Array:
    """Compute the lazy (2, H, W) ``out`` of :func:`infer_blocks` into a Zarr array at ``path``, ``batch``
    blocks at a time, and return it reopened lazily with the same chunks.

    Each compute reads only its blocks and their halos, so peak memory is that of one batch whatever
    the region's size (handing the whole overlap graph to dask at once kept rows of input chunks alive:
    docs/prediction.md). ``batch``: a few neighbouring blocks share the chunks they read; on a cluster,
    at least one per worker thread. The Zarr chunks divide every block boundary (all on the 32 px lattice),
    so no two blocks write the same chunk.
    """
    import zarr
    from tqdm.auto import tqdm

    _, ry, rx = out.chunks
    edges = [np.cumsum((0, *c)) for c in (ry, rx)]
    zchunks = tuple(int(math.gcd(*(int(e) for e in inner))) if len(inner := edge[1:-1]) else int(edge[-1])
                    for edge in edges)
    z = zarr.open_array(str(path), mode="w", shape=out.shape, chunks=(out.shape[0], *zchunks), dtype="float32",
                        fill_value=float("nan"))
    blocks = [(i, j) for i in range(len(ry)) for j in range(len(rx))]
    bar = tqdm(total=len(blocks), desc="predict", unit="block", disable=not progress, leave=False)
    for k in range(0, len(blocks), max(1, batch)):
        part = blocks[k:k + max(1, batch)]
        values = dask.compute(*[out.blocks[0, i, j] for i, j in part])
        for (i, j), v in zip(part, values):
            (y0, y1), (x0, x1) = edges[0][i:i + 2], edges[1][j:j + 2]
            z[:, y0:y1, x0:x1] = v
        bar.update(len(part))
    bar.close()
    return da.from_zarr(str(path), chunks=out.chunks)


def seam_metric(prob_a: np.ndarray, prob_b: np.ndarray, where: np.ndarray) -> dict[str, float]:
    """Median and 99th percentile of |p_a − p_b| / mean(p_a, p_b) over ``where`` (finite in both)."""
    m = where & np.isfinite(prob_a) & np.isfinite(prob_b)
    a, b = prob_a[m].astype(np.float64), prob_b[m].astype(np.float64)
    rel = np.abs(a - b) / np.maximum((a + b) / 2, 1e-12)
    return {"pixels": int(m.sum()), "median": float(np.median(rel)), "p99": float(np.quantile(rel, 0.99))}
