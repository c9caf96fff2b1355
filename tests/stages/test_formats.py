"""Every forest-change format on the synthetic region: the same pixels written as forestatrisk codes,
yearly masks (bands of one file, or one file per year), Hansen GFC, PRODES classes and loss masks
(tests/data/synthetic/data.py, ``write_formats``) must give the very same stack, and each format
refuses periods it cannot express."""

import logging

import numpy as np
import pytest
import yaml

from geo_risk.config import load_config
from geo_risk.tiling import stack_spec
from geo_risk_errors import ConfigError, InputDataError
from tests.data.synthetic import data as region
from tiles import build_stack

FORMATS = ["yearly_masks_bands", "yearly_masks_files", "hansen", "prodes", "loss_masks"]


@pytest.fixture(scope="module")
def formats(synthetic_region):
    return region.write_formats(synthetic_region.parent)


def variant(region_yaml, tmp_path, forest_change=None, **top):
    """The synthetic region's config with ``layers.forest_change`` (and top-level keys) replaced."""
    raw = yaml.safe_load(region_yaml.read_text())
    if forest_change is not None:
        raw["layers"]["forest_change"] = forest_change
    raw.update(top)
    raw["data_dir"] = str(region_yaml.parent)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_stack_of_the_codes(fmt, formats, synthetic_region, synthetic_stack, tmp_path):
    expected = synthetic_stack[0]
    ds, _ = build_stack(stack_spec(variant(synthetic_region, tmp_path, formats[fmt])))
    ds = ds.compute()
    assert list(ds.band.values) == list(expected.band.values)
    for var in ("features", "label", "valid", "eco", "zone"):
        np.testing.assert_array_equal(ds[var].values, expected[var].values, err_msg=f"{fmt}: {var}")
    assert ds.attrs["forest_change"]["format"] == formats[fmt]["format"]


def test_codes_counts_per_year_by_hand(synthetic_stack):
    # codes 1 (576 px), 2 (576), 3 (576), 5 (6720): forest in 2000 = all four = 8448, 2005 = 7872,
    # 2010 = 7296, 2015 = 2020 = 6720; code 0 is the file's nodata value (768 px)
    fc = synthetic_stack[0].attrs["forest_change"]
    assert fc["forest_px"] == {"2000": 8448, "2005": 7872, "2010": 7296, "2015": 6720, "2020": 6720}
    assert fc["nodata_px"] == 768 and fc["grid_px"] == 96 * 96 and fc["years"] == list(region.YEARS)
    assert synthetic_stack[0].attrs["past_loss"] == {"train": "2000-2005", "forecast": "2005-2010"}


def test_hansen_loss_below_the_canopy_threshold_is_ignored_with_a_warning(formats, synthetic_region, tmp_path,
                                                                          caplog):
    with caplog.at_level(logging.WARNING, logger="tiles.forest_change"):
        build_stack(stack_spec(variant(synthetic_region, tmp_path, formats["hansen"])))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("48 loss pixel(s)" in w and "below the canopy threshold" in w for w in warned), warned


def test_a_mask_that_gains_forest_is_warned_with_its_count(synthetic_region, tmp_path, caplog):
    import rasterio

    masks = region.yearly_forest_masks()
    masks[2, 0:10, 0:4] = 1  # 40 non-forest pixels of 2000 and 2005 become forest in 2010
    with rasterio.open(synthetic_region.parent / "forest_masks.tif") as src:
        profile = src.profile
    path = tmp_path / "gaining.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(masks)
    fc = {"format": "yearly_masks", "path": str(path), "bands": {y: i + 1 for i, y in enumerate(region.YEARS)}}
    with caplog.at_level(logging.WARNING, logger="tiles.forest_change"):
        ds, _ = build_stack(stack_spec(variant(synthetic_region, tmp_path, fc)))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "40 pixel(s) are forest in the 2010 mask but not in an earlier one" in warned[0]
    # they stay non-forest: the forest of 2010 is that of the codes
    assert ds.attrs["forest_change"]["forest_px"]["2010"] == 7296


