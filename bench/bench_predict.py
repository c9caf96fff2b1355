"""Seams and speed of region inference, measured side by side in one run on a trained run folder.

    python bench/bench_predict.py --run runs/guadeloupe-demo [--variants all|default]

For each variant, the same checkpoint predicts the forecast period twice, the second time with
the block (or window) grid shifted by half a block; the seam metric is the median and 99th
percentile of |p_a − p_b| / mean(p_a, p_b) over the valid pixels (target: ≤ 2 % and ≤ 10 %).
Also printed: wall time of the region inference against the sum of the pure forward passes over
the same blocks (target ≤ 1.20), and the legacy scheme (windows of 256 px, 64 px linear taper,
zero padding at the region's edges; what geo-risk did before) for comparison.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dask  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.special import expit  # noqa: E402

from geo_risk.config import load_config  # noqa: E402
from geo_risk.model import load_checkpoint  # noqa: E402
from geo_risk.paths import RunPaths  # noqa: E402
from geo_risk.predict.blocks import infer_blocks, predict_window, seam_metric, store_blocks  # noqa: E402
from tiles import open_store  # noqa: E402
from tiles.chips import normalise, window_starts  # noqa: E402


def legacy(model, feats, valid, bands, stats, temperature, size=256, overlap=64, offset=0):
    """The pre-0.2 scheme: 256 px windows, 64 px linear taper, windows flush inside the region."""
    h, w = valid.shape
    stride = size - overlap
    ramp = np.ones(size, np.float32)
    edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
    ramp[:overlap], ramp[-overlap:] = edge, edge[::-1]
    weight = np.outer(ramp, ramp)

    def starts(n):
        s = window_starts(n, size, stride) if not offset else sorted(
            {0, *range(offset, n - size + 1, stride), n - size})
        return s

    acc, wsum = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    with torch.inference_mode():
        for r in starts(h):
            for c in starts(w):
                if not valid[r:r + size, c:c + size].any():
                    continue
                x = normalise(feats[:, r:r + size, c:c + size], bands, stats)
                lg = model(torch.from_numpy(x)[None]).float()[0, 0].numpy() / temperature
                acc[r:r + size, c:c + size] += lg * weight
                wsum[r:r + size, c:c + size] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return expit(acc / wsum)


def forward_only(model, feats, valid, bands, stats, out, halo: int, tta: int) -> float:
    """Seconds of the bare forward passes over the blocks of ``out`` with their halos, nothing else."""
    total = 0.0
    h, w = valid.shape
    for (ys, xs) in _block_slices(out):
        if not valid[ys, xs].any():
            continue
        # the same input size as the block with its halo (mirrored at the region's edges)
        y0, x0 = max(0, ys.start - halo), max(0, xs.start - halo)
        y1, x1 = min(h, ys.stop + halo), min(w, xs.stop + halo)
        x = normalise(feats[:, y0:y1, x0:x1], bands, stats)
        x = np.pad(x, ((0, 0), (0, ys.stop - ys.start + 2 * halo - (y1 - y0)),
                       (0, xs.stop - xs.start + 2 * halo - (x1 - x0))), mode="symmetric")
        t = time.perf_counter()
        predict_window(model, x, tta=tta)
        total += time.perf_counter() - t
    return total


def _block_slices(arr):
    rows, cols = np.cumsum((0, *arr.chunks[1])), np.cumsum((0, *arr.chunks[2]))
    for i in range(len(rows) - 1):
        for j in range(len(cols) - 1):
            yield slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder with tiles/ and model.pt")
    ap.add_argument("--config", default="configs/guadeloupe-demo.yaml")
    ap.add_argument("--variants", default="all", choices=["all", "default"])
    ap.add_argument("--only", default="", help="comma-separated BLOCK:HALO:TTA variants instead of the list")
    ap.add_argument("--no-legacy", action="store_true", help="skip the legacy windows")
    args = ap.parse_args()
    cfg = load_config(args.config, {"output_dir": args.run})
    paths = RunPaths(cfg.run_dir)
    model, meta = load_checkpoint(paths.checkpoint)
    sel = open_store(paths.stack, "layer stack").sel(period="forecast")
    feats = sel["features"].values
    valid = sel["valid"].values.astype(bool)
    print(f"forecast grid {valid.shape[0]}×{valid.shape[1]}, {valid.sum():,} valid pixels, "
          f"{torch.get_num_threads()} torch threads\n")
    print("| scheme | seam median | seam p99 | inference s | forward-only s | ratio |")
    print("|---|---|---|---|---|---|")
    if args.variants == "all" and not args.no_legacy:
        t = time.perf_counter()
        pa = legacy(model, feats, valid, meta.bands, meta.band_stats, meta.temperature)
        secs = time.perf_counter() - t
        pb = legacy(model, feats, valid, meta.bands, meta.band_stats, meta.temperature, offset=96)
        s = seam_metric(pa, pb, valid)
        print(f"| legacy windows 256, linear taper 64, zero padding | {s['median']:.2%} | {s['p99']:.2%} | "
              f"{secs:.1f} | – | – |")
    pc = cfg.predict
    variants = [(pc.block_px, pc.halo_px, pc.tta)]
    if args.only:
        variants = [tuple(int(v) for v in item.split(":")) for item in args.only.split(",")]
    elif args.variants == "all":
        variants = [(512, 0, 1), (512, 32, 1), (512, 64, 1), (512, 96, 1), (1024, 64, 1), (1024, 96, 1),
                    (1024, 64, 4), (1024, 64, 8)]
    for block, halo, tta in variants:
        def run(offset):
            out = infer_blocks(model, sel["features"].data, sel["valid"].data, meta.bands, meta.band_stats,
                               block_px=block, halo_px=halo, tta=tta, temperature=meta.temperature, offset=offset)
            # as `geo-risk predict` does: block by block into a scratch Zarr (store_blocks), read back
            with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp, \
                    dask.config.set(scheduler="threads", num_workers=1):
                stored = store_blocks(out, Path(tmp) / "logits.zarr", progress=False)
                return out, expit(stored[0].compute())

        t = time.perf_counter()
        out, pa = run((0, 0))
        secs = time.perf_counter() - t
        _, pb = run((block // 2, block // 2))
        s = seam_metric(pa, pb, valid)
        fwd = forward_only(model, feats, valid, meta.bands, meta.band_stats, out, halo, tta)
        ratio = f"{secs / fwd:.2f}" if np.isfinite(fwd) else "–"
        print(f"| blocks {block}, halo {halo}, {tta} view(s) | {s['median']:.2%} | {s['p99']:.2%} | {secs:.1f} | "
              f"{fwd:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
