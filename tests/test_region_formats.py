"""Each forest-change format on the real files of ../shared/data, codes checked against counts made
by hand from the files (numpy on the raw bands, or the file warped independently with
``rasterio.warp.reproject`` onto the same grid). Skipped, saying why, where ../shared is absent."""

import logging

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds

from geo_risk_errors import InputDataError
from tests.conftest import SHARED
from tiles.forest_change import (NODATA, HansenGFC, LossMasks, RasterBand, YearlyMasks, check_forest_change,
                                 forestatrisk_codes, period_codes, prodes_table)
from tiles.grid import grid_from_raster
from tiles.stack import GridSpec, forest_change_codes, resolve_grid

MARTINIQUE = SHARED / "martinique" / "forest-MTQ-2000-2010-2020.tif"
GUADELOUPE = SHARED / "guadeloupe" / "forest"
HANSEN = SHARED / "label_samples" / "hansen_sierra_de_neiba"
LOSSYEAR = HANSEN / "Hansen_GFC-2023-v1.11_lossyear_20N_080W.tif"
TREECOVER = HANSEN / "Hansen_GFC-2023-v1.11_treecover2000_20N_080W.tif"
PRODES = SHARED / "label_samples" / "prodes_rondonia_20LNR" / "PRODES_LANDSAT_AMZ_2000-08-01_2020-07-31_class_v20220606.tif"
# the class ↔ year table of ../shared/data/README.md
PRODES_CLASSES = {1: "Forest", 11: "d2012", 16: "d2017", 17: "d2018", 27: "d2019", 29: "d2020", 32: "Clouds2021",
                  33: "d2021"}

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present (real data lives in "
                                "../shared/data, beside the checkout)")


def hist(codes) -> np.ndarray:
    return np.bincount(np.asarray(codes).ravel(), minlength=256)


def warped(path, grid) -> np.ndarray:
    """Band 1 of ``path`` on ``grid`` (nearest), nodata → 255, by rasterio.warp.reproject: the hand count's input."""
    out = np.full(grid.shape, 255, dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.nearest, dst_nodata=255)
    return out


def utm_grid(path, crs):
    with rasterio.open(path) as src:
        return resolve_grid(GridSpec(crs, 30.0, transform_bounds(src.crs, crs, *src.bounds)))


def test_martinique_yearly_masks_as_bands(caplog):
    fc = YearlyMasks(tuple(RasterBand(MARTINIQUE, b) for b in (1, 2, 3)), (2000, 2010, 2020))
    codes, inputs = forest_change_codes(fc, grid_from_raster(MARTINIQUE))
    with rasterio.open(MARTINIQUE) as src:
        assert src.count == 3 and src.nodata is None and src.crs.to_epsg() == 5490
        b = src.read().astype(bool)
    h = hist(codes.compute())
    assert h[0] == (~b[0]).sum() == 3_136_876
    assert h[1] == (b[0] & ~b[1]).sum() == 9_427  # lost 2000–2010: 1.1 % of 825,404
    assert h[2] == (b[0] & b[1] & ~b[2]).sum() == 48_119  # lost 2010–2020: 5.9 % of 815,977
    assert h[3] == (b[0] & b[1] & b[2]).sum() == 767_858 and h[NODATA] == 0
    periods = [period_codes(fc, "train", 2000, 2010), period_codes(fc, "forecast", 2010, 2020)]
    with caplog.at_level(logging.WARNING):
        summary = check_forest_change(fc, codes, inputs, periods)
    assert summary["forest_px"] == {"2000": 825_404, "2010": 815_977, "2020": 767_858}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # these masks never gain forest
    assert ((b[1] & ~b[0]).sum(), (b[2] & ~(b[0] & b[1])).sum()) == (0, 0)


