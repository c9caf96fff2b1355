"""Every stage as a function call on the synthetic region's RunConfig, asserting on what it writes.

tile and train (1 epoch) run once in the ``synthetic_run`` fixture; predict, decide, evaluate and
map run here on that folder. Only the stages' entry points and their public files are used, so
the tests hold while the stages' insides change.
"""

import csv
import json
import math
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from sklearn.metrics import roc_auc_score

from geo_risk.paths import RunPaths
from tests.conftest import synthetic_config
from tiles import open_store

FORECAST_VALID = 6804  # forecast-period valid pixels (forest inside the outline), derived in test_stack.py
FORECAST_LOSS = 504  # of which lost in 2010–15
# valid forecast pixels per zone (rows 0–89 inside the outline): West c 8–31; Centre c 32–63 less
# the corridor (3 columns) and the code-2 flanks (6 columns × 48 rows); East the same (its DEM hole
# is filled, no longer dropped)
ZONE_PIXELS = {"West": 24 * 90, "Centre": 29 * 90 - 6 * 48, "East": 29 * 90 - 6 * 48}


@pytest.fixture(scope="module")
def run(synthetic_run):
    """predict → decide → evaluate → map on the tiled and trained run; returns its RunPaths."""
    from geo_risk.decide import run_decide
    from geo_risk.evaluate import run_evaluate
    from geo_risk.pipeline import run_map
    from geo_risk.predict import run_predict

    for stage in (run_predict, run_decide, run_evaluate, run_map):
        stage(synthetic_run.cfg)
    return RunPaths(synthetic_run.cfg.run_dir)


@pytest.fixture(scope="module")
def forecast(run):
    return open_store(run.stack, "layer stack").sel(period="forecast").load()


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def bayes(prob: np.ndarray, cost) -> tuple[np.ndarray, np.ndarray]:
    """argmin_a C[a,0]·(1−p) + C[a,1]·p per pixel (255 / NaN where p is NaN), written out by hand."""
    cost = np.asarray(cost, dtype=np.float64)
    p = np.nan_to_num(prob.astype(np.float64))
    risks = np.stack([cost[a, 0] * (1 - p) + cost[a, 1] * p for a in range(len(cost))])
    action = risks.argmin(axis=0).astype(np.uint8)
    best = risks.min(axis=0)
    action[np.isnan(prob)] = 255
    best[np.isnan(prob)] = np.nan
    return action, best


def test_tile_writes_stack_chips_and_zones(synthetic_run):
    paths = RunPaths(synthetic_run.cfg.run_dir)
    index = gpd.read_parquet(paths.chips / "index.parquet")
    assert index.split.value_counts().to_dict() == {"val": 6, "train": 5}  # the 14 buffer chips are not stored
    zones = gpd.read_file(paths.zones)
    assert list(zones.zone_id) == [1, 2, 3] and list(zones.name) == ["West", "Centre", "East"]
    stack = open_store(paths.stack, "layer stack")
    assert dict(stack.sizes) == {"period": 2, "band": 9, "y": 96, "x": 96}
    assert int(stack["valid"].sel(period="forecast").sum()) == FORECAST_VALID


def test_train_writes_a_checkpoint_and_one_log_row_per_epoch(synthetic_run):
    paths = RunPaths(synthetic_run.cfg.run_dir)
    assert paths.checkpoint.is_file() and paths.learning_curves.is_file()
    with open(paths.train_log) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == synthetic_run.cfg.train.epochs == 1 and int(rows[0]["epoch"]) == 1
    for key in ("train_total", "val_total"):
        assert math.isfinite(float(rows[0][key])) and float(rows[0][key]) > 0, key


def test_risk_on_the_grid_nan_outside_forest_and_in_unit_range(run, forecast, synthetic_run):
    risk, profile = read(run.probability)
    with rasterio.open(synthetic_run.cfg.data_dir / "forest_change.tif") as ref:
        assert profile["crs"] == ref.crs and profile["transform"] == ref.transform
        assert (profile["height"], profile["width"]) == ref.shape
        codes = ref.read(1)
    assert profile["dtype"] == "float32" and np.isnan(profile["nodata"])
    assert np.isnan(risk[~np.isin(codes, [3, 4, 5])]).all()  # NaN outside 2010 forest
    valid = forecast["valid"].values.astype(bool)
    np.testing.assert_array_equal(np.isfinite(risk), valid)  # every valid forecast pixel, and only those
    assert 0 <= risk[valid].min() and risk[valid].max() <= 1 and risk[valid].std() > 0


