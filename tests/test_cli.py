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


def test_truncated_raster_is_one_line_naming_the_layer(region):
    """It used to end in a 29-frame RasterioIOError traceback that did not name the layer."""
    cfg, data, run = region
    raw = (data / "altitude.tif").read_bytes()
    (data / "altitude.tif").write_bytes(raw[:len(raw) // 2])
    out = geo_risk("tile", cfg, "--out", run)
    assert_refused(out, run, "layer 'rasters.altitude'", "altitude.tif cannot be read", "corrupt or truncated")
    assert "Traceback" not in out.stderr


def test_text_file_named_tif_names_the_layer(region):
    cfg, data, run = region
    (data / "slope.tif").write_text("slope\n12\n")
    assert_refused(geo_risk("tile", cfg, "--out", run), run, "layer 'rasters.slope'", "is not a readable raster")


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


# --- never a traceback: bad --set values, unwritable outputs, unexpected errors -----------------

def invoke(*args):
    """Run the CLI in-process (fast; lets a test simulate a full disk). Returns click's Result."""
    from typer.testing import CliRunner

    from geo_risk.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code, *phrases):
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


@pytest.mark.parametrize("value,phrases", [
    ("chips.size_px=[64", ["--set chips.size_px=[64", "not valid YAML", "quote it to pass text"]),
    ("x=!!python/object:os.system", ["YAML tags", "not allowed"]),
    ("chips={}", ["--set chips={}", "empty mapping changes nothing", "--set chips.KEY=VALUE"]),
    ("loss={lambda_eco: {}}", ["empty mapping"]),
    ("=3", ["expected KEY=VALUE"]),
])
def test_bad_set_value_is_refused_without_traceback(region, value, phrases):
    cfg, _, run = region
    result = invoke("tile", cfg, "--out", run, "--set", value)
    assert_one_line_error(result, 2, *phrases)
    assert not run.exists()


def test_invalid_set_value_names_the_set_not_the_file(region):
    cfg, _, run = region
    result = invoke("tile", cfg, "--out", run, "--set", "chips.size_px=8")
    assert_one_line_error(result, 2, "--set chips.size_px=8", "greater than or equal to 32")
    assert "region.yaml" not in result.stderr
    assert not run.exists()


def test_out_naming_a_file_is_refused(region):
    cfg, _, run = region
    run.write_text("not a folder")
    result = invoke("decide", cfg, "--out", run)
    assert_one_line_error(result, 2, f"--out {run}", "is a file, not a folder")
    assert run.read_text() == "not a folder"


def write_risk(run, value=0.5):
    """A small risk.tif in the run folder, enough for `geo-risk decide`."""
    import numpy as np

    run.mkdir(exist_ok=True)
    prof = dict(driver="GTiff", width=64, height=64, count=1, dtype="float32", crs="EPSG:3395",
                transform=Affine(30, 0, -6885690, 0, -30, 1857300), nodata=float("nan"))
    with rasterio.open(run / "risk.tif", "w", **prof) as dst:
        dst.write(np.full((64, 64), value, dtype="float32"), 1)


def test_full_disk_during_decide_keeps_the_previous_pair(region, monkeypatch):
    """ENOSPC while writing expected_cost.tif: one clear line, and decision.tif is not replaced
    alone (both outputs are renamed in together or not at all)."""
    import errno
    import os

    import geo_risk.decide

    cfg, _, run = region
    write_risk(run)
    (run / "decision.tif").write_text("previous decision")
    (run / "expected_cost.tif").write_text("previous cost")
    real = geo_risk.decide.write_cog

    def full_disk(path, *args, **kwargs):
        if "expected_cost" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(geo_risk.decide, "write_cog", full_disk)
    result = invoke("decide", cfg, "--out", run)
    assert_one_line_error(result, 2, f"cannot use {run / 'expected_cost.tif'}", "No space left on device",
                          "free disk space")
    assert (run / "decision.tif").read_text() == "previous decision"
    assert (run / "expected_cost.tif").read_text() == "previous cost"
    assert sorted(p.name for p in run.iterdir()) == ["decision.tif", "expected_cost.tif", "risk.tif"]


def test_permission_denied_is_one_clear_line(region, monkeypatch):
    """What a read-only run folder raises, simulated (works as root too)."""
    import errno
    import tempfile

    cfg, _, run = region
    write_risk(run)

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    result = invoke("decide", cfg, "--out", run)
    assert_one_line_error(result, 2, f"cannot use {run}", "Permission denied", "must be writable", "--out DIR")
    assert sorted(p.name for p in run.iterdir()) == ["risk.tif"]


def test_read_only_run_folder_is_one_clear_line(region):
    import os
    import stat

    cfg, _, run = region
    write_risk(run)
    run.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        probe = run / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"chmod does not stop writes for uid {os.getuid()} (root); "
                        "test_permission_denied_is_one_clear_line covers this case")
        out = geo_risk("decide", cfg, "--out", run)
    finally:
        run.chmod(stat.S_IRWXU)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "Permission denied" in out.stderr and "writable" in out.stderr
    assert sorted(p.name for p in run.iterdir()) == ["risk.tif"]


def test_unexpected_error_is_one_line_and_a_log_outside_the_run(region, monkeypatch, tmp_path):
    import tempfile

    import geo_risk.decide

    cfg, _, run = region
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))

    def broken(cfg):
        raise RuntimeError("boom\non two lines")

    monkeypatch.setattr(geo_risk.decide, "run_decide", broken)
    result = invoke("decide", cfg, "--out", run)
    assert_one_line_error(result, 1, "error: unexpected RuntimeError: boom on two lines — full traceback in ")
    assert len(result.stderr.strip().splitlines()) == 1
    (log,) = logs.glob("geo-risk-*.log")
    assert str(log) in result.stderr
    text = log.read_text()
    assert "Traceback" in text and "in broken" in text and "boom" in text
    assert not run.exists()


def test_run_help_names_the_default_config():
    from geo_risk.config import default_config

    out = subprocess.run([sys.executable, "-m", "geo_risk", "run", "--help"], capture_output=True, text=True,
                         timeout=600, env={**__import__("os").environ, "COLUMNS": "400"})
    assert out.returncode == 0
    assert str(default_config()) in " ".join(out.stdout.split())


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_a_killed_tile_leaves_no_staging_folder_behind(signal_name, synthetic_region, tmp_path):
    """A killed `geo-risk tile` used to leave a hidden staging folder (66–180 MB on the demo) that later
    runs never removed; the next tile now removes the dead writer's leftovers."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    args = [sys.executable, "-m", "geo_risk", "tile", str(synthetic_region), "--out", str(run)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(run.glob(".tiles.staging-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    staged = list(run.glob(".tiles.staging-*"))
    os.kill(proc.pid, getattr(signal, signal_name))
    proc.wait(timeout=60)
    if not staged:
        pytest.skip("tile finished before a staging folder could be seen")
    assert list(run.glob(".tiles.staging-*")) or (run / "tiles").exists()  # killed: left behind (or swapped in)
    again = geo_risk("tile", synthetic_region, "--out", run)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []
    assert (run / "tiles" / "stack.zarr").is_dir()
