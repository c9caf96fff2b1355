"""Inputs as users have them, on the synthetic region (tests/data/synthetic/data.py): vectors in any
format and CRS, with several layers, without .prj, invalid or beyond the grid's edge; rasters with
several bands, without a nodata value, resampled by kind; the ecological weight from polygons or
absent; the grid from CRS + resolution + bounds or an AOI."""

import logging

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from shapely.geometry import Point, Polygon, box

from geo_risk.config import load_config
from geo_risk.tiling import stack_spec
from geo_risk_errors import ConfigError, CRSMissingError, InputDataError, NoOverlapError
from tests.data.synthetic import data as region
from tiles import build_stack
from tiles.grid import aligned_grid, grid_from_raster, read_on_grid
from tiles.vectors import VectorSource, read_vector

ROWS, COLS = np.mgrid[0:region.SIZE, 0:region.SIZE]


@pytest.fixture(scope="module")
def folder(synthetic_region):
    return synthetic_region.parent


@pytest.fixture(scope="module")
def grid(folder):
    return grid_from_raster(folder / "forest_change.tif")


def config(region_yaml, tmp_path, grid=None, **layers):
    """The synthetic config with some ``layers`` keys (and the grid) replaced wholesale."""
    raw = yaml.safe_load(region_yaml.read_text())
    raw["data_dir"] = str(region_yaml.parent)
    for key, value in layers.items():
        if value is None:
            raw["layers"].pop(key, None)
        else:
            raw["layers"][key] = value
    if grid is not None:
        raw["grid"] = grid
    path = tmp_path / "inputs.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


def stack_of(cfg):
    ds, zones = build_stack(stack_spec(cfg))
    return ds.compute(), zones


def band(ds, name, period="train"):
    return ds["features"].sel(period=period, band=name).values


def px(col, row):
    return region.X0 + col * region.RES, region.Y0 - row * region.RES


# --- vectors -------------------------------------------------------------------------------------

def test_vectors_in_every_format_and_crs_give_the_same_distances(folder, grid, synthetic_region, synthetic_stack,
                                                                 tmp_path):
    towns = gpd.read_file(folder / "towns.geojson")
    towns.to_parquet(tmp_path / "towns.parquet")
    towns.to_crs("EPSG:4326").to_file(tmp_path / "towns_wgs84.geojson")
    towns.to_crs("EPSG:2154").to_file(tmp_path / "towns_lambert.shp")  # another projected CRS, with its .prj
    expected = band(synthetic_stack[0], "dist_towns_m")
    for path in ("towns.parquet", "towns_wgs84.geojson", "towns_lambert.shp"):
        gdf = read_vector(tmp_path / path, grid, "towns")
        assert gdf.crs == grid.crs and len(gdf) == 3
        np.testing.assert_allclose(
            shapely.get_coordinates(gdf.geometry.values), shapely.get_coordinates(towns.geometry.values), atol=1e-3)
    cfg = config(synthetic_region, tmp_path, distance_to={"roads": "roads.geojson", "rivers": "rivers.geojson",
                                                        "towns": str(tmp_path / "towns.parquet")})
    np.testing.assert_array_equal(band(stack_of(cfg)[0], "dist_towns_m"), expected)


def test_a_geopackage_with_several_layers_needs_layer(folder, grid, tmp_path):
    gpkg = tmp_path / "two.gpkg"
    gpd.read_file(folder / "towns.geojson").to_file(gpkg, layer="towns")
    gpd.read_file(folder / "roads.geojson").to_file(gpkg, layer="roads")
    with pytest.raises(InputDataError) as e:
        read_vector(gpkg, grid, "distance_to.towns")
    assert "holds 2 layers ['towns', 'roads']" in str(e.value) and "`layer:`" in str(e.value)
    with pytest.raises(InputDataError, match=r"no layer 'town' in .*two\.gpkg \(layers: \['towns', 'roads'\]\)"):
        read_vector(VectorSource(gpkg, "town"), grid, "distance_to.towns")
    assert len(read_vector(VectorSource(gpkg, "roads"), grid, "distance_to.roads")) == 3