def test_zone_risk_table(run):
    t = pd.read_csv(run.zone_risk)
    assert list(t.name) == ["West", "Centre", "East"] and list(t.zone_id) == [1, 2, 3]
    assert dict(zip(t.name, t.pixels)) == ZONE_PIXELS and t.pixels.sum() == FORECAST_VALID
    assert t.mean_risk_model.between(0, 1).all() and t.mean_risk_map.between(0, 1).all()
    # predict.lambda_fair 20: the projection narrows the spread of zone means
    assert t.mean_risk_map.std(ddof=0) < t.mean_risk_model.std(ddof=0)


def test_decision_is_the_bayes_rule_on_the_risk_map(run, synthetic_run):
    risk, _ = read(run.probability)
    decision, profile = read(run.decision)
    expected_cost, _ = read(run.expected_cost)
    cost = synthetic_run.cfg.decision.cost
    assert cost == [[0, 100], [10, 10]]  # patrol where 100·p > 10
    action, best = bayes(risk, cost)
    np.testing.assert_array_equal(decision, action)
    np.testing.assert_allclose(expected_cost, best, rtol=1e-6)
    finite = np.isfinite(risk)
    np.testing.assert_array_equal(decision[finite] == 1, risk[finite] > 0.1)
    assert profile["nodata"] == 255 and (decision[~finite] == 255).all()


def test_decision_with_both_actions_taken(run, synthetic_run, tmp_path):
    """A cost matrix whose threshold splits the map: about half of the pixels are patrolled."""
    from geo_risk.decide import run_decide

    risk, _ = read(run.probability)
    values = np.unique(risk[np.isfinite(risk)])
    mid = len(values) // 2
    t = float((values[mid - 1] + values[mid]) / 2)  # between two pixel values: no ties
    cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", tmp_path,
                           decision={"actions": ["none", "patrol"], "cost": [[0, 1], [t, t]]})
    shutil.copy(run.probability, RunPaths(tmp_path).probability)
    run_decide(cfg)
    decision, _ = read(RunPaths(tmp_path).decision)
    finite = np.isfinite(risk)
    np.testing.assert_array_equal(decision[finite], (risk[finite] > t).astype(np.uint8))
    assert 0.3 < (decision[finite] == 1).mean() < 0.7
    np.testing.assert_array_equal(decision, bayes(risk, cfg.decision.cost)[0])


def test_metrics_are_finite_over_the_valid_forecast_pixels(run, forecast):
    m = json.loads(run.metrics.read_text())
    assert m["period"] == "2010-2015"
    assert m["pixels"] == FORECAST_VALID
    assert m["observed_loss_rate"] == pytest.approx(FORECAST_LOSS / FORECAST_VALID)
    for block in ("model", "baseline_distance_to_edge"):
        assert 0 <= m[block]["auc"] <= 1 and 0 < m[block]["ap"] <= 1, block
    # the baseline, recomputed from the stack: loss happens at the forest edge by construction
    valid = forecast["valid"].values.astype(bool)
    dist = forecast["features"].sel(band="dist_edge_m").values[valid]
    auc = roc_auc_score(forecast["label"].values[valid], -dist)
    assert m["baseline_distance_to_edge"]["auc"] == pytest.approx(auc) and auc > 0.9
    assert m["zones"]["count"] == 3 and math.isfinite(m["zones"]["mean_risk_std"])


def test_map_shows_the_layers_and_the_three_zones(run):
    html = run.map.read_text()
    for text in ("Risk of forest loss", "Decision", "Community zones", "West", "Centre", "East",
                 "Three synthetic territories", "Mean risk (map)"):
        assert text in html, text
    assert html.count("data:image/png;base64,") >= 2
