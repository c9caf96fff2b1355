#!/usr/bin/env python3
"""Tiling at scale: the demo's real rasters and vectors MOSAICKED k × k times (--scales 1 4 16: 1×, 4×, 16×
the area; a mosaic, not a bigger real region), tiled end to end (stack + chips) with distances capped
and computed block by block. Prints, in one run, for each scale:

* seconds and peak RSS of the whole tile stage (stack and chip store; threads scheduler, one process)
  and the bench's first chip store after it, and the RSS growth from one scale to the next (target 4× →
  16×: ≤ 1.25×); the last column is the peak at the end of the tile stage alone;
* chips/s building the chip store (``tiles.write_chip_store`` again from the written stack.zarr: the
  band statistics and every chip written) against the limit, a raw rasterio loop over the same chip
  windows of the same layers pre-aligned in one tiled GeoTIFF on the same disk, each window read and
  copied into a memory-mapped array (ratio target ≥ 0.8): the two alternate ``REPEATS`` times and their
  median seconds are compared (a single pair swings ±50 % on a shared machine);
* the same tile stage on a LocalCluster (--cluster-scales, --workers processes × 1 thread) beside the
  threads scheduler.

Each raster becomes a GDAL VRT placing the demo file k × k times (no copy), 108 km × 90 km apart (a
multiple of every input's pixel size; the gaps are nodata); each vector layer is written k × k times,
translated the same way. Both chip reads come warm from the page cache (each file was just written).

    OMP_NUM_THREADS=1 python bench/bench_tile_scale.py [--scales 1 4 16] [--cluster-scales 1] [--workers 2]
                                                       [--cap 10000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "guadeloupe"
CONFIG = ROOT / "configs" / "guadeloupe-demo.yaml"
STEP_X, STEP_Y = 108_000.0, 90_000.0  # metres between copies: multiples of 30, 90, 1000 m
#: the chip store and the raw loop are timed alternately this many times; the medians are compared
REPEATS = 3
RASTERS = ["forest/fcc12345.tif", "altitude.tif", "slope.tif", "emissions/AGB.tif"]
VECTORS = ["roads_PROJ.shp", "rivers_PROJ.shp", "towns_PROJ.shp", "ctry_PROJ.shp"]


def mosaic_raster(src_path: Path, dst: Path, k: int) -> None:
    import rasterio

    with rasterio.open(src_path) as src:
        t, w, h = src.transform, src.width, src.height
        dtype, nodata, crs = src.dtypes[0], src.nodata, src.crs.to_wkt()
    dx, dy = int(round(STEP_X / t.a)), int(round(STEP_Y / -t.e))
    vtype = {"uint8": "Byte", "int16": "Int16", "float32": "Float32"}[dtype]
    sources = "".join(
        f"""<ComplexSource><SourceFilename relativeToVRT="0">{src_path}</SourceFilename><SourceBand>1</SourceBand>
<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="{j * dx}" yOff="{i * dy}" xSize="{w}" ySize="{h}"/>
<NODATA>{nodata}</NODATA></ComplexSource>"""
        for i in range(k) for j in range(k))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(f"""<VRTDataset rasterXSize="{dx * (k - 1) + w}" rasterYSize="{dy * (k - 1) + h}">
