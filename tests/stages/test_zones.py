"""Community zones (tiles/vectors.py): territory polygons and Voronoi catchments of points.

The demo only ever runs the Voronoi path; the synthetic region's config uses ``polygons``.
"""

import logging

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from geo_risk_errors import InputDataError
from tests.conftest import synthetic_config
from tests.data.synthetic import data as region
from tiles.grid import grid_from_raster
from tiles.vectors import polygon_zones, read_vector, voronoi_zones


@pytest.fixture(scope="module")
def folder(synthetic_region):
    return synthetic_region.parent


@pytest.fixture(scope="module")
def grid(folder):
    return grid_from_raster(folder / "forest_change.tif")


def px(col: float, row: float) -> tuple[float, float]:
    """Map coordinates of a point given in pixel units (column, row) of the reference grid."""
    return region.X0 + col * region.RES, region.Y0 - row * region.RES


def px_polygon(coords) -> Polygon:
    return Polygon([px(c, r) for c, r in coords])


def write_zones(path, names: dict, field: str = "name"):
    gpd.GeoDataFrame({field: list(names)}, geometry=list(names.values()), crs=region.CRS).to_file(path)
    return path


def test_polygon_zones_ids_names_and_geometries(folder, grid):
    layer = read_vector(folder / "zones.gpkg", grid, "zones")
    zones = polygon_zones(layer, "name")
    assert list(zones.columns) == ["zone_id", "name", "geometry"]
    assert list(zones.zone_id) == [1, 2, 3] and list(zones.name) == ["West", "Centre", "East"]
    assert zones.crs.to_epsg() == 32620
    assert zones.geometry.iloc[1].equals(box(*px(32, 96), *px(64, 0)))
    assert zones.geometry.is_valid.all()


def test_polygon_zones_take_names_from_the_configured_field(tmp_path, grid):
    path = write_zones(tmp_path / "territories.gpkg", {"Nord": box(*px(0, 48), *px(96, 0)),
                                                       "Sud": box(*px(0, 96), *px(96, 48))}, field="nom")
    zones = polygon_zones(read_vector(path, grid, "zones"), "nom")
    assert list(zones.zone_id) == [1, 2] and list(zones.name) == ["Nord", "Sud"]


def test_polygon_zones_without_the_name_field_are_refused(tmp_path, grid):
    """It used to name the zones "0", "1", … silently; the Voronoi path always refused."""
    path = write_zones(tmp_path / "territories.gpkg", {"Nord": box(*px(0, 48), *px(96, 0))}, field="nom")
    with pytest.raises(InputDataError) as e:
        polygon_zones(read_vector(path, grid, "zones"), "name")
    msg = str(e.value)
    assert "'name'" in msg and str(path) in msg and "['nom']" in msg and "layers.zones.name_field" in msg


def test_build_stack_refuses_a_zones_layer_without_the_name_field(synthetic_region):
    from geo_risk.tiling import stack_spec
    from tiles import build_stack

    cfg = synthetic_config(synthetic_region, layers={"zones": {"name_field": "territory"}})
    match = r"'territory' not in the polygon layer .*zones\.gpkg \(fields: \['name'\]\)"
    with pytest.raises(InputDataError, match=match):
        build_stack(stack_spec(cfg))


def test_voronoi_zones_of_the_three_towns(folder, grid):
    towns = read_vector(folder / "towns.geojson", grid, "zones")
    outline = read_vector(folder / "outline.geojson", grid, "outline")
    zones = voronoi_zones(towns, outline, "name")
    assert list(zones.zone_id) == [1, 2, 3] and list(zones.name) == ["Anse", "Bourg", "Capesterre"]
    for town, cell in zip(towns.geometry, zones.geometry):
        assert cell.covers(town)
    assert zones.union_all().area == pytest.approx(96 * 90 * region.RES**2)  # the outline: rows 0–89
    assert zones.geometry.iloc[0].intersection(zones.geometry.iloc[1]).area == pytest.approx(0, abs=1e-6)
    with pytest.raises(InputDataError, match=r"'nom' not in the point layer .*towns\.geojson \(fields: \['name'\]\)"):
        voronoi_zones(towns, outline, "nom")


