"""The bad inputs of issue 8, each on a broken copy of the synthetic region, through ``run_tile``:
a ``GeoRiskError`` subclass whose message names the file, the layer and the fix, and nothing
written — no tiles folder, no staging leftovers in the run folder."""

import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import LineString, Polygon

from geo_risk.config import load_config
from geo_risk.tiling import run_tile
from geo_risk_errors import ConfigError, CRSMissingError, GeoRiskError, NoOverlapError
from tests.data.synthetic import data as region
from tiles.errors import (BandNotFoundError, ChipLayoutError, EmptyLayerError, ForestChangeError,
                          InvalidGeometryError, UnreadableRasterError, VectorLayerNotFoundError)


def rewrite_raster(path, data=None, **profile_changes):
    with rasterio.open(path) as src:
        profile, old = src.profile, src.read()
    profile.update(**profile_changes)
    data = old if data is None else data
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data if data.ndim == 3 else data[None])


def truncate(path, keep=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])


def shifted(path):
    with rasterio.open(path) as src:
        t = src.transform
    rewrite_raster(path, transform=Affine(t.a, t.b, t.c + 5e6, t.d, t.e, t.f))


def far_roads(folder):
    gpd.GeoDataFrame({"highway": ["x"]}, geometry=[LineString([(0, 0), (100, 100)])], crs=region.CRS).to_file(
        folder / "roads.geojson", driver="GeoJSON")


def empty_towns(folder):
    gpd.GeoDataFrame({"name": []}, geometry=[], crs=region.CRS).to_file(folder / "towns.geojson", driver="GeoJSON")


def flat_outline(folder):
    x, y = region.X0, region.Y0
    flat = Polygon([(x + 300, y - 300), (x + 600, y - 600), (x + 900, y - 900), (x + 300, y - 300)])
    gpd.GeoDataFrame({"name": ["flat"]}, geometry=[flat], crs=region.CRS).to_file(folder / "outline.geojson",
                                                                                    driver="GeoJSON")


def two_layer_zones(folder):
    zones = gpd.read_file(folder / "zones.gpkg")
    (folder / "zones.gpkg").unlink()
    zones.to_file(folder / "zones.gpkg", layer="territories")
    zones.to_file(folder / "zones.gpkg", layer="other")


# (what breaks, how, config changes, error class, phrases of the message)
CASES = {
    "no overlap (raster)": (lambda f: shifted(f / "dem.tif"), {}, NoOverlapError,
                            ["layer 'rasters.altitude'", "dem.tif", "does not overlap", "check its CRS"]),
    "no overlap (vector)": (far_roads, {}, NoOverlapError,
                            ["layer 'distance_to.roads'", "roads.geojson", "within 10000 m", "check its CRS"]),
    "raster without CRS": (lambda f: rewrite_raster(f / "dem.tif", crs=None), {}, CRSMissingError,
                           ["layer 'rasters.altitude'", "dem.tif has no CRS", "gdal_edit.py -a_srs"]),
    "vector without CRS": (lambda f: (gpd.read_file(f / "rivers.geojson").to_file(f / "rivers.shp"),
                                      (f / "rivers.prj").unlink()),
                           {"distance_to": {"rivers": "rivers.shp"}}, CRSMissingError,
                           ["layer 'distance_to.rivers'", "rivers.shp has no CRS", "crs: EPSG:XXXX"]),
    "band not found": (lambda f: None, {"rasters": {"altitude": {"path": "dem.tif", "band": 2}}}, BandNotFoundError,
                       ["layer 'rasters.altitude'", "band 2 not found in", "dem.tif", "give a band from 1 to 1"]),
    "multi-band without band": (lambda f: None, {"rasters": {"altitude": {"path": "forest_masks.tif"}}},
                                BandNotFoundError, ["layer 'rasters.altitude'", "forest_masks.tif has 5 bands",
                                                    "`band:`"]),
    "layer not found": (two_layer_zones, {"zones": {"source": "polygons", "path": "zones.gpkg", "layer": "terr"}},
                        VectorLayerNotFoundError, ["layer 'zones'", "no layer 'terr'", "zones.gpkg",
                                                   "['territories', 'other']", "fix `layer:`"]),
    "several layers, no layer:": (two_layer_zones, {}, VectorLayerNotFoundError,
                                  ["layer 'zones'", "zones.gpkg holds 2 layers", "`layer:`"]),
    "all-nodata forest change": (lambda f: rewrite_raster(f / "forest_change.tif", np.zeros((96, 96), np.uint8)), {},
                                 ForestChangeError, ["layers.forest_change", "forest_change.tif", "every pixel",
                                                     "nodata", "covers"]),
    "all-nodata raster": (lambda f: rewrite_raster(f / "dem.tif", np.full((48, 48), -9999, np.float32)), {},
                          EmptyLayerError, ["layer 'rasters.altitude'", "dem.tif", "no value on any forest pixel",
                                            "cannot help"]),
    "empty vector layer": (empty_towns, {}, EmptyLayerError,
                           ["layer 'distance_to.towns'", "towns.geojson has no geometries", "give a file"]),
    "unrepairable geometry": (flat_outline, {}, InvalidGeometryError,
                              ["layer 'outline'", "outline.geojson", "nothing is left once repaired", "fix or delete"]),
    "truncated forest change": (lambda f: truncate(f / "forest_change.tif"), {}, UnreadableRasterError,
                                ["layer 'grid.reference'", "forest_change.tif", "corrupt or truncated",
                                 "download it again"]),
    "truncated raster": (lambda f: truncate(f / "dem.tif"), {}, UnreadableRasterError,
                         ["layer 'rasters.altitude'", "dem.tif", "corrupt or truncated"]),
    "text file named .tif": (lambda f: (f / "dem.tif").write_text("elevation,x,y\n12,3,4\n"), {},
                             UnreadableRasterError, ["layer 'rasters.altitude'", "dem.tif is not a readable raster",
                                                     "give a GeoTIFF"]),
    "chips larger than the region": (lambda f: None, {"chips": {"size_px": 128, "stride_px": 64}}, ChipLayoutError,
                                     ["chips.size_px 128 is larger than the region's grid (96 × 96 px)",
                                      "at most 96"]),
    "a split with an empty set": (lambda f: None, {"chips": {"block_size_px": 512}}, ChipLayoutError,
                                  ["blocked split left", "0 validation", "chips.block_size_px"]),
    "loss that never occurs": (lambda f: None, {"periods": {"train": {"start_year": 2015, "end_year": 2020},
                                                            "forecast": {"start_year": 2010, "end_year": 2015}}},
                               ForestChangeError, ["period 'train' (2015→2020)", "forest_change.tif",
                                                   "no positive pixel", "check the period's years"]),
    "forest-density window wider than the region": (lambda f: None, {"eco_weight": {"source": "forest_density",
                                                                                   "window_m": 1_000_000}},
                                                    ConfigError, ["layers.eco_weight.window_m", "wider than the grid",
                                                                  "give a window inside the region"]),
}


