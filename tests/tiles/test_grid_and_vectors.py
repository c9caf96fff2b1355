"""Alignment and vector reading on the real demo files, and the bad-input errors they raise."""

import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine

from geo_risk_errors import CRSMissingError, MissingInputError, NoOverlapError
from tiles.grid import grid_from_raster, read_on_grid
from tiles.vectors import read_vector, voronoi_zones


@pytest.fixture(scope="module")
def grid(demo_dir):
    return grid_from_raster(demo_dir / "forest" / "fcc12345.tif")


def test_reference_grid(grid):
    assert grid.shape == (2958, 3340) and grid.resolution_m == 30.0
    assert grid.crs.to_epsg() == 3395
    assert grid.pixel_area_ha == pytest.approx(0.09)


def test_altitude_90m_resampled_onto_30m_grid(grid, demo_dir):
    alt = read_on_grid(demo_dir / "altitude.tif", grid, "altitude", "nearest")
    assert alt.shape == grid.shape and alt.dtype == np.float32
    block = alt[1200:1500, 1500:1800].values
    with rasterio.open(demo_dir / "altitude.tif") as src:
        # the same 90 m pixels, read directly: every 3rd 30 m pixel centre falls in one 90 m pixel
        x, y = grid.transform @ (1500 + 1.5, 1200 + 1.5)
        row, col = src.index(x, y)
        direct = src.read(1)[row, col]
    assert block[1, 1] == pytest.approx(direct)
    assert np.isnan(alt[0:5, 0:5].values).all()  # sea: altitude nodata became NaN


def test_missing_raster_names_layer_and_file(grid, tmp_path):
    with pytest.raises(MissingInputError, match=r"layer 'slope'.*nope\.tif.*fix the path"):
        read_on_grid(tmp_path / "nope.tif", grid, "slope")


def altered_copy(src_path, dst_path, **profile_changes):
    """A copy of a real raster with some profile entries changed (e.g. no CRS, a shifted transform)."""
    with rasterio.open(src_path) as src:
        prof, data = src.profile, src.read()
    prof.update(**profile_changes)
    with rasterio.open(dst_path, "w", **prof) as dst:
        dst.write(data)
    return dst_path


def test_raster_without_crs_is_refused(grid, demo_dir, tmp_path):
    bad = altered_copy(demo_dir / "slope.tif", tmp_path / "slope_nocrs.tif", crs=None)
    with pytest.raises(CRSMissingError, match=r"layer 'slope'.*slope_nocrs\.tif has no CRS.*gdal_edit"):
        read_on_grid(bad, grid, "slope")


def test_raster_off_the_grid_is_refused(grid, demo_dir, tmp_path):
    with rasterio.open(demo_dir / "slope.tif") as src:
        t = src.transform
    far = Affine(t.a, t.b, t.c + 5e6, t.d, t.e, t.f)  # 5000 km east
    bad = altered_copy(demo_dir / "slope.tif", tmp_path / "slope_far.tif", transform=far)
    with pytest.raises(NoOverlapError, match=r"layer 'slope'.*does not overlap"):
        read_on_grid(bad, grid, "slope")


def test_vector_without_prj_is_refused(grid, demo_dir, tmp_path):
    for ext in ("shp", "shx", "dbf"):
        shutil.copy(demo_dir / f"roads_PROJ.{ext}", tmp_path / f"roads.{ext}")
    with pytest.raises(CRSMissingError, match=r"layer 'roads'.*roads\.shp has no CRS"):
        read_vector(tmp_path / "roads.shp", grid, "roads")


def test_voronoi_zones_of_the_33_towns(grid, demo_dir):
    towns = read_vector(demo_dir / "towns_PROJ.shp", grid, "towns")
    outline = read_vector(demo_dir / "ctry_PROJ.shp", grid, "outline")
    zones = voronoi_zones(towns, outline, "name")
    assert len(zones) == 33 and list(zones.zone_id) == list(range(1, 34))
    for town, zone in zip(towns.geometry, zones.geometry):
        assert zone.buffer(1).covers(town) or zone.is_empty  # each town lies in its own catchment
    assert zones.union_all().area == pytest.approx(outline.union_all().area, rel=1e-3)
    assert not zones.geometry.overlaps(zones.geometry.shift()).fillna(False).any()