<SRS>{crs.replace('"', '&quot;')}</SRS><GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>
<VRTRasterBand dataType="{vtype}" band="1"><NoDataValue>{nodata}</NoDataValue>{sources}</VRTRasterBand>
</VRTDataset>""")


def mosaic_vector(src_path: Path, dst: Path, k: int) -> None:
    import geopandas as gpd
    import pandas as pd

    gdf = gpd.read_file(src_path)
    parts = []
    for i in range(k):
        for j in range(k):
            part = gdf.copy()
            part["geometry"] = gdf.geometry.translate(j * STEP_X, -i * STEP_Y)
            if "name" in part.columns and k > 1:
                part["name"] = part["name"].astype(str) + f" {i}{j}"
            parts.append(part)
    gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=gdf.crs).to_file(dst.with_suffix(".gpkg"))


def make_region(work: Path, k: int, cap: float) -> Path:
    import yaml

    folder = work / f"mosaic{k}x{k}"
    if folder.exists():
        shutil.rmtree(folder)
    for r in RASTERS:
        mosaic_raster(DEMO / r, folder / Path(r).with_suffix(".vrt"), k)
    for v in VECTORS:
        mosaic_vector(DEMO / v, folder / v, k)
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["name"] = f"mosaic{k}x{k}"
    cfg["data_dir"] = str(folder)
    cfg["output_dir"] = str(folder / "run")
    cfg["grid"] = {"reference": "forest/fcc12345.vrt"}
    L = cfg["layers"]
    L["forest_change"]["path"] = "forest/fcc12345.vrt"
    L["rasters"] = {n: {**r, "path": str(Path(r["path"]).with_suffix(".vrt"))} for n, r in L["rasters"].items()}
    L["eco_weight"] = {**L["eco_weight"], "path": "emissions/AGB.vrt"}
    L["distance_to"] = {n: str(Path(p).with_suffix(".gpkg")) for n, p in L["distance_to"].items()}
    L["outline"] = "ctry_PROJ.gpkg"
    L["zones"] = {**L["zones"], "path": "towns_PROJ.gpkg"}
    L["distance_cap_m"] = cap
    path = folder / "region.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def aligned_tif(stack_path: Path, work: Path) -> Path:
    """The train period's layers pre-aligned in one tiled, compressed GeoTIFF on the same disk (the raw loop's
    input), written in strips so the bench itself stays out of core."""
    import numpy as np
    import rasterio
    import xarray as xr
    from rasterio.windows import Window

    stack = xr.open_zarr(stack_path).sel(period="train")
    layers = [stack["features"].sel(band=b) for b in stack.band.values]
    layers += [stack[v] for v in ("label", "valid", "eco", "zone")]
    h, w = stack.sizes["y"], stack.sizes["x"]
    tif = work / "aligned.tif"
    profile = dict(driver="GTiff", width=w, height=h, count=len(layers), dtype="float32", tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", predictor=1, crs=stack.rio.crs,
                   transform=stack.rio.transform(), interleave="pixel")
    with rasterio.open(tif, "w", **profile) as dst:
        for y0 in range(0, h, 512):
            y1 = min(h, y0 + 512)
            strip = np.stack([np.asarray(a[y0:y1].values, dtype="float32") for a in layers])
            dst.write(strip, window=Window(0, y0, w, y1 - y0))
    return tif


def raw_window_loop(tif: Path, index, size: int, work: Path) -> float:
    """The limit: each chip window of the aligned GeoTIFF read with rasterio and copied into a memory-mapped
    array (no statistics, no Zarr). Returns the seconds."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(tif) as src:
        count = src.count
    out = np.lib.format.open_memmap(work / "raw_chips.npy", mode="w+", dtype="float32",
                                    shape=(len(index), count, size, size))
    t0 = time.perf_counter()
    with rasterio.open(tif) as src:
        for i, (r, c) in enumerate(zip(index.row_px, index.col_px)):
            out[i] = src.read(window=Window(int(c), int(r), size, size))
    out.flush()
    seconds = time.perf_counter() - t0
    del out
    (work / "raw_chips.npy").unlink()
    return seconds


