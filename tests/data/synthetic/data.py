#!/usr/bin/env python3
"""Generate the tiny synthetic region the stage tests run on (as TorchGeo's tests/data/*/data.py do).

    python tests/data/synthetic/data.py OUTDIR      # writes the files and OUTDIR/region.yaml

A 96 × 96 px region at 30 m in EPSG:32620 (UTM 20N), laid out so that every derived layer can be
counted or measured by hand. Rows ``r`` and columns ``c`` are pixel indices of the reference grid
(row 0 at the top); pixel (r, c) has its centre at ``(X0 + (c + .5)·30, Y0 − (r + .5)·30)``.

Forest-change codes (forestatrisk style, as in the demo: 0 non-forest/nodata, 1 lost 2000–05,
2 lost 2005–10, 3 lost 2010–15, 5 forest in 2020):

* ``c < 8``                           → 0  farmland (768 px)
* ``c in 39..41`` and ``c in 75..77``   → 1  two road corridors, cleared 2000–05 (576 px)
* the 3 columns on each side of each corridor (``c in 36..38, 42..44, 72..74, 78..80``), by bands
  of 12 rows: ``(r // 12)`` even → 2 (lost 2005–10, 576 px), odd → 3 (lost 2010–15, 576 px)
* everything else                     → 5  forest (6,720 px)

Other layers:

* ``dem.tif``  60 m (48 × 48), a plane ``z = 100 + 0.05·(x − X0) + 0.02·(Y0 − y)`` m sampled at the
  60 m pixel centres (bilinear resampling onto the 30 m grid reproduces the plane exactly inside);
  the 60 m pixels of rows 0–3, columns 44–47 (30 m rows 0–7, columns 88–95) are nodata (−9999).
* ``eco.tif``  30 m on the reference grid, biomass ``50 + 2·c`` Mg/ha.
* ``roads.geojson``   two north–south roads through the centres of columns 40 and 76 (the whole
  height) and an east–west road through the centres of row 24 from beyond the west edge to column 40.
* ``rivers.geojson``  an east–west river through the centres of row 66.
* ``towns.geojson``   three towns at the centres of pixels (20, 20), (70, 60), (50, 85).
* ``outline.geojson`` the land: every pixel of rows 0–89; rows 90–95 are forest outside it.
* ``zones.gpkg``      three territories with a ``name`` field: West (c < 32), Centre (32 ≤ c < 64),
  East (c ≥ 64), the whole height.

Vectors are GeoJSON (byte-for-byte deterministic) except the zones, a GeoPackage like the
territory layers users give.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

CRS = "EPSG:32620"
SIZE = 96  # px
RES = 30.0  # m
X0, Y0 = 639_990.0, 1_800_000.0  # top-left corner, on multiples of 30 m (an aligned grid from bounds is this one)
DEM_RES = 60.0
DEM_NODATA = -9999.0
NONFOREST_COLS = 8
ROAD_COLS = (40, 76)  # north–south roads through these columns' centres, the whole height
ROAD_ROW = 24  # east–west road through this row's centres, from beyond the west edge to ROAD_COLS[0]
CORRIDOR_HALF = 1  # code 1 within 1 column of a north–south road
FLANK_WIDTH = 3  # codes 2 / 3 on the next 3 columns on each side of a corridor
BAND_ROWS = 12
RIVER_ROW = 66
TOWNS = {"Anse": (20, 20), "Bourg": (70, 60), "Capesterre": (50, 85)}  # name: (row, col)
LAND_ROWS = 90  # the outline holds rows [0, 90)
DEM_NODATA_60M = (slice(0, 4), slice(44, 48))  # 60 m rows/cols that are nodata
ZONES = {"West": (0, 32), "Centre": (32, 64), "East": (64, 96)}  # name: columns [start, stop)


def centre(row: float, col: float) -> tuple[float, float]:
    """Map coordinates of the centre of pixel (row, col) of the 30 m grid."""
    return X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES


def forest_change_codes() -> np.ndarray:
    """The uint8 code raster described in the module docstring."""
    codes = np.full((SIZE, SIZE), 5, dtype=np.uint8)
    codes[:, :NONFOREST_COLS] = 0
    band_code = np.where((np.arange(SIZE) // BAND_ROWS) % 2 == 0, 2, 3).astype(np.uint8)
    for col in ROAD_COLS:
        codes[:, col - CORRIDOR_HALF:col + CORRIDOR_HALF + 1] = 1
        for c0 in (col - CORRIDOR_HALF - FLANK_WIDTH, col + CORRIDOR_HALF + 1):
            codes[:, c0:c0 + FLANK_WIDTH] = band_code[:, None]
    return codes


def dem_plane(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elevation (m) of the DEM's plane at map coordinates."""
    return 100.0 + 0.05 * (x - X0) + 0.02 * (Y0 - y)


