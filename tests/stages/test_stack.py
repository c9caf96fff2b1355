"""tiles.build_stack on the synthetic region: bands, counts and distances against the hand layout.

The layout is described in tests/data/synthetic/data.py; (r, c) are row and column of the 96 × 96
reference grid. Counts below are derived in the comments from that layout, not read from the code.
"""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from tests.data.synthetic import data as region

ROWS, COLS = np.mgrid[0:region.SIZE, 0:region.SIZE]


@pytest.fixture(scope="module")
def stack(synthetic_stack):
    return synthetic_stack[0]


def band(stack, period: str, name: str) -> np.ndarray:
    return stack["features"].sel(period=period, band=name).values


def test_bands_shapes_and_grid(stack):
    assert list(stack.band.values) == [
        "forest", "past_loss", "dist_edge_m", "dist_past_loss_m",  # from the forest-change codes
        "dist_roads_m", "dist_rivers_m", "dist_towns_m",  # layers.distance_to, in config order
        "altitude",  # layers.rasters
        "eco_weight",  # layers.eco_weight (as_input: the scaled weight the loss uses)
    ]
    assert list(stack.period.values) == ["train", "forecast"]
    assert stack["features"].shape == (2, 9, 96, 96) and stack["features"].dtype == np.float32
    assert stack["label"].shape == stack["valid"].shape == (2, 96, 96)
    assert stack["label"].dtype == stack["valid"].dtype == np.uint8
    assert stack["eco"].shape == (96, 96) and stack["eco"].dtype == np.float32
    assert stack["zone"].shape == (96, 96) and stack["zone"].dtype == np.int16
    assert stack.rio.crs.to_epsg() == 32620
    assert stack.rio.transform() == from_origin(region.X0, region.Y0, 30, 30)
    assert stack.attrs["resolution_m"] == 30 and stack.attrs["num_zones"] == 4  # 3 zones + "no zone" 0
    assert stack.attrs["periods"] == {"train": "2005-2010", "forecast": "2010-2015"}


# Codes: 0 on c < 8 (768 px), 1 on the two corridors (2 × 3 columns × 96 rows = 576), 2 and 3 on
# the flanks (4 × 3 columns, 48 rows each: 576 each), 5 elsewhere (9216 − 768 − 576 − 1152 = 6720).
# Valid = forest at the start inside the outline (rows < 90); the DEM's nodata (rows 0–7, columns
# 88–95: 64 forest pixels) is filled, not dropped.
#   train:    forest = codes 2, 3, 5 = 576 + 576 + 6720 = 7872; rows 90–95 hold 96 − 8 − 6 = 82 forest
#             pixels each (492), so valid = 7872 − 492 = 7380; label = code 2 = 576, all on rows < 90
#             (bands 0, 2, 4, 6 of 12 rows end at row 83).
#   forecast: forest = codes 3, 5 = 7296; rows 90–95 again hold 82 forest pixels each (the flanks
#             carry code 3 there), valid = 7296 − 492 = 6804; label = code 3 = 576, of which
#             42 rows × 12 columns = 504 are valid (rows 90–95 of the flanks are outside the outline).
@pytest.mark.parametrize("period,forest,valid,label,label_valid", [
    ("train", 7872, 7380, 576, 576),
    ("forecast", 7296, 6804, 576, 504),
])
def test_label_and_valid_counts(stack, period, forest, valid, label, label_valid):
    s = stack.sel(period=period)
    assert int(band(stack, period, "forest").sum()) == forest
    assert int(s["valid"].sum()) == valid
    assert int(s["label"].sum()) == label
    assert int((s["label"] & s["valid"]).sum()) == label_valid


def test_valid_is_off_outside_the_outline_and_on_where_the_dem_is_nodata(stack):
    for period in ("train", "forecast"):
        valid = stack["valid"].sel(period=period).values
        forest = band(stack, period, "forest")
        assert forest[90:, 8:39].all() and not valid[90:].any()  # forest beyond the outline
        assert forest[0:8, 88:].all() and valid[0:8, 88:].all()  # forest under DEM nodata: filled, kept
        np.testing.assert_array_equal(valid[:90], forest[:90])