@pytest.mark.parametrize("fmt,period,years,held", [
    ("codes", "train", {"start_year": 2007, "end_year": 2010}, "2000, 2005, 2010, 2015, 2020"),
    ("yearly_masks_files", "forecast", {"start_year": 2010, "end_year": 2025}, "2000, 2005, 2010, 2015, 2020"),
    ("hansen", "train", {"start_year": 1995, "end_year": 2005}, "every year from 2000 to 2020"),
    ("prodes", "train", {"start_year": 2001, "end_year": 2005}, "every year from 2002 to 2020"),
    ("loss_masks", "forecast", {"start_year": 2010, "end_year": 2012}, "2000, 2005, 2010, 2015, 2020"),
])
def test_periods_outside_the_years_a_format_holds_are_refused(fmt, period, years, held, formats,
                                                             synthetic_region, tmp_path):
    periods = {"train": {"start_year": 2005, "end_year": 2010}, "forecast": {"start_year": 2010, "end_year": 2015}}
    periods[period] = years
    cfg = variant(synthetic_region, tmp_path, formats[fmt], periods=periods)
    with pytest.raises(ConfigError) as e:
        stack_spec(cfg)
    msg = str(e.value)
    assert f"periods.{period}." in msg and f"holds the forest state in {held} only" in msg
    assert f"format {formats[fmt]['format']}" in msg


def test_a_period_starting_in_the_first_year_leaves_the_past_loss_bands_out(synthetic_region, tmp_path):
    periods = {"train": {"start_year": 2000, "end_year": 2005}, "forecast": {"start_year": 2005, "end_year": 2010}}
    cfg = variant(synthetic_region, tmp_path, periods=periods)
    ds, _ = build_stack(stack_spec(cfg))
    assert list(ds.band.values)[:2] == ["forest", "dist_edge_m"] and "past_loss" not in ds.band.values
    assert ds.attrs["past_loss"] == {"train": "none", "forecast": "2000-2005"}
    # train 2000→2005: forest = every forest code (8448 px), loss = code 1 (576 px)
    assert int(ds["label"].sel(period="train").sum()) == 576
    assert int(ds["features"].sel(period="train", band="forest").sum()) == 8448


def test_loss_that_never_occurs_is_refused_before_anything_is_written(synthetic_region, tmp_path):
    """It used to exit 0 with zero positive pixels, "AUC nan" and a model written."""
    periods = {"train": {"start_year": 2015, "end_year": 2020}, "forecast": {"start_year": 2010, "end_year": 2015}}
    cfg = variant(synthetic_region, tmp_path, periods=periods)
    with pytest.raises(InputDataError) as e:
        build_stack(stack_spec(cfg))
    msg = str(e.value)
    assert "period 'train' (2015→2020)" in msg and "no pixel of layers.forest_change" in msg
    assert "forest_change.tif" in msg and "no positive pixel" in msg and "min_valid_fraction" not in msg


def test_old_code_lists_and_a_plain_path_are_refused_with_the_migration(synthetic_region, tmp_path):
    raw = yaml.safe_load(synthetic_region.read_text())
    raw["data_dir"] = str(synthetic_region.parent)
    raw["layers"]["forest_change"] = "forest_change.tif"
    raw["periods"]["train"]["forest_codes"] = [2, 3, 5]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "layers.forest_change: give a mapping with its format" in msg and "format: codes" in msg
    assert "periods.train: forest_codes: periods are years only" in msg


@pytest.mark.parametrize("fc,phrase", [
    ({"format": "yearly_masks", "path": "forest_masks.tif"}, "give either files {year: file} or path and bands"),
    ({"format": "yearly_masks", "files": {2000: "forest_2000.tif"}}, "at least two years"),
    ({"format": "loss_masks", "forest": {"path": "forest_2000.tif", "year": 2000},
      "loss": [{"path": "loss_2005_2010.tif", "start_year": 2005, "end_year": 2010}]},
     "must follow each other from the forest mask's year 2000"),
    ({"format": "hansen", "lossyear": "lossyear.tif", "treecover2000": "treecover2000.tif"}, "last_year"),
    ({"format": "tmf", "path": "x.tif"}, "does not match any of the expected tags"),
])
def test_malformed_formats_are_config_errors(fc, phrase, synthetic_region, tmp_path):
    with pytest.raises(ConfigError, match="layers.forest_change") as e:
        variant(synthetic_region, tmp_path, fc)
    assert phrase in str(e.value)


def test_prodes_without_loss_classes_is_refused(synthetic_region, tmp_path):
    fc = {"format": "prodes", "path": "prodes.tif", "classes": {1: "Forest", 0: "NonForest"}}
    with pytest.raises(ConfigError, match=r"no class named dYYYY"):
        stack_spec(variant(synthetic_region, tmp_path, fc))
