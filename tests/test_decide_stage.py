"""The decide stage (geo_risk/decide/stage.py): files in, the plan out as one set; per-pixel costs
from the stack and from rasters; uncertainty; bad inputs refused with the file or key and the fix."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine

from geo_risk.decide import DecisionInputError, DecisionLayerError, DecisionSummary, run_decide
from geo_risk.paths import RunPaths
from tests.conftest import synthetic_config

T = Affine(30, 0, -6885690, 0, -30, 1857300)
# 64 × 64 px in four blocks of 32 × 32: p = 0.02 (none), 0.5 (patrol), NaN (off forest), 0.2 (patrol)
BLOCKS = np.array([[0.02, 0.5], [np.nan, 0.2]])
PROB = BLOCKS.repeat(32, 0).repeat(32, 1).astype(np.float32)
THREE = [[0, 100], [2, 60], [10, 25]]  # the demo's: none / monitor / patrol


def write(path, arr, transform=T, crs="EPSG:3395", nodata=np.nan):
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=str(arr.dtype), crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(arr, 1)


def run_cfg(tmp_path, demo_config, prob=PROB, **decision):
    from geo_risk.config import load_config

    cfg = load_config(demo_config, {"output_dir": str(tmp_path), "decision": decision})
    write(tmp_path / "risk.tif", prob)
    return cfg


def r_p(p, cost):
    cost = np.asarray(cost, dtype=float)
    return cost[:, 0, None] * (1 - p) + cost[:, 1, None] * p


def test_plan_under_a_patrol_budget(tmp_path, demo_config, caplog):
    """100 pixels (9 ha) of patrol: they go to p = 0.5, where patrol saves most over monitoring."""
    cfg = run_cfg(tmp_path, demo_config, budgets=[{"action": "patrol", "max_ha": 9}])
    with caplog.at_level(logging.INFO, logger="geo_risk.decide"):
        result = run_decide(cfg)
    with rasterio.open(result.decision) as d, rasterio.open(result.expected_cost) as c:
        dec, cost, tags, cmap = d.read(1), c.read(1), d.tags(), d.colormap(1)
        assert d.nodata == 255 and c.tags()["units"] == "cost units"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "decision.tif", "decision_summary.json", "expected_cost.tif", "risk.tif"]
    assert (dec[PROB == np.float32(0.02)] == 0).all() and (dec[np.isnan(PROB)] == 255).all()
    assert (dec == 2).sum() == 100 and (dec[PROB == np.float32(0.5)] == 2).sum() == 100
    assert (dec[PROB == np.float32(0.2)] == 1).all()  # the budget is spent: p = 0.2 is monitored
    valid = np.isfinite(PROB)
    np.testing.assert_allclose(cost[valid], r_p(PROB[valid].astype(float), THREE)[dec[valid], np.arange(valid.sum())],
                               rtol=1e-6)
    assert len({cmap[i][:3] for i in range(3)}) == 3
    assert json.loads(tags["cost_matrix"]) == THREE and json.loads(tags["actions"]) == ["none", "monitor", "patrol"]
    assert json.loads(tags["budgets"]) == [{"action": "patrol", "max_ha": 9.0}] and tags["categories"] == \
        "0=none, 1=monitor, 2=patrol"
    assert json.loads(tags["binding_budgets"]) == ["patrol"]

    s = DecisionSummary.read(tmp_path / "decision_summary.json")
    assert s == result.summary
    assert [(r.action, r.pixels) for r in s.actions] == [("none", 1024), ("monitor", 2048 - 100), ("patrol", 100)]
    assert sum(r.area_ha for r in s.actions) == pytest.approx(s.forest_ha) == pytest.approx(3072 * 0.09)
    (b,) = s.budgets
    assert b.binding and b.used == pytest.approx(9) and b.use_without_budgets == pytest.approx(2048 * 0.09)
    # at the margin a pixel of p = 0.5 saves (2 + 58·0.5) − (10 + 15·0.5) = 13.5 per 0.09 ha
    assert b.shadow_price == pytest.approx(13.5 / 0.09)
    assert s.no_action_cost == pytest.approx(1024 * (2 + 50 + 20))
    assert s.saved_vs_no_action == pytest.approx(s.no_action_cost - s.expected_cost)
    assert s.unconstrained_cost < s.expected_cost < s.no_action_cost
    assert s.dual_bound == pytest.approx(s.expected_cost)
    assert "budget patrol: 9 of 9 ha used" in caplog.text and "binds — shadow price 150 per ha" in caplog.text
    assert "this plan saves" in caplog.text


def test_failure_on_a_later_output_replaces_none(tmp_path, demo_config, monkeypatch):
    import geo_risk.decide

    cfg = run_cfg(tmp_path, demo_config)
    (tmp_path / "decision.tif").write_text("old decision")
    real = geo_risk.decide.write_cog
    calls = []

    def fail_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(geo_risk.decide, "write_cog", fail_second)
    with pytest.raises(OSError, match="No space"):
        geo_risk.decide.run_decide(cfg)
    assert (tmp_path / "decision.tif").read_text() == "old decision"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision.tif", "risk.tif"]


def test_budget_larger_than_the_forest_and_dominated_action_warn(tmp_path, demo_config, caplog):
    cfg = run_cfg(tmp_path, demo_config, cost=[[0, 100], [50, 60], [10, 25]],
                  budgets=[{"action": "patrol", "max_ha": 1000}])
    with caplog.at_level(logging.WARNING, logger="geo_risk.decide"):
        s = run_decide(cfg).summary
    assert "budget of patrol: 1,000 ha is at least what giving the action to every pixel would use (276.48 ha — " \
           "the whole forest): it can never bind" in caplog.text
    assert "action 'monitor' is never the cheapest for any probability" in caplog.text
    assert len(s.warnings) == 2 and not s.budgets[0].binding


def test_cautious_rule_on_uncertainty(tmp_path, demo_config):
    """σ = 0.05 where p = 0.02: with k = 1 the rule sees 0.07 > 2/42 and monitors there."""
    cfg = run_cfg(tmp_path, demo_config, budgets=[], uncertainty_k=1.0)
    sigma = np.where(np.isfinite(PROB), np.float32(0.0), np.nan).astype(np.float32)
    sigma[:32, :32] = 0.05
    write(tmp_path / "uncertainty.tif", sigma)
    s = run_decide(cfg).summary
    with rasterio.open(tmp_path / "decision.tif") as d:
        dec = d.read(1)
        assert d.tags()["uncertainty_k"] == "1"
    assert (dec[:32, :32] == 1).all() and s.uncertainty_k == 1
    # the expected cost is under p: monitoring p = 0.02 costs 2 + 58·0.02 = 3.16 against 2 for nothing
    assert s.expected_cost - s.risk_neutral_cost == pytest.approx(1024 * (3.16 - 2))


def test_cautious_rule_without_uncertainty_decides_on_p(tmp_path, demo_config, caplog):
    cfg = run_cfg(tmp_path, demo_config, uncertainty_k=1.0)
    with caplog.at_level(logging.WARNING, logger="geo_risk.decide"):
        s = run_decide(cfg).summary
    assert s.uncertainty_k == 0 and "uncertainty.tif is missing: actions are chosen on p alone" in caplog.text


def test_uncertainty_on_another_grid_is_refused(tmp_path, demo_config):
    cfg = run_cfg(tmp_path, demo_config, uncertainty_k=1.0)
    write(tmp_path / "uncertainty.tif", np.zeros((32, 32), np.float32), transform=T @ Affine.scale(2))
    with pytest.raises(DecisionLayerError, match=r"uncertainty.tif: .* is on another grid \(32×32 px of 60×60.*"
                                                 r"gdalwarp -t_srs EPSG:3395 .* -ts 64 64"):
        run_decide(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["risk.tif", "uncertainty.tif"]


def test_cost_raster_scales_the_damage(tmp_path, demo_config):
    """damage_scale.raster: the damage (C[a][lost] − C[a][stays]) × 3 in the left half."""
    (tmp_path / "data").mkdir()
    value = np.ones((64, 64), np.float32)
    value[:, :32] = 3
    write(tmp_path / "data" / "value.tif", value, nodata=None)
    (tmp_path / "run").mkdir()
    cfg = run_cfg(tmp_path / "run", demo_config, budgets=[],
                  damage_scale={"raster": str(tmp_path / "data" / "value.tif")})
    run_decide(cfg)
    with rasterio.open(tmp_path / "run" / "decision.tif") as d, \
            rasterio.open(tmp_path / "run" / "expected_cost.tif") as c:
        dec, cost = d.read(1), c.read(1)
    # p = 0.02, damage × 3: none 300·0.02 = 6 > monitor 2 + 174·0.02 = 5.48
    assert (dec[:32, :32] == 1).all() and cost[0, 0] == pytest.approx(2 + 174 * 0.02)
    assert (dec[:32, 32:] == 2).all() and cost[0, 40] == pytest.approx(10 + 15 * 0.5)  # unscaled half
    with rasterio.open(tmp_path / "run" / "decision.tif") as d:
        assert json.loads(d.tags()["damage_scale"]) == {"raster": str(tmp_path / "data" / "value.tif")}


@pytest.mark.parametrize("case", ["grid", "nodata", "missing"])
def test_bad_cost_raster_is_refused(tmp_path, demo_config, case):
    path = tmp_path / "value.tif"
    if case == "grid":
        write(path, np.ones((64, 64), np.float32), transform=T @ Affine.translation(5, 0))
        match = r"decision.action_cost_scale.raster: .*value.tif is on another grid .* resample it .*gdalwarp"
    elif case == "nodata":
        arr = np.ones((64, 64), np.float32)
        arr[40, 40] = np.nan
        write(path, arr)
        match = r"decision.action_cost_scale.raster \(.*value.tif\): 1 forest pixel\(s\) have no value"
    else:
        match = "value.tif not found"
    run = tmp_path / "run"
    run.mkdir()
    cfg = run_cfg(run, demo_config, action_cost_scale={"raster": str(path)})
    with pytest.raises(DecisionLayerError, match=match):
        run_decide(cfg)
    assert sorted(p.name for p in run.iterdir()) == ["risk.tif"]


def test_eco_scaling_without_a_stack_names_the_fix(tmp_path, demo_config):
    cfg = run_cfg(tmp_path, demo_config, damage_scale={"eco_factor": 1.0})
    with pytest.raises(DecisionLayerError, match=r"decision.damage_scale.eco_factor needs the layer stack .*"
                                                 r"stack.zarr, which is missing — run `geo-risk tile CONFIG` first"):
        run_decide(cfg)


@pytest.mark.parametrize("fill,match", [(np.nan, "has no pixel with a probability"), (1.5, "outside \\[0, 1\\]")])
def test_unusable_risk_map_is_refused(tmp_path, demo_config, fill, match):
    cfg = run_cfg(tmp_path, demo_config, prob=np.full((8, 8), fill, np.float32))
    with pytest.raises(DecisionInputError, match=match):
        run_decide(cfg)


def test_costs_from_the_stack_eco_zones_and_distance(synthetic_run, tmp_path):
    """On the synthetic region: damage × (1 + 2·eco) × 3 in zone East, patrol cost × (1 + 0.5 per km
    from a road); every pixel's expected cost checked against the formula on the stack's layers."""
    from tiles import open_store

    src = RunPaths(synthetic_run.cfg.run_dir)
    run = tmp_path / "run"
    run.mkdir()
    (run / "tiles").symlink_to(src.tiles, target_is_directory=True)
    stack = open_store(src.stack, "layer stack").sel(period="forecast").load()
    valid = stack["valid"].values.astype(bool)
    with rasterio.open(synthetic_run.cfg.data_dir / "forest_change.tif") as ref:
        transform, crs = ref.transform, ref.crs
    prob = np.where(valid, np.float32(0.04), np.nan).astype(np.float32)
    write(run / "risk.tif", prob, transform=transform, crs=crs)
    cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", run, decision={
        "actions": ["none", "monitor", "patrol"], "cost": THREE,
        "damage_scale": {"eco_factor": 2.0, "zones": {"East": 3.0}},
        "action_cost_scale": {"distance_band": "dist_roads_m", "per_km": 0.5}})
    run_decide(cfg)
    eco = stack["eco"].values[valid].astype(float)
    zone = stack["zone"].values[valid]
    dist = stack["features"].sel(band="dist_roads_m").values[valid].astype(float)
    t = 1 + 0.5 * dist / 1000
    v = (1 + 2 * eco) * np.where(zone == 3, 3.0, 1.0)  # East is zone 3
    k, d = np.array([0, 2, 10.0]), np.array([100, 58, 15.0])
    r = k[:, None] * t + d[:, None] * v * 0.04
    with rasterio.open(run / "decision.tif") as dd, rasterio.open(run / "expected_cost.tif") as cc:
        dec, cost = dd.read(1)[valid], cc.read(1)[valid]
    np.testing.assert_array_equal(dec, r.argmin(axis=0))
    np.testing.assert_allclose(cost, r.min(axis=0), rtol=1e-5)
    assert len(np.unique(dec)) >= 2  # the layers make the plan vary across the region

    bad = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", run,
                           decision={"damage_scale": {"zones": {"North": 2.0}}})
    with pytest.raises(DecisionLayerError, match=r"no zone is named 'North' .* zones: \['Centre', 'East', 'West'\]"):
        run_decide(bad)
    bad = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", run,
                           decision={"action_cost_scale": {"distance_band": "dist_shops_m", "per_km": 1}})
    with pytest.raises(DecisionLayerError, match="band 'dist_shops_m' is not in the stack"):
        run_decide(bad)


def test_cli_refuses_nan_costs_and_prints_the_plan(tmp_path, demo_config):
    """Once, NaN costs exited 0 with 'total expected cost 0' and an all-NaN expected_cost.tif."""
    cfg = tmp_path / "region.yaml"
    text = demo_config.read_text().replace("../data/demo/guadeloupe", str(demo_config.parent.parent / "data/demo/"
                                                                              "guadeloupe"))
    cfg.write_text(text.replace("cost: [[0, 100], [2, 60], [10, 25]]", "cost: [[0, .nan], [2, 60], [10, 25]]"))
    run = tmp_path / "run"
    run.mkdir()
    write(run / "risk.tif", PROB)
    out = subprocess.run([sys.executable, "-m", "geo_risk", "decide", str(cfg), "--out", str(run)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "decision: cost[0][1] (none, lost) is nan: every cost must be a finite number ≥ 0" in out.stderr
    assert sorted(p.name for p in run.iterdir()) == ["risk.tif"]

    cfg.write_text(text.replace("{action: patrol, max_ha: 2000}", "{action: patrol, max_ha: 9}"))
    out = subprocess.run([sys.executable, "-m", "geo_risk", "decide", str(cfg), "--out", str(run)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for line in ("action", "patrol", "this plan saves", "budget patrol: 9 of 9 ha used", "binds",
                 "budget monitor: 175 of 20,000 ha used", "does not bind"):
        assert line in out.stderr, line
