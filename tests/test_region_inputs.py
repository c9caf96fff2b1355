"""Rasters and vectors as they come, on the real files of ../shared/data: Sentinel-2 bands from
single-band int16 files (nodata −9999, UTM south) stacked with one band of a 6-band file, a
GeoPackage holding two layers, a 3-band copy of the demo's DEM. Skipped, saying why, without ../shared."""

import numpy as np
import pytest
import rasterio

from geo_risk_errors import InputDataError
from tests.conftest import SHARED
from tiles.grid import aligned_grid, grid_from_raster, read_on_grid
from tiles.vectors import VectorSource, read_vector

S2 = SHARED / "rondonia_s2"
BANDS = {name: S2 / f"SENTINEL-2_MSI_20LLQ_{name}_2021-09-22.tif" for name in ("B02", "B8A", "B11")}
PROBS = S2 / "SENTINEL-2_MSI_20LLQ_2020-06-04_2021-08-26_probs_v0.tif"
GPKG = SHARED / "martinique" / "aoi-MTQ-latlon.gpkg"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present (real data lives in "
                                "../shared/data, beside the checkout)")


def test_sentinel2_bands_from_single_band_files_with_nodata_masked(tmp_path):
    grid = aligned_grid("EPSG:32720", 30.0, (340_000, 8_930_240, 350_000, 8_940_240))  # 20 m bands onto 30 m
    # B02 with a block of nodata (−9999), as at a scene's edge
    with rasterio.open(BANDS["B02"]) as src:
        profile, b02 = src.profile, src.read(1)
        assert src.nodata == -9999 and src.dtypes[0] == "int16" and src.crs.to_epsg() == 32720
    b02[:100, :100] = -9999  # 2 km × 2 km in the north-west corner
    with rasterio.open(tmp_path / "b02.tif", "w", **profile) as dst:
        dst.write(b02, 1)
    out = read_on_grid(tmp_path / "b02.tif", grid, "rasters.b02", "average").values
    assert np.isnan(out[:66, :66]).all() and np.isfinite(out[67:, 67:]).all()  # 2000 m / 30 m = 66.7 px
    valid = b02[b02 != -9999]
    assert valid.min() <= np.nanmin(out) and np.nanmax(out) <= valid.max()  # no −9999 averaged in
    for name, path in BANDS.items():
        arr = read_on_grid(path, grid, f"rasters.{name}", "average").values
        with rasterio.open(path) as src:
            raw = src.read(1).astype(np.float64)
        assert np.isfinite(arr).all() and arr.mean() == pytest.approx(raw.mean(), rel=0.01)
    # one band of the 6-band probability file: band 5 = Forest (×10⁴)
    with pytest.raises(InputDataError, match=r"has 6 bands — say which one to read with `band:`"):
        read_on_grid(PROBS, grid, "rasters.p_forest", "average")
    forest = read_on_grid(PROBS, grid, "rasters.p_forest", "average", band=5).values
    assert 0 <= np.nanmin(forest) and np.nanmax(forest) <= 10_000


def test_a_geopackage_with_two_layers_needs_layer():
    grid = grid_from_raster(SHARED / "martinique" / "forest-MTQ-2000-2010-2020.tif")
    with pytest.raises(InputDataError, match=r"holds 2 layers \['aoi', 'subj'\] — say which one with `layer:`"):
        read_vector(GPKG, grid, "outline")
    subj = read_vector(VectorSource(GPKG, "subj"), grid, "zones")
    assert len(subj) == 4 and subj.crs.to_epsg() == 5490  # read in EPSG:4326, reprojected onto the grid


def test_a_three_band_dem_is_refused_without_band_and_read_right_with_it(demo_dir, tmp_path):
    """It used to exit 0 with altitudes down to −18,205 m (nodata blended in)."""
    grid = grid_from_raster(demo_dir / "forest" / "fcc12345.tif")
    with rasterio.open(demo_dir / "altitude.tif") as src:
        profile, alt = src.profile, src.read(1)
    profile.update(count=3)
    with rasterio.open(tmp_path / "dem3.tif", "w", **profile) as dst:
        dst.write(np.stack([alt, alt, alt]))
    with pytest.raises(InputDataError, match=r"layer 'rasters.altitude': .*dem3\.tif has 3 bands"):
        read_on_grid(tmp_path / "dem3.tif", grid, "rasters.altitude", "bilinear")
    got = read_on_grid(tmp_path / "dem3.tif", grid, "rasters.altitude", "bilinear", band=3)[1000:1600, 1000:1600]
    ref = read_on_grid(demo_dir / "altitude.tif", grid, "rasters.altitude", "bilinear")[1000:1600, 1000:1600]
    # the same values but for int16 rounding of the bilinear kernel in a few pixels (≤ 1 m)
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(ref.values))
    np.testing.assert_allclose(got.values, ref.values, atol=1.0)
    assert np.nanmin(ref.values) >= alt[alt != profile["nodata"]].min()
