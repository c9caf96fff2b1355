"""The command line, and the bad-input promises: a clear error naming file and layer, nothing written."""

import shutil
import subprocess
import sys

import pytest
import rasterio
from affine import Affine


def geo_risk(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "geo_risk", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_teaches_every_stage():
    out = geo_risk("--help")
    assert out.returncode == 0
    for cmd in ("tile", "train", "predict", "decide", "evaluate", "map", "run"):
        assert cmd in out.stdout
    assert "--set" in geo_risk("run", "--help").stdout


@pytest.fixture
def region(tmp_path, demo_dir, demo_config):
    """A private copy of the demo data and config, to break on purpose."""
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    cfg = tmp_path / "region.yaml"
    cfg.write_text(demo_config.read_text().replace("../data/demo/guadeloupe", str(data)))
    return cfg, data, tmp_path / "run"


def assert_refused(out, run_dir, *phrases):
    """Exit code 2, every phrase in the message, and nothing written in the run folder."""
    assert out.returncode == 2, out.stderr
    for phrase in phrases:
        assert phrase in out.stderr, (phrase, out.stderr)
    leftovers = [p for p in run_dir.rglob("*")] if run_dir.exists() else []
    assert leftovers == [], leftovers


def test_config_typo_names_the_key(region):
    cfg, _, run = region
    cfg.write_text(cfg.read_text().replace("min_zone_pixels", "min_zone_pixel"))
    assert_refused(geo_risk("run", cfg, "--out", run), run, "loss.min_zone_pixel: unknown key", "region.yaml")


def test_missing_file_names_layer_and_file(region):
    cfg, data, run = region
    (data / "slope.tif").unlink()
    assert_refused(geo_risk("run", cfg, "--out", run), run, "layer 'rasters.slope'", "slope.tif not found")


def test_vector_without_crs_names_layer(region):
    cfg, data, run = region
    (data / "rivers_PROJ.prj").unlink()
    assert_refused(geo_risk("tile", cfg, "--out", run), run, "layer 'distance_to.rivers'", "has no CRS")


def test_raster_outside_grid_names_layer(region):
    cfg, data, run = region
    with rasterio.open(data / "altitude.tif", "r+") as ds:
        t = ds.transform
        ds.transform = Affine(t.a, t.b, t.c + 3e6, t.d, t.e, t.f)
    assert_refused(geo_risk("tile", cfg, "--out", run), run, "layer 'rasters.altitude'", "does not overlap")


@pytest.mark.parametrize("stage,hint", [("train", "geo-risk tile"), ("predict", "geo-risk train"),
                                        ("decide", "geo-risk predict"), ("evaluate", "geo-risk predict"),
                                        ("map", "risk.tif does not exist")])
def test_later_stage_without_earlier_one_says_what_to_run(region, stage, hint):
    cfg, _, run = region
    assert_refused(geo_risk(stage, cfg, "--out", run), run, hint)


def test_failed_split_leaves_no_tiles(region):
    """Only 4 chips are all forest: no validation block is left. The stack was already computed,
    but the tiles folder appears only when every part of it succeeded."""
    cfg, _, run = region
    out = geo_risk("tile", cfg, "--out", run, "--set", "chips.min_valid_fraction=1.0")
    assert_refused(out, run, "blocked split left", "validation chips", "chips.block_size_px")