def test_coverage_counts_the_missing_and_the_outside(stack):
    cov = stack.attrs["coverage"]
    assert cov["rasters.altitude"] == {"missing_px": 64, "periods": {"train": {"forest_px": 7380, "missing_px": 64},
                                                                      "forecast": {"forest_px": 6804, "missing_px": 64}}}
    assert cov["outside_outline_px"] == {"train": 492, "forecast": 492}
    assert "eco_weight" in cov and cov["eco_weight"]["missing_px"] == 0
    assert stack.attrs["fill_missing"] == {"method": "nearest", "indicator_bands": []}


def test_past_loss_bands(stack):
    # train: past loss = code 1 (the corridors); forecast: code 2 (the even bands of the flanks)
    assert int(band(stack, "train", "past_loss").sum()) == 576
    assert band(stack, "train", "past_loss")[:, 39:42].all()
    past = band(stack, "forecast", "past_loss")
    assert int(past.sum()) == 576 and past[0:12, 36:39].all() and not past[12:24, 36:39].any()


@pytest.mark.parametrize("period,name,r,c,expected_m", [
    # train: non-forest = code 0 (c < 8) and code 1 (corridors, c 39–41 and 75–77)
    ("train", "dist_edge_m", 5, 20, 13 * 30),  # column 7 is 13 px away (the corridor 19)
    ("train", "dist_edge_m", 5, 60, 15 * 30),  # column 75: 15 px (column 41: 19)
    ("train", "dist_edge_m", 5, 95, 18 * 30),  # column 77; the grid's border is not an edge
    ("train", "dist_edge_m", 5, 3, 0.0),  # non-forest
    ("train", "dist_past_loss_m", 5, 20, 19 * 30),  # column 39
    ("train", "dist_past_loss_m", 5, 60, 15 * 30),  # column 75
    ("train", "dist_past_loss_m", 50, 40, 0.0),  # inside the corridor
    # forecast: past loss = code 2 on rows 0–11, 24–35, …; non-forest adds it to codes 0 and 1
    ("forecast", "dist_past_loss_m", 18, 40, 30 * np.sqrt(6**2 + 2**2)),  # to (24, 38) and (24, 42)
    ("forecast", "dist_edge_m", 18, 50, 30 * np.sqrt(6**2 + 6**2)),  # to (24, 44); corridor 9 px
    ("forecast", "dist_edge_m", 18, 43, 2 * 30),  # a code-3 pixel: corridor column 41
])
def test_distances_from_the_codes_at_chosen_pixels(stack, period, name, r, c, expected_m):
    assert band(stack, period, name)[r, c] == pytest.approx(expected_m, rel=1e-6)


@pytest.mark.parametrize("name,r,c,expected_m", [
    ("dist_roads_m", 10, 60, 16 * 30),  # the road on column 76 (column 40: 20 px)
    ("dist_roads_m", 30, 10, 6 * 30),  # the east–west road on row 24
    ("dist_roads_m", 30, 50, 10 * 30),  # column 40; the east–west road ends there
    ("dist_towns_m", 23, 24, 5 * 30),  # 3-4-5 from Anse at (20, 20)
    ("dist_rivers_m", 0, 0, 66 * 30),  # the river on row 66
])
def test_distance_to_vectors_at_chosen_pixels(stack, name, r, c, expected_m):
    assert band(stack, "train", name)[r, c] == pytest.approx(expected_m, rel=1e-6)
    np.testing.assert_array_equal(band(stack, "train", name), band(stack, "forecast", name))