def test_a_shapefile_without_prj_takes_the_crs_of_the_config(folder, grid, tmp_path):
    gpd.read_file(folder / "towns.geojson").to_file(tmp_path / "towns.shp")
    (tmp_path / "towns.prj").unlink()
    with pytest.raises(CRSMissingError, match=r"towns\.shp has no CRS .*crs: EPSG:XXXX"):
        read_vector(tmp_path / "towns.shp", grid, "distance_to.towns")
    gdf = read_vector(VectorSource(tmp_path / "towns.shp", crs=region.CRS), grid, "distance_to.towns")
    assert gdf.crs.to_epsg() == 32620 and len(gdf) == 3


def test_features_beyond_the_grid_count_for_distances(folder, grid, tmp_path, synthetic_region):
    # a town 4,995 m west of the grid's edge, level with row 48: 5,010 m from the centre of (48, 0)
    x, y = region.X0 - 4995.0, region.centre(48, 0)[1]
    gpd.GeoDataFrame({"name": ["Far"]}, geometry=[Point(x, y)], crs=region.CRS).to_file(tmp_path / "far.geojson")
    cfg = config(synthetic_region, tmp_path, distance_to={"far": str(tmp_path / "far.geojson")})
    d = band(stack_of(cfg)[0], "dist_far_m")
    assert d[48, 0] == pytest.approx(5010.0) and d[48, 95] == pytest.approx(5010.0 + 95 * 30)
    cx, cy = region.centre(ROWS, COLS)
    np.testing.assert_allclose(d, np.hypot(cx - x, cy - y), rtol=1e-6)
    # 15 km out, beyond the 10 km margin: no feature near the region is an error naming the margin
    gpd.GeoDataFrame({"name": ["Farther"]}, geometry=[Point(region.X0 - 14_985, y)],
                     crs=region.CRS).to_file(tmp_path / "farther.geojson")
    cfg = config(synthetic_region, tmp_path, distance_to={"farther": str(tmp_path / "farther.geojson")})
    with pytest.raises(NoOverlapError, match=r"distance_to\.farther.*within 10000 m of it"):
        build_stack(stack_spec(cfg))
    cfg = cfg.model_copy(update={"layers": cfg.layers.model_copy(update={"distance_margin_m": 20_000})})
    assert band(stack_of(cfg)[0], "dist_farther_m")[48, 0] == pytest.approx(15_000.0)


def test_a_self_intersecting_outline_is_repaired_with_a_warning(synthetic_region, tmp_path, synthetic_stack, caplog):
    """It used to end in a GEOSException traceback."""
    # the land (rows 0–89) as a ring that crosses itself: a zero-area spike out of its north-east corner
    ring = [px(0, 0), px(96, 0), px(100, -4), px(96, 0), px(96, 90), px(0, 90)]
    bowtie = Polygon(ring)
    assert not bowtie.is_valid
    gpd.GeoDataFrame({"name": ["land"]}, geometry=[bowtie], crs=region.CRS).to_file(tmp_path / "outline.geojson")
    cfg = config(synthetic_region, tmp_path, outline=str(tmp_path / "outline.geojson"))
    with caplog.at_level(logging.WARNING, logger="tiles.vectors"):
        ds, _ = stack_of(cfg)
    assert any("layer 'outline': repaired 1 invalid geometry" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(ds["valid"].values, synthetic_stack[0]["valid"].values)


def test_an_unrepairable_geometry_is_refused_naming_the_feature(synthetic_region, tmp_path):
    flat = Polygon([px(40, 10), px(50, 20), px(60, 30), px(40, 10)])
    gpd.GeoDataFrame({"name": ["land", "flat"]}, geometry=[box(*px(0, 90), *px(96, 0)), flat],
                     crs=region.CRS).to_file(tmp_path / "outline.geojson")
    cfg = config(synthetic_region, tmp_path, outline=str(tmp_path / "outline.geojson"))
    with pytest.raises(InputDataError, match=r"layer 'outline': feature\(s\) \[1\] .*nothing is left once repaired"):
        build_stack(stack_spec(cfg))


# --- the ecological weight -------------------------------------------------------------------------

def test_no_eco_weight_is_one_everywhere_and_logged(synthetic_region, tmp_path, caplog):
    cfg = config(synthetic_region, tmp_path, eco_weight=None)
    with caplog.at_level(logging.INFO, logger="tiles.stack"):
        ds, _ = stack_of(cfg)
    assert (ds["eco"].values == 1).all() and "none" in ds.attrs["eco_weight"]
    assert any("every pixel weighs 1" in r.getMessage() for r in caplog.records)


def test_eco_weight_from_polygons(synthetic_region, tmp_path):
    # a protected area over columns 10–29 (weight 0.8 in its field) overlapping one over 20–39 (1.0)
    areas = gpd.GeoDataFrame({"iucn_w": [0.8, 1.0]}, geometry=[box(*px(10, 96), *px(30, 0)),
                                                               box(*px(20, 96), *px(40, 0))], crs=region.CRS)
    areas.to_file(tmp_path / "protected.gpkg", layer="wdpa")
    path = str(tmp_path / "protected.gpkg")
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight={"source": "polygons", "path": path,
                                                                     "layer": "wdpa", "background": 0.1}))
    eco = ds["eco"].values
    assert (eco[:, :10] == np.float32(0.1)).all() and (eco[:, 40:] == np.float32(0.1)).all()
    assert (eco[:, 10:40] == 1).all()  # value 1 inside any polygon by default
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight={"source": "polygons", "path": path,
                                                                     "layer": "wdpa", "field": "iucn_w"}))
    eco = ds["eco"].values
    assert (eco[:, 10:20] == np.float32(0.8)).all() and (eco[:, 20:40] == 1).all()  # the larger weight wins
    assert (eco[:, :10] == 0).all() and "field 'iucn_w'" in ds.attrs["eco_weight"]
    areas.assign(iucn_w=[80, 100]).to_file(tmp_path / "percent.gpkg")
    with pytest.raises(InputDataError, match=r"2 polygon\(s\) .* outside \[0, 1\] .*scale the field"):
        stack_of(config(synthetic_region, tmp_path, eco_weight={"source": "polygons", "path": str(
            tmp_path / "percent.gpkg"), "field": "iucn_w"}))