def dem_values() -> np.ndarray:
    """The 60 m DEM (float32), nodata where DEM_NODATA_60M says."""
    n = int(SIZE * RES / DEM_RES)
    j = np.arange(n)
    x = X0 + (j + 0.5) * DEM_RES
    y = Y0 - (j + 0.5) * DEM_RES
    dem = dem_plane(x[None, :], y[:, None]).astype(np.float32)
    dem[DEM_NODATA_60M] = DEM_NODATA
    return dem


def eco_values() -> np.ndarray:
    """Biomass (Mg/ha) on the reference grid: 50 + 2·column."""
    return np.broadcast_to(50.0 + 2.0 * np.arange(SIZE, dtype=np.float32), (SIZE, SIZE)).astype(np.float32)


def _write_raster(path: Path, data: np.ndarray, res: float, nodata) -> None:
    import rasterio
    from rasterio.transform import from_origin

    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                   crs=CRS, transform=from_origin(X0, Y0, res, res), nodata=nodata, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _write_vector(path: Path, columns: dict, geoms: list) -> None:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(columns, geometry=geoms, crs=CRS)
    driver = "GPKG" if path.suffix == ".gpkg" else "GeoJSON"
    if path.exists():
        path.unlink()
    gdf.to_file(path, driver=driver)


def region_config(folder: Path) -> str:
    """The region's run config (YAML), structured like configs/guadeloupe-demo.yaml."""
    return f"""\
# Synthetic region written by tests/data/synthetic/data.py: 96 × 96 px, 30 m, EPSG:32620.
name: synthetic
data_dir: .                            # relative to this file
output_dir: {folder.resolve() / "run"}

grid:
  reference: forest_change.tif

layers:
  # forestatrisk codes: 0 non-forest, 1 lost 2000-05, 2 lost 2005-10, 3 lost 2010-15, 5 forest 2020
  forest_change: {{format: codes, path: forest_change.tif, years: [2000, 2005, 2010, 2015, 2020]}}
  rasters:
    altitude: {{path: dem.tif, resampling: bilinear}}     # 60 m, nodata in the north-east corner
  distance_to:
    roads: roads.geojson
    rivers: rivers.geojson
    towns: towns.geojson
  eco_weight: {{path: eco.tif, resampling: bilinear}}
  outline: outline.geojson
  zones:
    source: polygons
    path: zones.gpkg
    name_field: name
    note: Three synthetic territories (West, Centre, East).

periods:
  train:    {{start_year: 2005, end_year: 2010}}
  forecast: {{start_year: 2010, end_year: 2015}}

chips:
  size_px: 32
  stride_px: 16
  min_valid_fraction: 0.05
  block_size_px: 48
  val_fraction: 0.2
  buffer_px: 16
  seed: 0

model: {{arch: Unet, encoder: resnet18, encoder_weights: null}}

loss: {{lambda_eco: 1.0, lambda_fair: 1.0, min_zone_pixels: 50, fairness: variance}}

train: {{epochs: 1, batch_size: 4, lr: 0.001, device: cpu, amp: false, num_threads: 1, seed: 0}}

predict: {{block_px: 48, halo_px: 16, tta: 2, lambda_fair: 20}}

decision:
  actions: [none, patrol]
  states: [stays_forest, lost]
  cost: [[0, 100], [10, 10]]

map: {{max_size_px: 256}}

attribution: Synthetic test data (tests/data/synthetic/data.py).
"""


#: the forest-change formats written beside the codes (``write_formats``): same pixels, other encodings
YEARS = (2000, 2005, 2010, 2015, 2020)
HANSEN_LOSSYEAR = {1: 3, 2: 7, 3: 12}  # code → Hansen lossyear (2003, 2007, 2012: inside each interval)
HANSEN_BELOW = (slice(90, 96), slice(0, 8))  # non-forest pixels (treecover 10 %) with a lossyear: ignored
PRODES_CLASSES = {0: "NonForest", 1: "Forest", 11: "d2003", 12: "d2007", 13: "d2012", 50: "Clouds2021"}
PRODES_OF_CODE = {0: 0, 1: 11, 2: 12, 3: 13, 5: 1}


def yearly_forest_masks() -> np.ndarray:
    """(5, H, W) uint8: forest in 2000, 2005, 2010, 2015, 2020 from the codes (code k lost by YEARS[k])."""
    codes = forest_change_codes()
    return np.stack([((codes > k) & (codes != 0)).astype(np.uint8) for k in range(len(YEARS))])


