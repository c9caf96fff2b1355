#!/usr/bin/env python3
"""Tiling at scale: the demo's real rasters and vectors MOSAICKED k × k times (k = 1, 2, 4: 1×, 4×, 16×
the area; a mosaic, not a bigger real region), tiled end to end (stack + chips) with distances capped
and computed block by block. Prints seconds, peak RSS and their ratios between sizes; no pass/fail.

Each raster becomes a GDAL VRT placing the demo file k × k times (no copy), 108 km × 90 km apart (a
multiple of every input's pixel size; the gaps are nodata); each vector layer is written k × k times,
translated the same way.

    OMP_NUM_THREADS=1 python bench/bench_tile_scale.py [--sizes 1 2 4] [--cap 10000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "guadeloupe"
CONFIG = ROOT / "configs" / "guadeloupe-demo.yaml"
STEP_X, STEP_Y = 108_000.0, 90_000.0  # metres between copies: multiples of 30, 90, 1000 m
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


def tile_once(config: Path) -> dict:
    import logging

    from geo_risk.config import load_config
    from geo_risk.tiling import run_tile

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(config)
    t0 = time.perf_counter()
    result = run_tile(cfg)
    import xarray as xr

    stack = xr.open_zarr(result.stack)
    return {"seconds": round(time.perf_counter() - t0, 1), "grid_px": int(stack.sizes["y"] * stack.sizes["x"]),
            "chips": result.num_train + result.num_val,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--cap", type=float, default=10_000.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_tile_scale"))
    ap.add_argument("--tile", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.tile:
        print(json.dumps(tile_once(a.tile)))
        return
    rows = []
    for k in a.sizes:
        config = make_region(a.work, k, a.cap)
        out = subprocess.run([sys.executable, __file__, "--tile", str(config)], capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        rows.append({"k": k, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(a.work / f"mosaic{k}x{k}" / "run", ignore_errors=True)
    print(f"demo mosaicked k × k, distances capped at {a.cap:g} m, block by block")
    print("area  grid_px      chips  seconds  peak_RSS_MB  RSS vs previous  s/Mpx")
    prev = None
    for r in rows:
        growth = f"{r['peak_rss_mb'] / prev['peak_rss_mb']:.2f}×" if prev else "—"
        print(f"{r['k'] ** 2:>3}×  {r['grid_px']:>11,}  {r['chips']:>5}  {r['seconds']:>7}  {r['peak_rss_mb']:>11}  "
              f"{growth:>15}  {r['seconds'] / r['grid_px'] * 1e6:.2f}")
        prev = r


if __name__ == "__main__":
    main()
