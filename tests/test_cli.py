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


def assert_nothing_written(run_dir):
    leftovers = [p for p in run_dir.rglob("*")] if run_dir.exists() else []
    assert leftovers == [], leftovers


def test_config_typo_names_the_key(region):
    cfg, _, run = region
    cfg.write_text(cfg.read_text().replace("min_zone_pixels", "min_zone_pixel"))
    out = geo_risk("run", cfg, "--out", run)
    assert out.returncode == 2
    assert "loss.min_zone_pixel: unknown key" in out.stderr and "region.yaml" in out.stderr
    assert_nothing_written(run)


def test_missing_file_names_layer_and_file(region):
    cfg, data, run = region
    (data / "slope.tif").unlink()
    out = geo_risk("run", cfg, "--out", run)
    assert out.returncode == 2
    assert "layer 'rasters.slope'" in out.stderr and "slope.tif not found" in out.stderr
    assert_nothing_written(run)


def test_vector_without_crs_names_layer(region):
    cfg, data, run = region
    (data / "rivers_PROJ.prj").unlink()
    out = geo_risk("tile", cfg, "--out", run)
    assert out.returncode == 2
    assert "layer 'distance_to.rivers'" in out.stderr and "has no CRS" in out.stderr
    assert_nothing_written(run)


def test_raster_outside_grid_names_layer(region):
    cfg, data, run = region
    with rasterio.open(data / "altitude.tif", "r+") as ds:
        t = ds.transform
        ds.transform = Affine(t.a, t.b, t.c + 3e6, t.d, t.e, t.f)
    out = geo_risk("tile", cfg, "--out", run)
    assert out.returncode == 2
    assert "layer 'rasters.altitude'" in out.stderr and "does not overlap" in out.stderr
    assert_nothing_written(run)


def test_later_stage_without_earlier_one_says_what_to_run(region):
    cfg, _, run = region
    out = geo_risk("predict", cfg, "--out", run)
    assert out.returncode == 2 and "geo-risk train" in out.stderr