# A bowtie: two triangles meeting at (48, 48), vertices off the pixel centres (no ties on edges).
BOWTIE = [(32.2, 0.3), (63.8, 95.7), (63.8, 0.3), (32.2, 95.7)]
BOWTIE_AREA_PX = 2 * 0.5 * 95.4 * (48 - 32.2)
# A ring that walks around a square, then around a square inside it through a zero-width cut:
# the way a territory with a hole gets digitised; it is a 24 × 24 square less a 12 × 12 hole.
KEYHOLE = [(64.1, 3.1), (88.1, 3.1), (88.1, 27.1), (64.1, 27.1), (64.1, 3.1),
           (70.1, 9.1), (82.1, 9.1), (82.1, 21.1), (70.1, 21.1), (70.1, 9.1)]


@pytest.fixture()
def invalid_zones(tmp_path):
    return write_zones(tmp_path / "zones.gpkg", {"West": box(*px(0, 96), *px(32, 0)),
                                                 "Centre": px_polygon(BOWTIE), "East": px_polygon(KEYHOLE)})


def test_invalid_zone_polygons_are_repaired_with_a_warning(invalid_zones, grid, caplog):
    layer = read_vector(invalid_zones, grid, "zones", repair=False)  # build_zones leaves the repair to polygon_zones
    assert layer.geometry.is_valid.tolist() == [True, False, False]
    with caplog.at_level(logging.WARNING, logger="tiles.vectors"):
        zones = polygon_zones(layer, "name")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "repaired 2 invalid polygon(s)" in warned[0] and "['Centre', 'East']" in warned[0]
    assert zones.geometry.is_valid.all() and list(zones.name) == ["West", "Centre", "East"]
    px_area = region.RES**2
    bowtie, keyhole = zones.geometry.iloc[1], zones.geometry.iloc[2]
    assert bowtie.geom_type == "MultiPolygon" and len(bowtie.geoms) == 2
    assert bowtie.area == pytest.approx(BOWTIE_AREA_PX * px_area)  # the invalid bowtie's area was 0
    assert keyhole.geom_type == "Polygon" and len(keyhole.interiors) == 1  # the cut (a line) is dropped
    assert keyhole.area == pytest.approx((24**2 - 12**2) * px_area)


def test_repaired_zones_are_burned_as_their_shapes(invalid_zones, synthetic_region):
    from geo_risk.tiling import stack_spec
    from tiles import build_stack

    cfg = synthetic_config(synthetic_region, layers={"zones": {"path": str(invalid_zones)}})
    ds, zones = build_stack(stack_spec(cfg))
    zone = ds["zone"].values
    rows, cols = np.mgrid[0:96, 0:96]
    centres = shapely.points(cols + 0.5, rows + 0.5)  # in pixel units
    in_bowtie = shapely.contains(shapely.make_valid(Polygon(BOWTIE)), centres)
    in_keyhole = shapely.contains(Polygon(KEYHOLE[:5], [KEYHOLE[5:]]), centres)
    np.testing.assert_array_equal(zone == 2, in_bowtie)
    np.testing.assert_array_equal(zone == 3, in_keyhole)
    assert (zone[:, :32] == 1).all() and zone[15, 76] == 0  # West, and the hole of East
    assert zones.geometry.is_valid.all()


def test_zone_polygons_with_no_area_are_refused(tmp_path, grid):
    flat = Polygon([px(40, 10), px(50, 20), px(60, 30), px(40, 10)])  # every vertex on one line
    path = write_zones(tmp_path / "zones.gpkg", {"West": box(*px(0, 96), *px(32, 0)), "Flat": flat})
    with pytest.raises(InputDataError, match=r"\['Flat'\] of .*zones\.gpkg are invalid and have no area"):
        polygon_zones(read_vector(path, grid, "zones", repair=False), "name")
