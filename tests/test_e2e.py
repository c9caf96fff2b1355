"""The whole demo pipeline on the real Guadeloupe data, sized for CI (few chips, one epoch)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
from rio_cogeo.cogeo import cog_validate

TINY = ["--set", "chips.max_chips=60", "--set", "train.epochs=1", "--set", "train.batch_size=8",
        "--set", "chips.val_fraction=0.3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, demo_config):
    out = tmp_path_factory.mktemp("e2e") / "guadeloupe"
    proc = subprocess.run([sys.executable, "-m", "geo_risk", "run", str(demo_config), "--out", str(out), *TINY],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "AUC" in proc.stdout and str(out) in proc.stdout
    return out


def test_outputs_exist(run_dir):
    for name in ("risk.tif", "decision.tif", "expected_cost.tif", "map.html", "metrics.json", "model.pt",
                 "config.yaml", "train_log.csv", "learning_curves.png"):
        assert (run_dir / name).is_file(), name


def test_train_log_and_learning_curves_hold_the_epoch(run_dir):
    import pandas as pd
    from matplotlib.image import imread

    from geo_risk.artifacts import train_log_columns
    from losses import LOSS_PARTS

    log = pd.read_csv(run_dir / "train_log.csv")
    assert list(log.columns) == train_log_columns(LOSS_PARTS) and log.epoch.tolist() == [1]  # TINY: one epoch
    assert np.isfinite(log.drop(columns="epoch").to_numpy()).all()
    assert 0 < log.train_accuracy[0] < 1 and 0.5 < log.val_auc[0] <= 1 and 0 < log.val_ap[0] <= 1
    png = imread(run_dir / "learning_curves.png")
    assert png.shape[0] > 300 and png.shape[1] > 1000 and png.std() > 0.01  # three panels, not blank


def test_rasters_on_reference_grid(run_dir, demo_dir):
    with rasterio.open(demo_dir / "forest" / "fcc12345.tif") as ref:
        crs, transform, shape = ref.crs, ref.transform, ref.shape
        codes = ref.read(1)
    forest_2010 = np.isin(codes, [3, 4, 5])
    with rasterio.open(run_dir / "risk.tif") as src:
        assert src.crs == crs and src.transform == transform and src.shape == shape
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        risk = src.read(1)
    assert np.isnan(risk[~forest_2010]).all()  # nodata outside forest
    inside = risk[forest_2010 & np.isfinite(risk)]
    assert inside.size > 0.95 * forest_2010.sum() and inside.min() >= 0 and inside.max() <= 1
    with rasterio.open(run_dir / "decision.tif") as src:
        assert src.crs == crs and src.transform == transform and src.nodata == 255 and src.dtypes[0] == "uint8"
        assert set(np.unique(src.read(1))) <= {0, 1, 2, 255}  # none / monitor / patrol
        assert src.colormap(1)[1][:3] != src.colormap(1)[0][:3]
    with rasterio.open(run_dir / "expected_cost.tif") as src:
        assert src.crs == crs and np.isnan(src.nodata)


def test_risk_is_a_valid_cog(run_dir):
    for name in ("risk.tif", "decision.tif", "expected_cost.tif"):
        valid, errors, _ = cog_validate(str(run_dir / name))
        assert valid, (name, errors)


def test_metrics_are_finite_and_baseline_present(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    from geo_risk.artifacts import METRICS_FORMAT

    assert m["format"] == METRICS_FORMAT and m["period"] == "2010-2015" and m["pixels"] > 800_000
    for block in ("model", "baseline_distance_to_edge"):
        assert 0.5 < m[block]["auc"] <= 1 and math.isfinite(m[block]["ap"])
    assert m["baseline_distance_to_edge"]["auc"] > 0.8  # forestatrisk's strongest covariate is informative


def test_checkpoint_loads_safely_and_carries_what_predict_needs(run_dir):
    ckpt = torch.load(run_dir / "model.pt", weights_only=True)
    meta = ckpt["meta"]
    assert meta["bands"][:4] == ["forest", "past_loss", "dist_edge_m", "dist_past_loss_m"]
    assert set(meta["band_stats"]) == set(meta["bands"]) and meta["temperature"] > 0
    assert "guadeloupe-demo" in meta["config_yaml"]


def test_map_embeds_layers(run_dir):
    html = (run_dir / "map.html").read_text()
    assert "Risk of forest loss" in html and "Decision" in html and "Voronoi" in html
    assert "Mean risk (map)" in html  # zone_risk.csv joined to the zones tooltip
    assert html.count("data:image/png;base64,") >= 2


def test_zone_risk_table_shows_the_fairness_projection(run_dir):
    import pandas as pd

    t = pd.read_csv(run_dir / "zone_risk.csv")
    assert list(t.columns) == ["zone_id", "name", "pixels", "mean_risk_model", "mean_risk_map", "logit_offset"]
    assert len(t) >= 20 and t.name.notna().all() and "Basse-Terre" in set(t.name)
    # the demo config projects the map (predict.lambda_fair > 0): the spread of zone means shrinks,
    # the expected lost area (pixel-weighted mean risk) stays
    assert t.mean_risk_map.std(ddof=0) < 0.8 * t.mean_risk_model.std(ddof=0)
    w = t.pixels / t.pixels.sum()
    assert (w * t.mean_risk_map).sum() == pytest.approx((w * t.mean_risk_model).sum(), rel=0.05)
    with rasterio.open(run_dir / "risk.tif") as src:
        assert float(src.tags()["zone_fairness_lambda"]) > 0
    z = json.loads((run_dir / "metrics.json").read_text())["zones"]
    assert z["projection_lambda_fair"] > 0 and z["mean_risk_std"] < z["mean_risk_std_before_projection"]
    # one definition of a counted zone (loss.min_zone_pixels) for the table and metrics.json
    assert z["min_pixels"] == 50 and z["count"] == len(t)
    assert z["mean_risk_std_before_projection"] == pytest.approx(t.mean_risk_model.std(ddof=0), rel=1e-4)


def test_run_without_zones(tmp_path, demo_config):
    """A region with no zones layer: the projection has nothing to do and every stage still runs."""
    out = tmp_path / "nozones"
    proc = subprocess.run([sys.executable, "-m", "geo_risk", "run", str(demo_config), "--out", str(out), *TINY,
                           "--set", "layers.zones=null"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no zones" in proc.stdout
    assert (out / "zone_risk.csv").read_text() == "zone_id,name,pixels,mean_risk_model,mean_risk_map,logit_offset\n"
    assert "Community zones" not in (out / "map.html").read_text()
