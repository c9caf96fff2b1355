"""COG export against a plain GeoTIFF write of the same raster, side by side in one run.

    python bench/bench_export.py --risk runs/guadeloupe-demo/risk.tif [--repeat 3]

Reads a probability raster (the demo's risk.tif), then writes it (a) as a plain tiled, DEFLATE
GeoTIFF with rasterio in one call and (b) with geo-risk's block-by-block COG writer
(`geo_risk.export.write_cog_blocks`: tiled source + GDAL's COG driver with overviews), and prints
the median seconds of each and their ratio, with the file sizes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio

from geo_risk.export import write_cog_blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--risk", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with rasterio.open(args.risk) as src:
        arr, crs, transform = src.read(1), src.crs, src.transform
    lazy = da.from_array(arr, chunks=1024)
    times: dict[str, list[float]] = {"plain GeoTIFF (rasterio, tiled, DEFLATE)": [], "COG, block by block": []}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # interleaved, so both see the same machine
            plain = Path(tmp) / "plain.tif"
            t = time.perf_counter()
            with rasterio.open(plain, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                               dtype=arr.dtype, crs=crs, transform=transform, nodata=np.nan, tiled=True,
                               blockxsize=512, blockysize=512, compress="DEFLATE", predictor=3) as dst:
                dst.write(arr, 1)
            times["plain GeoTIFF (rasterio, tiled, DEFLATE)"].append(time.perf_counter() - t)
            sizes["plain GeoTIFF (rasterio, tiled, DEFLATE)"] = plain.stat().st_size
            cog = Path(tmp) / "cog.tif"
            t = time.perf_counter()
            write_cog_blocks(cog, lazy, crs, transform, nodata=np.nan)
            times["COG, block by block"].append(time.perf_counter() - t)
            sizes["COG, block by block"] = cog.stat().st_size
    print(f"{arr.shape[0]}×{arr.shape[1]} float32, {args.repeat} interleaved repeats\n")
    print("| writer | median s | MB |\n|---|---|---|")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in times:
        print(f"| {k} | {med[k]:.2f} | {sizes[k] / 1e6:.1f} |")
    base = med["plain GeoTIFF (rasterio, tiled, DEFLATE)"]
    print(f"\nCOG / plain: {med['COG, block by block'] / base:.2f}× (the COG adds overviews and the COG layout)")


if __name__ == "__main__":
    main()