def test_guadeloupe_masks_in_separate_files_are_fcc12345():
    years = (2000, 2005, 2010, 2015, 2020)
    files = ["forest_t1.tif", "forest_2005.tif", "forest_t2.tif", "forest_2015.tif", "forest_t3.tif"]
    grid = grid_from_raster(GUADELOUPE / "fcc12345.tif")
    masks, _ = forest_change_codes(YearlyMasks(tuple(RasterBand(GUADELOUPE / f) for f in files), years), grid)
    codes, _ = forest_change_codes(forestatrisk_codes(RasterBand(GUADELOUPE / "fcc12345.tif"), years), grid)
    masks, codes = masks.compute(), codes.compute()
    # fcc12345's 0 is its nodata value (255 here), the masks' 0 is non-forest: the same pixels
    np.testing.assert_array_equal(np.where(codes == NODATA, 0, codes), masks)
    assert hist(masks)[[1, 2, 3, 4, 5]].tolist() == [8_251, 21_944, 25_986, 29_389, 877_950]
    assert hist(masks)[3:6].sum() == 933_325  # the forest of 2010


def test_hansen_lossyear_and_treecover_by_hand(caplog):
    grid = utm_grid(LOSSYEAR, "EPSG:32619")
    fc = HansenGFC(RasterBand(LOSSYEAR), RasterBand(TREECOVER), canopy_cover_pct=30, last_year=2023)
    codes, inputs = forest_change_codes(fc, grid)
    ly, tc = warped(LOSSYEAR, grid), warped(TREECOVER, grid)
    known = (ly != 255) & (tc != 255)
    forest = known & (tc >= 30)
    expected = np.where(forest, np.where(ly > 0, ly, 24), 0)
    expected[~known] = NODATA
    np.testing.assert_array_equal(codes.compute(), expected)
    assert forest.sum() == 29_603 and (forest & (ly >= 6) & (ly <= 10)).sum() == 549  # lost 2006–2010
    periods = [period_codes(fc, "train", 2005, 2010), period_codes(fc, "forecast", 2010, 2015)]
    with caplog.at_level(logging.WARNING, logger="tiles.forest_change"):
        summary = check_forest_change(fc, codes, inputs, periods)
    below = int((known & (tc < 30) & (ly > 0)).sum())
    assert below == 89 and any(f"{below} loss pixel(s)" in r.getMessage() for r in caplog.records)
    assert summary["forest_px"]["2005"] == (forest & ((ly == 0) | (ly > 5))).sum() == 28_764


def test_prodes_classes_by_hand():
    grid = utm_grid(PRODES, "EPSG:32720")
    fc = prodes_table(RasterBand(PRODES), PRODES_CLASSES)
    assert fc.years == tuple(range(2011, 2022))
    codes = forest_change_codes(fc, grid)[0].compute()
    raw = warped(PRODES, grid)
    h = hist(codes)
    years = {cls: int(name[1:]) for cls, name in PRODES_CLASSES.items() if name.startswith("d")}
    for cls, year in years.items():
        assert h[year - 2011] == (raw == cls).sum()  # dYYYY: lost in (YYYY−1, YYYY] → code YYYY − 2011
    assert h[11] == (raw == 1).sum() == 183_491  # Forest in 2021
    assert h[NODATA] == ((raw == 32) | (raw == 255)).sum()  # clouds and the file's nodata
    p = period_codes(fc, "forecast", 2019, 2021)
    assert p.loss_codes == [9, 10] and h[p.loss_codes].sum() == (raw == 29).sum() + (raw == 33).sum() == 84_136


def test_loss_masks_are_hansen_by_decade():
    grid = utm_grid(LOSSYEAR, "EPSG:32619")
    fc = LossMasks(RasterBand(TREECOVER), (RasterBand(LOSSYEAR), RasterBand(LOSSYEAR)), (2000, 2010, 2020),
                   forest_values=tuple(range(30, 101)), loss_values=(tuple(range(1, 11)), tuple(range(11, 21))))
    masks = forest_change_codes(fc, grid)[0].compute()
    hansen = forest_change_codes(HansenGFC(RasterBand(LOSSYEAR), RasterBand(TREECOVER), 30, 2020), grid)[0].compute()
    decade = np.select([hansen == 0, hansen <= 10, hansen <= 20, hansen == NODATA], [0, 1, 2, NODATA], 3)
    np.testing.assert_array_equal(masks, decade)


def test_a_geographic_reference_grid_is_refused_with_the_fix():
    with pytest.raises(InputDataError) as e:
        grid_from_raster(LOSSYEAR)
    msg = str(e.value)
    assert "geographic CRS" in msg and str(LOSSYEAR) in msg and "resolution_m" in msg and "bounds" in msg