def tile_once(config: Path, scheduler: str, workers: int, raw: bool) -> dict:
    import logging

    import geopandas as gpd

    from geo_risk.config import load_config
    from geo_risk.tiling import run_tile
    from tiles import open_store, write_chip_store
    from tiles.scheduler import use_scheduler

    logging.basicConfig(level=logging.WARNING)
    overrides = {"dask": {"scheduler": scheduler, "workers": workers}}
    cfg = load_config(config, overrides)
    t0 = time.perf_counter()
    result = run_tile(cfg, force=True)
    tile_s = time.perf_counter() - t0
    stack = open_store(result.stack, "layer stack")
    row = {"scheduler": scheduler, "tile_s": round(tile_s, 1), "grid_px": int(stack.sizes["y"] * stack.sizes["x"]),
           "chips": result.num_train + result.num_val + result.num_test,
           "tile_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # tile stage only
    if raw:  # chips/s of the chip store and of the raw loop on the same chips, alternated REPEATS times
        index = gpd.read_parquet(result.chips / "index.parquet")
        size = cfg.chips.size_px
        store_s, raw_s = [], []
        for _ in range(REPEATS):
            with use_scheduler(cfg.dask):
                t0 = time.perf_counter()
                write_chip_store(stack, "train", index, config.parent / "bench_chips.zarr", size)
                store_s.append(time.perf_counter() - t0)
            shutil.rmtree(config.parent / "bench_chips.zarr")
            if not raw_s:  # peak RSS of the tile stage and the chip store, before the bench's own
                # pre-aligned GeoTIFF (written in strips whose size grows with the mosaic's width)
                row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                tif = aligned_tif(result.stack, config.parent)
            raw_s.append(raw_window_loop(tif, index, size, config.parent))
        tif.unlink()
        store, limit = statistics.median(store_s), statistics.median(raw_s)
        row |= {"store_s": [round(t, 2) for t in store_s], "store_chips_per_s": round(len(index) / store, 1),
                "raw_s": [round(t, 2) for t in raw_s], "raw_chips_per_s": round(len(index) / limit, 1)}
    else:
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


def run(config: Path, scheduler: str, workers: int, raw: bool) -> dict:
    cmd = [sys.executable, __file__, "--tile", str(config), "--scheduler", scheduler, "--workers", str(workers)]
    out = subprocess.run(cmd + (["--raw"] if raw else []), capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 4, 16], help="areas: 1, 4, 16 (squares)")
    ap.add_argument("--cluster-scales", type=int, nargs="*", default=None,
                    help="scales also tiled on a LocalCluster (default: the smallest)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--cap", type=float, default=10_000.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_tile_scale"))
    ap.add_argument("--tile", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--scheduler", default="threads", help=argparse.SUPPRESS)
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.tile:
        print(json.dumps(tile_once(a.tile, a.scheduler, a.workers, a.raw)))
        return
    cluster_scales = a.cluster_scales if a.cluster_scales is not None else a.scales[:1]
    rows, cluster = [], {}
    for scale in a.scales:
        k = math.isqrt(scale)
        if k * k != scale:
            sys.exit(f"--scales {scale}: give square areas (1, 4, 16, …): the demo is mosaicked k × k")
        config = make_region(a.work, k, a.cap)
        rows.append({"scale": scale, **run(config, "threads", a.workers, raw=True)})
        print(json.dumps(rows[-1]), flush=True)
        if scale in cluster_scales:
            cluster[scale] = run(config, "local_cluster", a.workers, raw=False)
            print(json.dumps({"scale": scale, **cluster[scale]}), flush=True)
        shutil.rmtree(a.work / f"mosaic{k}x{k}", ignore_errors=True)
    print(f"\ndemo mosaicked k × k (a mosaic, not a larger real region), distances capped at {a.cap:g} m, "
          "block by block; threads scheduler")
    print("area  grid_px      chips  tile_s  peak_RSS_MB  RSS vs prev  store chips/s  raw chips/s  store/raw"
          "  tile stage alone: peak_RSS_MB")
    prev = None
    for r in rows:
        growth = f"{r['peak_rss_mb'] / prev['peak_rss_mb']:.2f}×" if prev else "—"
        print(f"{r['scale']:>3}×  {r['grid_px']:>11,}  {r['chips']:>5}  {r['tile_s']:>6}  {r['peak_rss_mb']:>11}  "
              f"{growth:>11}  {r['store_chips_per_s']:>13}  {r['raw_chips_per_s']:>11}  "
              f"{r['store_chips_per_s'] / r['raw_chips_per_s']:>9.2f}  {r['tile_peak_rss_mb']:>29}")
        prev = r
    if cluster:
        print(f"\nthe same tile stage: threads (one process) vs LocalCluster ({a.workers} worker processes × 1 "
              "thread); client-process peak RSS only for the cluster")
        print("area  threads_s  local_cluster_s  cluster/threads")
        for r in rows:
            if r["scale"] in cluster:
                c = cluster[r["scale"]]
                print(f"{r['scale']:>3}×  {r['tile_s']:>9}  {c['tile_s']:>15}  {c['tile_s'] / r['tile_s']:>15.2f}")


if __name__ == "__main__":
    main()