def broken_region(folder, tmp_path, breaker, changes):
    data = tmp_path / "data"
    shutil.copytree(folder, data, ignore=shutil.ignore_patterns("run", "*.yaml"))
    breaker(data)
    raw = yaml.safe_load((folder / "region.yaml").read_text())
    raw["data_dir"] = str(data)
    raw["output_dir"] = str(tmp_path / "run")
    for key, value in changes.items():
        target = raw if key in ("chips", "periods") else raw["layers"]
        target[key] = {**target[key], **value} if key == "chips" else value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_named_error_and_nothing_is_written(case, synthetic_region, tmp_path):
    breaker, changes, error, phrases = CASES[case]
    cfg = load_config(broken_region(synthetic_region.parent, tmp_path, breaker, changes))
    with pytest.raises(error) as e:
        run_tile(cfg)
    assert isinstance(e.value, GeoRiskError)
    msg = str(e.value)
    for phrase in phrases:
        assert phrase in msg, (phrase, msg)
    assert "Traceback" not in msg and len(msg.splitlines()) == 1
    run = tmp_path / "run"
    assert not run.exists() or list(run.iterdir()) == [], list(run.rglob("*"))


@pytest.mark.parametrize("layers,phrases", [
    ({"rasters": {"landcover": {"path": "forest_change.tif", "kind": "categorical", "resampling": "bilinear"}}},
     ["layers.rasters.landcover", "resampling bilinear blends the classes", "use nearest"]),
    ({"forest_change": {"format": "codes", "path": "forest_change.tif", "years": [2000, 2010]}},
     ["layers.forest_change"]),  # a valid format whose years the periods miss: refused at tile time, below
])
def test_config_level_bad_inputs(layers, phrases, synthetic_region, tmp_path):
    raw = yaml.safe_load(synthetic_region.read_text())
    raw["data_dir"] = str(synthetic_region.parent)
    raw["layers"].update(layers)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    if "rasters" in layers:
        with pytest.raises(ConfigError) as e:
            load_config(path)
    else:
        with pytest.raises(ConfigError) as e:
            run_tile(load_config(path))
        phrases = ["periods.train.start_year 2005", "holds the forest state in 2000, 2010 only"]
    for phrase in phrases:
        assert phrase in str(e.value), (phrase, str(e.value))
