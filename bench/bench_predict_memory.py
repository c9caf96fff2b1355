"""Peak memory of `geo-risk predict` on the demo and on a 2×2 mosaic of it (4× the pixels).

    python bench/bench_predict_memory.py --run runs/guadeloupe-demo [--tta 1]

The mosaic is the demo's own layer stack repeated 2 × 2 (a mosaic of real data, not a new
region), written beside a copy of the run's checkpoint, so the model, bands and statistics are
the same. Each prediction runs in its own process; its peak resident memory (ru_maxrss) is read
when it ends. Target (issue "Maps people can act on"): growth from 1× to 4× ≤ 1.25.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from geo_risk.config import load_config
from geo_risk.predict import run_predict
cfg = load_config(sys.argv[1], {"output_dir": sys.argv[2], "predict": {"tta": int(sys.argv[3])}})
t = time.perf_counter()
res = run_predict(cfg)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def mosaic_run(run: Path, out: Path) -> Path:
    """A run folder whose stack is the 2×2 mosaic of ``run``'s, with the same checkpoint."""
    import dask.array as da
    import numpy as np
    import xarray as xr
    from affine import Affine

    from tiles import open_store
    from tiles.store import write_stack

    stack = open_store(run / "tiles" / "stack.zarr", "layer stack")
    t = stack.rio.transform()
    h, w = stack.sizes["y"], stack.sizes["x"]
    tile2 = {name: da.concatenate([da.concatenate([v.data, v.data], axis=-1)] * 2, axis=-2)
             for name, v in stack.data_vars.items() if {"y", "x"} <= set(v.dims)}
    coords = {"period": stack.period.values, "band": stack.band.values,
              "y": t.f + (0.5 + np.arange(2 * h)) * t.e, "x": t.c + (0.5 + np.arange(2 * w)) * t.a}
    ds = xr.Dataset({k: (stack[k].dims, v) for k, v in tile2.items()}, coords=coords, attrs=dict(stack.attrs))
    ds = ds.chunk({"y": 1024, "x": 1024})  # Zarr needs uniform chunks; the concatenation left ragged ones
    ds = ds.rio.write_crs(stack.rio.crs).rio.write_transform(Affine(t.a, 0, t.c, 0, t.e, t.f))
    (out / "tiles").mkdir(parents=True)
    write_stack(ds, out / "tiles" / "stack.zarr", progress=False)
    shutil.copy(run / "model.pt", out / "model.pt")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="a run folder with tiles/ and model.pt")
    ap.add_argument("--config", default="configs/guadeloupe-demo.yaml")
    ap.add_argument("--tta", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        one = Path(tmp) / "x1"
        (one / "tiles").mkdir(parents=True)
        shutil.copytree(args.run / "tiles" / "stack.zarr", one / "tiles" / "stack.zarr")
        shutil.copy(args.run / "model.pt", one / "model.pt")
        t = time.perf_counter()
        four = mosaic_run(args.run, Path(tmp) / "x4")
        print(f"mosaic written in {time.perf_counter() - t:.0f} s")
        rows = {}
        for name, folder in (("1× demo", one), ("4× mosaic", four)):
            out = subprocess.run([sys.executable, "-c", CHILD, args.config, str(folder), str(args.tta)],
                                 capture_output=True, text=True, check=True)
            rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n| region | pixels | predict s | peak RSS MB |\n|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {'1×' if '1' in name else '4×'} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
        growth = rows["4× mosaic"]["peak_rss_mb"] / rows["1× demo"]["peak_rss_mb"]
        print(f"\npeak RSS growth 1× → 4×: {growth:.2f} (target ≤ 1.25)")


if __name__ == "__main__":
    main()