def write_formats(folder: Path) -> dict[str, dict]:
    """Write the codes again in every other forest-change format; returns ``layers.forest_change`` per format.

    Each describes exactly the pixels of ``forest_change.tif`` (so every stack must be the same),
    except that Hansen's ``lossyear`` also marks non-forest pixels (``HANSEN_BELOW``), which the
    canopy threshold leaves out, and that PRODES' forest class is forest in ``last_year`` 2020.
    """
    import rasterio
    from rasterio.transform import from_origin

    folder = Path(folder)
    codes = forest_change_codes()
    masks = yearly_forest_masks()
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, dtype="uint8", crs=CRS,
                   transform=from_origin(X0, Y0, RES, RES), compress="deflate")
    with rasterio.open(folder / "forest_masks.tif", "w", count=len(YEARS), nodata=255, **profile) as dst:
        dst.write(masks)
    for year, m in zip(YEARS, masks):
        _write_raster(folder / f"forest_{year}.tif", m, RES, 255)
    lossyear = np.zeros_like(codes)
    for code, v in HANSEN_LOSSYEAR.items():
        lossyear[codes == code] = v
    lossyear[HANSEN_BELOW] = 5
    treecover = np.where(codes == 0, 10, 80).astype(np.uint8)
    _write_raster(folder / "lossyear.tif", lossyear, RES, 255)
    _write_raster(folder / "treecover2000.tif", treecover, RES, 255)
    prodes = np.zeros_like(codes)
    for code, cls in PRODES_OF_CODE.items():
        prodes[codes == code] = cls
    _write_raster(folder / "prodes.tif", prodes, RES, 255)
    for k, (y0, y1) in enumerate(zip(YEARS, YEARS[1:])):
        _write_raster(folder / f"loss_{y0}_{y1}.tif", (masks[k] & ~masks[k + 1] & 1).astype(np.uint8), RES, 255)
    return {
        "codes": {"format": "codes", "path": "forest_change.tif", "years": list(YEARS)},
        "yearly_masks_bands": {"format": "yearly_masks", "path": "forest_masks.tif",
                               "bands": {y: i + 1 for i, y in enumerate(YEARS)}},
        "yearly_masks_files": {"format": "yearly_masks", "files": {y: f"forest_{y}.tif" for y in YEARS}},
        "hansen": {"format": "hansen", "lossyear": "lossyear.tif", "treecover2000": "treecover2000.tif",
                   "canopy_cover_pct": 30, "last_year": 2020},
        "prodes": {"format": "prodes", "path": "prodes.tif", "classes": PRODES_CLASSES, "last_year": 2020},
        "loss_masks": {"format": "loss_masks", "forest": {"path": "forest_2000.tif", "year": 2000},
                       "loss": [{"path": f"loss_{a}_{b}.tif", "start_year": a, "end_year": b}
                                for a, b in zip(YEARS, YEARS[1:])]},
    }


def make_region(folder: Path) -> Path:
    """Write the synthetic region into ``folder``; returns the path of its config, ``region.yaml``."""
    from shapely.geometry import LineString, Point, box

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_raster(folder / "forest_change.tif", forest_change_codes(), RES, 0)
    _write_raster(folder / "dem.tif", dem_values(), DEM_RES, DEM_NODATA)
    _write_raster(folder / "eco.tif", eco_values(), RES, None)

    x_roads = [centre(0, col)[0] for col in ROAD_COLS]
    _, y_road = centre(ROAD_ROW, 0)
    _write_vector(folder / "roads.geojson", {"highway": ["primary", "primary", "secondary"]}, [
        *(LineString([(x, Y0 + 100), (x, Y0 - SIZE * RES - 100)]) for x in x_roads),
        LineString([(X0 - 100, y_road), (x_roads[0], y_road)]),
    ])
    _, y_river = centre(RIVER_ROW, 0)
    _write_vector(folder / "rivers.geojson", {"waterway": ["river"]},
                  [LineString([(X0 - 100, y_river), (X0 + SIZE * RES + 100, y_river)])])
    _write_vector(folder / "towns.geojson", {"name": list(TOWNS)}, [Point(*centre(r, c)) for r, c in TOWNS.values()])
    _write_vector(folder / "outline.geojson", {"name": ["land"]},
                  [box(X0, Y0 - LAND_ROWS * RES, X0 + SIZE * RES, Y0)])
    _write_vector(folder / "zones.gpkg", {"name": list(ZONES)},
                  [box(X0 + c0 * RES, Y0 - SIZE * RES, X0 + c1 * RES, Y0) for c0, c1 in ZONES.values()])
    write_formats(folder)
    config = folder / "region.yaml"
    config.write_text(region_config(folder))
    return config


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    print(make_region(Path(sys.argv[1])))
