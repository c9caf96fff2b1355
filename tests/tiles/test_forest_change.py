"""The forest-change formats on hand-made blocks: canonical codes, period codes, refusals."""

from pathlib import Path

import numpy as np
import pytest

from geo_risk_errors import ConfigError
from tiles.forest_change import (NODATA, HansenGFC, LossMasks, RasterBand, YearlyMasks, forestatrisk_codes,
                                 period_codes, prodes_table)

NAN = np.nan
R = RasterBand(Path("x.tif"))


def test_forestatrisk_codes_map_to_themselves_and_nodata_to_255():
    fc = forestatrisk_codes(R, [2000, 2005, 2010, 2015, 2020])
    raw = np.array([[0, 1, 2, 3, 4, 5, NAN, 7]], dtype=np.float32)
    np.testing.assert_array_equal(fc.codes(raw), [[0, 1, 2, 3, 4, 5, NODATA, 0]])
    np.testing.assert_array_equal(fc.unlisted(raw), [[7, 1]])


def test_yearly_masks_code_the_first_year_without_forest():
    fc = YearlyMasks((R, R, R), (2000, 2010, 2020))
    y2000 = np.array([[1, 1, 1, 0, 0, 1, NAN, 1]], dtype=np.float32)
    y2010 = np.array([[1, 1, 0, 0, 1, NAN, 1, 0]], dtype=np.float32)
    y2020 = np.array([[1, 0, 0, 1, 1, 1, 1, NAN]], dtype=np.float32)
    # stays forest → 3; lost by 2020 → 2; lost by 2010 → 1; never forest → 0 (even when a later mask
    # gains it); unknown while still forest → nodata; lost by 2010, then unknown: still known → 1
    np.testing.assert_array_equal(fc.codes(y2000, y2010, y2020), [[3, 2, 1, 0, 0, NODATA, NODATA, 1]])
    # gains: (0, 4) in 2010 and (0, 3), (0, 4) in 2020 were non-forest in an earlier mask
    np.testing.assert_array_equal(fc.gains(y2000, y2010, y2020), [[1, 2]])


def test_hansen_threshold_and_loss_years():
    fc = HansenGFC(R, R, canopy_cover_pct=30, last_year=2010)
    lossyear = np.array([[0, 1, 10, 11, 5, 0, NAN]], dtype=np.float32)
    cover = np.array([[30, 80, 80, 80, 29, 10, 90]], dtype=np.float32)
    # years 2000..2010: forest → 11 (n + 1); lost in 2001 → 1; 2010 → 10; 2011 is after last_year → forest
    np.testing.assert_array_equal(fc.codes(lossyear, cover), [[11, 1, 10, 11, 0, 0, NODATA]])
    np.testing.assert_array_equal(fc.loss_outside_forest(lossyear, cover), [[1]])


def test_loss_masks_follow_the_forest_of_the_first_year():
    fc = LossMasks(R, (R, R), (2000, 2010, 2020))
    forest = np.array([[1, 1, 1, 0, 1, NAN]], dtype=np.float32)
    loss_a = np.array([[0, 1, 0, 1, NAN, 0]], dtype=np.float32)
    loss_b = np.array([[0, 1, 1, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(fc.codes(forest, loss_a, loss_b), [[3, 1, 2, 0, NODATA, NODATA]])
    # loss where there was no forest: (0, 3) in the first mask, (0, 1) again in the second
    np.testing.assert_array_equal(fc.loss_outside_forest(forest, loss_a, loss_b), [[1, 1]])


def test_prodes_classes_by_legend_name():
    fc = prodes_table(R, {1: "Forest", 11: "d2012", 16: "d2017", 32: "Clouds2021", 33: "d2021", 9: "Hydrography"})
    assert fc.years == tuple(range(2011, 2022))
    raw = np.array([[1, 11, 16, 32, 33, 9, 200]], dtype=np.float32)
    # 2011 → index 0: d2012 lost in (2011, 2012] → code 1; d2017 → 6; d2021 → 10; Forest → 11
    np.testing.assert_array_equal(fc.codes(raw), [[11, 1, 6, NODATA, 10, 0, 0]])


@pytest.mark.parametrize("start,end,past,forest,loss,past_codes", [
    (2005, 2010, None, [2, 3, 4, 5], [2], [1]),  # forestatrisk's demo: past window as long as the period
    (2010, 2015, None, [3, 4, 5], [3], [2]),
    (2010, 2020, None, [3, 4, 5], [3, 4], [1, 2]),
    (2015, 2020, 2005, [4, 5], [4], [2, 3]),
    (2000, 2010, None, [1, 2, 3, 4, 5], [1, 2], []),  # nothing is known before 2000
])
def test_period_codes(start, end, past, forest, loss, past_codes):
    fc = forestatrisk_codes(R, [2000, 2005, 2010, 2015, 2020])
    p = period_codes(fc, "train", start, end, past)
    assert (p.forest_codes, p.loss_codes, p.past_loss_codes) == (forest, loss, past_codes)


@pytest.mark.parametrize("start,end,past,phrase", [
    (2007, 2010, None, "periods.train.start_year 2007: layers.forest_change (format codes) holds the forest "
                       "state in 2000, 2005, 2010, 2015, 2020 only"),
    (2010, 2021, None, "periods.train.end_year 2021"),
    (2010, 2015, 2003, "periods.train.past_loss_start_year 2003"),
])
def test_period_codes_refuse_years_the_format_does_not_hold(start, end, past, phrase):
    fc = forestatrisk_codes(R, [2000, 2005, 2010, 2015, 2020])
    with pytest.raises(ConfigError) as e:
        period_codes(fc, "train", start, end, past)
    assert phrase in str(e.value)