def test_eco_weight_is_an_input_band_unless_told_otherwise(synthetic_region, tmp_path):
    areas = gpd.GeoDataFrame({"w": [0.6]}, geometry=[box(*px(10, 96), *px(30, 0))], crs=region.CRS)
    areas.to_file(tmp_path / "protected.gpkg")
    eco = {"source": "polygons", "path": str(tmp_path / "protected.gpkg"), "field": "w", "background": 0.1}
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight=eco))
    assert list(ds.band.values)[-1] == "eco_weight"
    for period in ("train", "forecast"):  # the same scaled weight the loss uses, in both periods
        np.testing.assert_array_equal(band(ds, "eco_weight", period), ds["eco"].values)
    assert band(ds, "eco_weight")[:, 15].max() == np.float32(0.6)
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight={**eco, "as_input": False}))
    assert "eco_weight" not in list(ds.band.values)
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight=None))
    assert "eco_weight" not in list(ds.band.values)


def test_a_raster_eco_weight_raised_to_a_power(synthetic_region, synthetic_stack, tmp_path):
    """``power`` sharpens a raster weight: the stack's weight (and its input band) is the scaled raster
    to that power, the note says so; a power outside (0, 10] is refused by the config."""
    linear = synthetic_stack[0]["eco"].values
    assert 0 < np.nanmin(linear[linear > 0]) < 1  # a weight with values strictly inside (0, 1) to sharpen
    eco = {"path": "eco.tif", "resampling": "bilinear", "power": 3}
    ds, _ = stack_of(config(synthetic_region, tmp_path, eco_weight=eco))
    np.testing.assert_allclose(ds["eco"].values, linear**3, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(band(ds, "eco_weight"), ds["eco"].values)
    assert "to the power 3" in ds.attrs["eco_weight"]
    for bad in (0, -1, 11):
        with pytest.raises(ConfigError, match="power"):
            config(synthetic_region, tmp_path, eco_weight={**eco, "power": bad})


def test_a_raster_named_like_the_eco_band_is_a_config_error(synthetic_region, tmp_path):
    raw = yaml.safe_load(synthetic_region.read_text())
    rasters = {**raw["layers"].get("rasters", {}), "eco_weight": next(iter(raw["layers"]["rasters"].values()))}
    with pytest.raises(ConfigError, match=r"layers.rasters.eco_weight makes band 'eco_weight', which is already the "
                                          r"scaled ecological weight .*rename layers.rasters.eco_weight"):
        config(synthetic_region, tmp_path, rasters=rasters,
               eco_weight={"source": "polygons", "path": "zones.gpkg", "value": 1})


def test_eco_polygons_value_and_field_together_is_a_config_error(synthetic_region, tmp_path):
    with pytest.raises(ConfigError, match="give value .* or field .* not both"):
        config(synthetic_region, tmp_path, eco_weight={"source": "polygons", "path": "zones.gpkg", "value": 1,
                                                        "field": "name"})


# --- rasters ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dem3(folder, tmp_path_factory):
    """The DEM as band 2 of a 3-band file (bands: DEM − 1000, DEM, DEM + 1000), nodata −9999."""
    with rasterio.open(folder / "dem.tif") as src:
        profile, dem = src.profile, src.read(1)
    hole = dem == region.DEM_NODATA
    bands = np.stack([dem - 1000, dem, dem + 1000]).astype(np.float32)
    bands[:, hole] = region.DEM_NODATA
    path = tmp_path_factory.mktemp("dem3") / "dem3.tif"
    profile.update(count=3)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def test_a_multiband_raster_needs_band(dem3, grid):
    """A 3-band file used to be read silently (band 1, nodata blended in): now `band:` is required."""
    with pytest.raises(InputDataError, match=r"layer 'rasters.altitude': .*dem3\.tif has 3 bands — say which one "
                                             r"to read with `band:`"):
        read_on_grid(dem3, grid, "rasters.altitude", "bilinear")
    with pytest.raises(InputDataError, match=r"band 4 not found in .*dem3\.tif, which has 3 band\(s\)"):
        read_on_grid(dem3, grid, "rasters.altitude", "bilinear", band=4)


def test_band_picks_the_band_and_nodata_is_never_blended(dem3, synthetic_region, synthetic_stack, tmp_path):
    cfg = config(synthetic_region, tmp_path, rasters={"altitude": {"path": str(dem3), "band": 2,
                                                                   "resampling": "bilinear"}})
    np.testing.assert_array_equal(band(stack_of(cfg)[0], "altitude"), band(synthetic_stack[0], "altitude"))


def test_a_file_without_nodata_value_takes_it_from_the_config(folder, grid, tmp_path):
    with rasterio.open(folder / "dem.tif") as src:
        profile, dem = src.profile, src.read(1)
    profile.update(nodata=None)
    with rasterio.open(tmp_path / "dem_nonodata.tif", "w", **profile) as dst:
        dst.write(dem, 1)
    blended = read_on_grid(tmp_path / "dem_nonodata.tif", grid, "altitude", "bilinear").values
    assert np.nanmin(blended) < -1000  # −9999 blended into its neighbours: what `nodata:` is for
    fixed = read_on_grid(tmp_path / "dem_nonodata.tif", grid, "altitude", "bilinear", nodata=-9999).values
    np.testing.assert_array_equal(fixed, read_on_grid(folder / "dem.tif", grid, "altitude", "bilinear").values)


def test_resampling_by_kind(folder, grid, synthetic_region, tmp_path):
    from tiles.grid import choose_resampling

    with rasterio.open(folder / "dem.tif") as dem, rasterio.open(folder / "eco.tif") as eco:
        assert choose_resampling(dem, grid, "auto", "continuous", "x") == "bilinear"  # 60 m onto 30 m
        assert choose_resampling(dem, grid, "auto", "categorical", "x") == "nearest"
        coarse = aligned_grid(grid.crs, 90.0, grid.bounds)
        assert choose_resampling(eco, coarse, "auto", "continuous", "x") == "average"  # 30 m onto 90 m
        assert choose_resampling(eco, coarse, "auto", "categorical", "x") == "mode"
        with pytest.raises(ConfigError, match="resampling bilinear blends the classes of a categorical layer"):
            choose_resampling(dem, grid, "bilinear", "categorical", "rasters.landcover")
    with pytest.raises(ConfigError, match=r"layers\.rasters\.landcover: resampling bilinear blends the classes"):
        config(synthetic_region, tmp_path, rasters={"landcover": {"path": "forest_change.tif", "kind": "categorical",
                                                                  "resampling": "bilinear"}})


# --- the grid --------------------------------------------------------------------------------------

def test_grid_from_crs_resolution_and_bounds_is_the_reference_grid(synthetic_region, synthetic_stack, tmp_path):
    bounds = [region.X0, region.Y0 - 96 * 30, region.X0 + 96 * 30, region.Y0]
    cfg = config(synthetic_region, tmp_path, grid={"crs": region.CRS, "resolution_m": 30, "bounds": bounds})
    ds, _ = stack_of(cfg)
    assert ds.rio.transform() == synthetic_stack[0].rio.transform()
    for var in ("features", "label", "valid", "eco", "zone"):
        np.testing.assert_array_equal(ds[var].values, synthetic_stack[0][var].values)


def test_grid_from_an_aoi_is_aligned_on_the_resolution(synthetic_region, tmp_path):
    # an AOI in WGS 84 whose extent is not on 30 m multiples
    aoi = gpd.GeoDataFrame(geometry=[box(region.X0 + 7, region.Y0 - 2000, region.X0 + 1000, region.Y0 - 13)],
                           crs=region.CRS).to_crs("EPSG:4326")
    aoi.to_file(tmp_path / "aoi.gpkg", layer="aoi")
    cfg = config(synthetic_region, tmp_path, grid={"crs": region.CRS, "resolution_m": 30,
                                                   "aoi": {"path": str(tmp_path / "aoi.gpkg"), "layer": "aoi"}})
    from tiles.stack import resolve_grid

    g = resolve_grid(stack_spec(cfg).grid)
    assert g.transform.c % 30 == 0 and g.transform.f % 30 == 0 and g.resolution_m == 30
    left, bottom, right, top = g.bounds
    assert left <= region.X0 + 7 < left + 30 and top - 30 < region.Y0 - 13 <= top
    assert right - 30 < region.X0 + 1000 <= right and bottom <= region.Y0 - 2000 < bottom + 30


def test_grid_config_must_be_one_way(synthetic_region, tmp_path):
    with pytest.raises(ConfigError, match="give either reference or crs"):
        config(synthetic_region, tmp_path, grid={"reference": "forest_change.tif", "crs": region.CRS})
    with pytest.raises(ConfigError, match="one of bounds or aoi"):
        config(synthetic_region, tmp_path, grid={"crs": region.CRS, "resolution_m": 30})
    with pytest.raises(InputDataError, match="geographic CRS"):
        aligned_grid("EPSG:4326", 0.001, (0, 0, 1, 1))


# --- missing values: every forest pixel gets a prediction ---------------------------------------------

def test_median_fill_with_a_missing_value_band(synthetic_region, synthetic_stack, tmp_path):
    from tiles.grid import read_on_grid

    folder = synthetic_region.parent
    ds, _ = stack_of(config(synthetic_region, tmp_path, missing={"fill": "median", "indicator": True}))
    assert list(ds.band.values)[-3:] == ["altitude", "altitude_missing", "eco_weight"]
    raw = read_on_grid(folder / "dem.tif", grid_from_raster(folder / "forest_change.tif"), "altitude",
                       "bilinear").values
    hole = np.isnan(raw)
    train = synthetic_stack[0]["valid"].sel(period="train").values.astype(bool)
    median = np.quantile(raw[train & ~hole], 0.5)  # over the train period's forest inside the outline
    alt, flag = band(ds, "altitude"), band(ds, "altitude_missing")
    assert (alt[hole] == np.float32(median)).all() and (alt[~hole] == raw[~hole]).all()
    np.testing.assert_array_equal(flag, hole.astype(np.float32))
    assert ds.attrs["fill_missing"] == {"method": "median", "indicator_bands": ["altitude_missing"]}
    np.testing.assert_array_equal(ds["valid"].values, synthetic_stack[0]["valid"].values)


def test_a_raster_with_no_value_on_the_forest_is_refused_by_name(synthetic_region, tmp_path):
    """It used to get advice to lower chips.min_valid_fraction, which cannot help."""
    with rasterio.open(synthetic_region.parent / "dem.tif") as src:
        profile = src.profile
    with rasterio.open(tmp_path / "empty_dem.tif", "w", **profile) as dst:
        dst.write(np.full((1, profile["height"], profile["width"]), region.DEM_NODATA, np.float32))
    cfg = config(synthetic_region, tmp_path, rasters={"altitude": {"path": str(tmp_path / "empty_dem.tif")}})
    with pytest.raises(InputDataError) as e:
        build_stack(stack_spec(cfg))
    msg = str(e.value)
    assert "layer 'rasters.altitude': no value on any forest pixel" in msg and "empty_dem.tif" in msg
    assert "cannot help" in msg
