#!/usr/bin/env python3
"""Positive-aware chip sampling on the demo: how many chips each ``chips.negative_keep`` keeps.

Tiles the demo once (or takes ``--stack`` of a run already tiled), then builds the chip index of the
train period with the demo's chip settings for each setting: every chip with a loss pixel is kept, that
share of the chips without, each with the weight 1/negative_keep. Prints the candidates, the chips with
and without loss kept, the split, and the re-weighted count of negative chips (≈ the population's).

    OMP_NUM_THREADS=1 python bench/bench_tile_sampling.py [--keep 1 0.5 0.25 0.1] [--stack RUN/tiles/stack.zarr]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "guadeloupe-demo.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=float, nargs="*", default=[1.0, 0.5, 0.25, 0.1])
    ap.add_argument("--stack", type=Path, help="a tiled run's tiles/stack.zarr (default: tile the demo now)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from geo_risk.config import load_config
    from tiles import chip_index, open_store

    stack_path = a.stack
    if stack_path is None:
        from geo_risk.tiling import run_tile

        run = Path(tempfile.mkdtemp(prefix="bench_sampling-")) / "run"
        t0 = time.perf_counter()
        stack_path = run_tile(load_config(CONFIG, {"output_dir": str(run)})).stack
        print(f"tiled the demo in {time.perf_counter() - t0:.0f} s → {stack_path}")
    c = load_config(CONFIG).chips
    stack = open_store(stack_path, "layer stack")
    print(f"demo, train period, chips of {c.size_px} px every {c.stride_px} px, ≥ {c.min_valid_fraction:.0%} forest, "
          f"blocks {c.block_size_px} px, val {c.val_fraction:g}, buffer {c.buffer_px} px, seed {c.seed}")
    print("negative_keep  candidates  with_loss  without_loss_kept  chips  train  val  buffer  "
          "reweighted_negatives  seconds")
    for keep in a.keep:
        t0 = time.perf_counter()
        index = chip_index(stack, "train", c.size_px, c.stride_px, c.min_valid_fraction, c.block_size_px,
                           c.val_fraction, c.buffer_px, c.seed, c.max_chips, keep)
        s = index.attrs["sampling"]
        counts = index.split.value_counts()
        negative = index.positive_fraction == 0
        print(f"{keep:>13g}  {s['candidates']:>10}  {s['positive']:>9}  {s['negative_kept']:>8} of {s['negative']:<6}  "
              f"{len(index):>5}  {counts.get('train', 0):>5}  {counts.get('val', 0):>3}  {counts.get('buffer', 0):>6}  "
              f"{index.weight[negative].sum():>20.0f}  {time.perf_counter() - t0:>7.1f}")


if __name__ == "__main__":
    main()