@pytest.mark.parametrize("layer", ["roads", "rivers", "towns"])
def test_distance_to_vectors_is_the_geometric_distance_everywhere(stack, synthetic_region, layer):
    """The lines run through pixel centres and the towns sit on them, so the exact EDT of the
    rasterised layer equals the distance from each pixel centre to the geometries."""
    geom = shapely.union_all(gpd.read_file(synthetic_region.parent / f"{layer}.geojson").geometry.values)
    x, y = region.centre(ROWS, COLS)
    expected = shapely.distance(shapely.points(x, y), geom)
    np.testing.assert_allclose(band(stack, "train", f"dist_{layer}_m"), expected, rtol=1e-6)


def test_zones_from_the_three_polygons(stack, synthetic_stack):
    zones = synthetic_stack[1]
    assert list(zones.zone_id) == [1, 2, 3] and list(zones.name) == ["West", "Centre", "East"]
    zone = stack["zone"].values
    # West: c < 32, Centre: 32 ≤ c < 64, East: c ≥ 64, the whole height (edges on pixel edges)
    assert zone[0, 31] == 1 and zone[0, 32] == 2 and zone[95, 63] == 2 and zone[95, 64] == 3
    np.testing.assert_array_equal(np.bincount(zone.ravel()), [0, 32 * 96, 32 * 96, 32 * 96])


def test_eco_is_normalised_to_unit_range(stack):
    eco = stack["eco"].values
    # raw biomass 50 + 2c Mg/ha, scaled by its 0.99 quantile over forest of any period (codes 2, 3, 5:
    # 7872 px); column 95 alone holds 96 of them (1.2 % > 1 %), so that quantile is its value, 240
    np.testing.assert_allclose(eco, np.broadcast_to((50 + 2 * np.arange(96)) / 240, (96, 96)), rtol=1e-6)
    assert np.isfinite(eco).all() and eco.min() == pytest.approx(50 / 240) and eco.max() == 1.0


def test_dem_resampled_from_60m_without_blending_nodata(stack, synthetic_region):
    from tiles.grid import grid_from_raster, read_on_grid

    folder = synthetic_region.parent
    raw = read_on_grid(folder / "dem.tif", grid_from_raster(folder / "forest_change.tif"), "altitude",
                       "bilinear").values
    alt = band(stack, "train", "altitude")
    with rasterio.open(folder / "dem.tif") as src:
        assert src.res == (60.0, 60.0) and src.nodata == region.DEM_NODATA
        dem = src.read(1)
    known = dem[dem != region.DEM_NODATA]
    nan = np.isnan(raw)
    # the 30 m pixels inside the nodata 60 m pixels (rows 0–7, columns 88–95), and only those
    assert nan.sum() == 64 and nan[0:8, 88:96].all()
    # no −9999 pulled into a neighbour: every value lies within the DEM's own range …
    assert known.min() <= np.nanmin(raw) and np.nanmax(raw) <= known.max()
    # … and bilinear resampling of a plane gives the plane back, away from the borders and the hole
    x, y = region.centre(ROWS, COLS)
    plane = region.dem_plane(x, y)
    inner = np.zeros(raw.shape, bool)
    inner[1:-1, 1:-1] = True
    inner[0:9, 87:] = False
    np.testing.assert_allclose(raw[inner], plane[inner], atol=1e-3)
    # next to the hole the value is interpolated from the known neighbours only
    ring = ~nan & ~inner
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = False
    assert np.abs(raw[ring] - plane[ring]).max() < 2.0
    # in the stack each pixel of the hole takes the value of a nearest known pixel
    assert np.isfinite(alt).all()
    np.testing.assert_array_equal(alt[~nan], raw[~nan])
    rr, cc = np.nonzero(nan)
    kr, kc = np.nonzero(~nan)
    for r, c in zip(rr, cc):
        d2 = (kr - r) ** 2 + (kc - c) ** 2
        assert alt[r, c] in set(raw[kr[d2 == d2.min()], kc[d2 == d2.min()]])  # a nearest known pixel's value
    np.testing.assert_array_equal(alt, band(stack, "forecast", "altitude"), strict=True)
