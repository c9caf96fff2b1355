#!/usr/bin/env python3
"""Distances on the demo grid: the whole-grid exact EDT against the capped, block-by-block one
(tiles/blockwise.py, ``layers.distance_cap_m``), each in its own process: seconds, peak RSS, and the
agreement (identical below the cap, the cap above it). Ratios, not pass/fail.

    OMP_NUM_THREADS=1 python bench/bench_tile_distances.py [--caps 1000 3000 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "guadeloupe"


def one(cap: float | None, out: Path) -> dict:
    """Roads, towns, rivers, forest edge 2010 and past loss 2005–10 on the demo grid, saved to ``out``."""
    import dask
    import dask.array as da
    import numpy as np
    import rasterio

    from tiles.blockwise import burn_blocks, capped_distance
    from tiles.grid import grid_from_raster
    from tiles.layers import distance_to, distance_to_edge
    from tiles.vectors import read_vector

    grid = grid_from_raster(DEMO / "forest" / "fcc12345.tif")
    res = grid.resolution_m
    with rasterio.open(DEMO / "forest" / "fcc12345.tif") as src:
        codes = da.from_array(src.read(1), chunks=1024)
    t0 = time.perf_counter()
    layers = {}
    for name in ("roads", "towns", "rivers"):
        gdf = read_vector(DEMO / f"{name}_PROJ.shp", grid, name)
        mask = burn_blocks(gdf.geometry, grid)
        layers[name] = (da.from_delayed(dask.delayed(distance_to)(mask, res), grid.shape, "float32") if cap is None
                        else capped_distance(mask, res, cap))
    forest = da.isin(codes, [3, 4, 5])
    past = codes == 2
    layers["edge"] = (da.from_delayed(dask.delayed(distance_to_edge)(forest, res), grid.shape, "float32")
                      if cap is None else capped_distance(forest, res, cap, of_unset=True, beyond=1))
    layers["past_loss"] = (da.from_delayed(dask.delayed(distance_to)(past, res), grid.shape, "float32")
                           if cap is None else capped_distance(past, res, cap))
    with dask.config.set(scheduler="threads"):
        arrays = dask.compute(layers)[0]
    seconds = time.perf_counter() - t0
    np.savez(out, **arrays)
    return {"cap_m": cap, "seconds": round(seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--caps", type=float, nargs="*", default=[1000.0, 3000.0, 10000.0])
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_tile_distances"))
    a = ap.parse_args()
    if a.whole or a.one is not None:
        print(json.dumps(one(None if a.whole else a.one, a.out)))
        return
    import numpy as np

    a.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for cap in [None, *a.caps]:
        npz = a.out / f"{'whole' if cap is None else int(cap)}.npz"
        args = [sys.executable, __file__, "--out", str(npz)] + (["--whole"] if cap is None else ["--one", str(cap)])
        runs.append(json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout))
        runs[-1]["npz"] = npz
    whole = np.load(runs[0]["npz"])
    print(f"demo grid 3340 × 2958 px, 5 distance layers; whole grid: {runs[0]['seconds']} s, "
          f"peak RSS {runs[0]['peak_rss_mb']} MB")
    print("cap_m  seconds  time/whole  peak_RSS_MB  RSS/whole  max|Δ| below cap  pixels at the cap")
    for r in runs[1:]:
        got = np.load(r["npz"])
        cap = np.float32(r["cap_m"])
        worst, capped = 0.0, 0
        for k in whole.files:
            w, g = whole[k], got[k]
            below = w < cap
            worst = max(worst, float(np.abs(g[below] - w[below]).max()))
            assert (g[~below] == cap).all(), k
            capped += int((~below).sum())
        print(f"{r['cap_m']:>6.0f} {r['seconds']:>8.2f} {r['seconds'] / runs[0]['seconds']:>11.2f} "
              f"{r['peak_rss_mb']:>12.1f} {r['peak_rss_mb'] / runs[0]['peak_rss_mb']:>10.2f} {worst:>17g} "
              f"{capped / (len(whole.files) * whole[whole.files[0]].size):>18.1%}")


if __name__ == "__main__":
    main()
