"""The evaluate stage on the synthetic region (tests/data/synthetic: 96 × 96 px at 30 m, outline =
rows 0–89, three zones), every number checked against the stack it came from, and the bad inputs
it must refuse with a message that says what to do.

The tiled and trained run comes from the ``synthetic_run`` fixture; predict and decide run here when
its folder lacks their outputs, then the folder is copied so these tests never touch the files
other test modules read. VT0007 cells of 720 m (24 px): 4 × 4 = 16 cells.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import rasterio
from sklearn.metrics import roc_auc_score

from geo_risk.artifacts import Metrics
from geo_risk.paths import RunPaths
from geo_risk_errors import InputDataError
from tests.conftest import synthetic_config
from tiles import open_store

CELL_M = 720.0
OUTLINE_ROWS = 90  # rows 0–89 are inside the outline


def _prepared(synthetic_run) -> Path:
    """The synthetic run folder with risk.tif and decision.tif (predict and decide run if missing)."""
    paths = RunPaths(synthetic_run.cfg.run_dir)
    if not paths.probability.is_file():
        from geo_risk.predict import run_predict

        run_predict(synthetic_run.cfg)
    if not paths.decision.is_file():
        from geo_risk.decide import run_decide

        run_decide(synthetic_run.cfg)
    return paths.root


#: what evaluate (or map) writes at the top of the run folder: not copied
_OUTPUTS = {"metrics.json", "report.html", "zones.csv", "zones.geojson", "density.tif", "map.html"}


def _copy(src: Path, dest: Path) -> Path:
    def ignore(folder, names):
        if Path(folder) != src:
            return []
        return [n for n in names if n in _OUTPUTS or (n.endswith(".png") and n != "learning_curves.png")]

    shutil.copytree(src, dest, ignore=ignore)
    return dest


def _cfg(region: Path, run: Path, **evaluate):
    return synthetic_config(region, run, evaluate={"cell_size_m": CELL_M, "bootstrap": 200, **evaluate})


@pytest.fixture(scope="module")
def source(synthetic_run) -> Path:
    return _prepared(synthetic_run)


@pytest.fixture(scope="module")
def evaluated(source, synthetic_region, tmp_path_factory):
    """(metrics, RunPaths, forecast stack, train stack) of an evaluated copy of the run."""
    from geo_risk.evaluate import run_evaluate

    run = _copy(source, tmp_path_factory.mktemp("evaluate") / "run")
    m = run_evaluate(_cfg(synthetic_region, run))
    paths = RunPaths(run)
    stack = open_store(paths.stack, "layer stack").load()
    return m, paths, stack.sel(period="forecast"), stack.sel(period="train")


def _population(period) -> np.ndarray:
    forest = period["features"].sel(band="forest").values == 1
    forest[OUTLINE_ROWS:] = False
    return forest


def test_writes_the_report_set(evaluated):
    _, paths, _, _ = evaluated
    for p in (paths.metrics, paths.report, paths.density, paths.zones_csv, paths.zones_geojson,
              *(paths.plot(n) for n in ("roc_pr", "reliability", "maps", "vt0007_cells", "zone_audit"))):
        assert p.is_file() and p.stat().st_size > 0, p
    assert not list(paths.root.glob(".*staging*"))  # nothing left half-written


def test_every_forest_pixel_of_the_period_is_scored(evaluated):
    m, paths, fc, _ = evaluated
    pop = _population(fc)
    assert m.pixels == int(pop.sum()) == m.coverage.forest_pixels
    with rasterio.open(paths.probability) as src:
        risk = src.read(1)[pop]
    assert m.coverage.scored_pixels == int(np.isfinite(risk).sum()) == int(fc["valid"].values[pop].sum())
    assert m.coverage.missing_pixels == int(np.isnan(risk).sum())
    label = fc["label"].values[pop]
    assert m.observed_loss_rate == pytest.approx(label.mean())
    assert m.model.auc == pytest.approx(roc_auc_score(label, np.nan_to_num(risk, nan=0.0)))
    dist = fc["features"].sel(band="dist_edge_m").values[pop]
    assert m.baseline_distance_to_edge.auc == pytest.approx(roc_auc_score(label, -dist))
    cards = {c.name: c for c in m.scorecards}
    assert cards["map (risk.tif)"].auc == m.model.auc
    assert cards["map (risk.tif)"].mean_probability == pytest.approx(np.nan_to_num(risk, nan=0.0).mean())
    assert all(0 <= c.fom_at_observed_quantity <= 1 for c in m.scorecards)
    # inputs the tile stage filled on forest pixels are reported, as its stack says
    cov = fc.attrs.get("coverage", {})
    expected = {k: c["periods"]["forecast"]["missing_px"] for k, c in cov.items()
                if isinstance(c, dict) and c.get("periods", {}).get("forecast", {}).get("missing_px")}
    assert m.coverage.filled_inputs == expected


def test_forest_pixels_without_a_value_are_scored_as_the_lowest_risk(source, synthetic_region, tmp_path):
    """Blank the map on a 20 × 20 px square of forest: those pixels stay in the population, with p = 0."""
    from geo_risk.evaluate import run_evaluate

    run = _copy(source, tmp_path / "run")
    risk_path = RunPaths(run).probability
    with rasterio.open(risk_path) as src:
        risk, profile = src.read(1), src.profile
    risk[40:60, 40:60] = np.nan
    profile.update(driver="GTiff")
    with rasterio.open(risk_path, "w", **profile) as dst:
        dst.write(risk, 1)
        dst.update_tags(**{k: v for k, v in rasterio.open(source / "risk.tif").tags().items()})
    m = run_evaluate(_cfg(synthetic_region, run, bootstrap=0))
    fc = open_store(RunPaths(run).stack, "layer stack").sel(period="forecast").load()
    pop = _population(fc)
    blank = np.zeros(pop.shape, bool)
    blank[40:60, 40:60] = True
    label = fc["label"].values[pop]
    assert m.pixels == int(pop.sum())  # the population does not shrink
    assert m.coverage.missing_pixels == int((pop & np.isnan(risk)).sum()) >= int((pop & blank).sum()) > 0
    assert m.coverage.missing_lost_pixels == int(label[np.isnan(risk[pop])].sum())
    assert m.model.auc == pytest.approx(roc_auc_score(label, np.nan_to_num(risk[pop], nan=0.0)))
    assert m.vt0007.models[0].prediction.n_missing == m.coverage.missing_pixels  # VT0007 class 1
    assert f"{m.coverage.missing_pixels:,} (" in RunPaths(run).report.read_text()


def test_metrics_json_reads_back_typed(evaluated):
    m, paths, _, _ = evaluated
    back = Metrics.read(paths.metrics)
    assert repr(back) == repr(m)
    d = json.loads(paths.metrics.read_text())
    assert {"coverage", "scorecards", "reliability", "vt0007", "fairness", "decision_value"} <= set(d)


def test_vt0007_benchmark_and_model_in_both_tests(evaluated):
    from geo_risk.evaluate.vt0007 import edge_distance_threshold

    m, _, fc, tr = evaluated
    vt = m.vt0007
    assert not vt.skipped and vt.cells == "square cells of 720 m"
    assert (vt.calibration_period, vt.confirmation_period) == ("2005-2010", "2010-2015")
    cal_pop = _population(tr)
    loss_cal = tr["label"].values.astype(bool) & cal_pop
    assert vt.threshold_m == edge_distance_threshold(tr["features"].sel(band="dist_edge_m").values, loss_cal, cal_pop)
    pixel_ha = 0.09
    obs_cal = loss_cal.sum() * pixel_ha
    obs_cnf = (fc["label"].values.astype(bool) & _population(fc)).sum() * pixel_ha
    rows = [vt.benchmark, *vt.models]
    assert [r.name for r in rows] == ["benchmark", "map (risk.tif)", "model before the zone projection",
                                      "GLM baseline (forestatrisk, no iCAR)", "gradient-boosting baseline (HistGBM)"]
    for r in rows:
        assert r.fit is not None and r.fit.n_cells == r.prediction.n_cells == 16, r.name
        # both tests are adjusted to the observed total of their period
        assert r.fit.observed_total_ha == pytest.approx(obs_cal) and r.fit.predicted_total_ha == pytest.approx(obs_cal)
        assert r.prediction.predicted_total_ha == pytest.approx(obs_cnf)
        # cells are clipped to the outline: 24 × 24 px, or 18 × 24 px in the bottom row (rows 72–89)
        e = r.prediction
        lo, hi = e.medae_ha / (24 * 24 * pixel_ha) * 100, e.medae_ha / (18 * 24 * pixel_ha) * 100
        assert lo * (1 - 1e-12) <= e.medae_pct_cell <= hi * (1 + 1e-12), r.name  # equal up to rounding
    b = vt.benchmark
    for r in vt.models:
        assert r.passes_fit == (r.fit.medae_ha < b.fit.medae_ha)
        assert r.passes_prediction == (r.prediction.medae_ha < b.prediction.medae_ha)
        assert r.passes == (r.passes_fit and r.passes_prediction)
    assert vt.models[0].prediction.n_missing == m.coverage.missing_pixels  # scored as class 1
    # the calibration-period map is masked like risk.tif: no value where that period's inputs are not valid
    assert vt.models[0].fit.n_missing == int((cal_pop & ~tr["valid"].values.astype(bool)).sum())


def test_density_tif_holds_the_expected_total(evaluated):
    from rio_cogeo.cogeo import cog_validate

    m, paths, fc, _ = evaluated
    assert cog_validate(str(paths.density))[0]
    with rasterio.open(paths.density) as src:
        dens, tags = src.read(1), src.tags()
    pop = _population(fc)
    assert tags["units"] == "ha/pixel/yr" and tags["expected_source"] == "observed"
    assert np.isnan(dens[~pop]).all() and np.isfinite(dens[pop]).all()
    observed_per_yr = (fc["label"].values.astype(bool) & pop).sum() * 0.09 / 5
    assert dens[pop].sum() == pytest.approx(observed_per_yr, rel=1e-5) == m.vt0007.allocated_ha_per_yr
    assert dens[pop].max() <= 0.09 / 5 + 1e-9  # a pixel is lost at most once over the period


def test_expected_total_from_the_config(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _copy(source, tmp_path / "run")
    m = run_evaluate(_cfg(synthetic_region, run, expected_ha_per_yr=2.5, bootstrap=0))
    assert (m.vt0007.expected_ha_per_yr, m.vt0007.expected_source) == (2.5, "config")
    with rasterio.open(RunPaths(run).density) as src:
        assert np.nansum(src.read(1).astype(np.float64)) == pytest.approx(2.5, rel=1e-5)


def test_zone_audit_matches_the_stack(evaluated):
    import pandas as pd

    m, paths, fc, _ = evaluated
    pop = _population(fc)
    zone = fc["zone"].values[pop]
    label = fc["label"].values[pop]
    with rasterio.open(paths.decision) as src:
        flagged = (src.read(1)[pop] == 1)
    t = pd.read_csv(paths.zones_csv)
    assert list(t.name) == ["West", "Centre", "East"] and t.forest_pixels.sum() == m.pixels
    for _, r in t.iterrows():
        z = zone == r.zone_id
        assert r.forest_pixels == z.sum()
        assert r.observed_loss_rate == pytest.approx(label[z].mean(), rel=1e-5)
        lost = z & (label == 1)
        if lost.any():
            assert r.fnr == pytest.approx((lost & ~flagged).sum() / lost.sum(), rel=1e-5)
        assert r.flagged_ha == pytest.approx((z & flagged).sum() * 0.09, rel=1e-5)
        if r.observed_loss_rate > 0:
            assert r.observed_loss_rate_low <= r.observed_loss_rate <= r.observed_loss_rate_high
    gj = json.loads(paths.zones_geojson.read_text())
    assert len(gj["features"]) == 3 and gj["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    s = {g.metric: g for g in m.fairness.summaries}
    rates = t.observed_loss_rate.to_numpy()
    assert s["observed_loss_rate"].max_minus_min == pytest.approx(rates.max() - rates.min(), rel=1e-5)


def test_decision_value_recomputed_from_the_files(evaluated, synthetic_run):
    m, paths, fc, _ = evaluated
    pop = _population(fc)
    label = fc["label"].values[pop].astype(np.int64)
    with rasterio.open(paths.decision) as src:
        action = src.read(1)[pop].astype(np.int64)
    action[action == 255] = 0  # no value: no action
    cost = np.array(synthetic_run.cfg.decision.cost, dtype=np.float64)
    rules = {r.name: r for r in m.decision_value.rules}
    plan = rules["decision map (decision.tif)"]
    assert plan.realised_cost == pytest.approx(cost[action, label].sum())
    assert rules["flag nothing (none everywhere)"].realised_cost == pytest.approx(cost[0, label].sum())
    last = synthetic_run.cfg.decision.actions[-1]
    assert rules[f"flag everything ({last} everywhere)"].flagged_ha == pytest.approx(m.pixels * 0.09)
    with rasterio.open(paths.probability) as src:
        p = np.nan_to_num(src.read(1)[pop].astype(np.float64))
    thr = rules["0.5 threshold on the map"]
    assert thr.realised_cost == pytest.approx(np.where(p >= 0.5, cost[-1, label], cost[0, label]).sum())
    assert plan.realised_vs_threshold == pytest.approx(plan.realised_cost / thr.realised_cost)
    # the decide stage's plan minimises the expected cost under the map's probabilities (no budgets here)
    assert plan.expected_cost <= min(r.expected_cost for r in m.decision_value.rules) * (1 + 1e-9)


def test_baselines_scored_on_the_same_pixels_as_the_map(evaluated, synthetic_run):
    """GLM and GBM fitted on the training chips, scored on every forest pixel of the forecast (no value →
    probability 0), through VT0007 and the decision value, and the map's margin over the best of them."""
    from geo_risk.baselines import fit_and_score_run
    from geo_risk.decide import Budget, solve

    m, paths, fc, _ = evaluated
    pop = _population(fc)
    label = fc["label"].values[pop].astype(np.int64)
    maps = fit_and_score_run(paths.root, seed=synthetic_run.cfg.train.seed)  # the same sample, seeds and fits
    cards = {c.name: c for c in m.scorecards}
    names = {"glm": "GLM baseline (forestatrisk, no iCAR)", "gbm": "gradient-boosting baseline (HistGBM)"}
    assert [f.name for f in m.baselines.fitted] == ["glm", "gbm"]
    assert m.baselines.train_pixels == maps.fitted.train_pixels and m.baselines.val_pixels == maps.fitted.val_pixels
    assert m.baselines.seconds >= m.baselines.score_seconds > 0
    valid = fc["valid"].values.astype(bool)[pop]
    for key, name in names.items():
        p = maps[key][pop].astype(np.float64)
        assert np.isfinite(p[valid]).all() and np.isnan(p[~valid]).all()
        p = np.nan_to_num(p, nan=0.0)
        assert cards[name].auc == pytest.approx(roc_auc_score(label, p))
        assert cards[name].mean_probability == pytest.approx(p.mean(), rel=1e-6)
        assert cards[name].is_probability and 0 <= cards[name].brier <= 1
    # the margin: AUC difference and AP ratio against the best baseline, MedAE ratio against the benchmark
    g = m.margin_over_baselines
    best_auc = max(names.values(), key=lambda n: cards[n].auc)
    assert g.best_auc_baseline == best_auc
    assert g.auc_difference == pytest.approx(cards["map (risk.tif)"].auc - cards[best_auc].auc)
    best_ap = max(names.values(), key=lambda n: cards[n].ap)
    assert g.ap_ratio == pytest.approx(cards["map (risk.tif)"].ap / cards[best_ap].ap)
    vt = {r.name: r for r in m.vt0007.models}
    bench = m.vt0007.benchmark.prediction.medae_ha
    assert g.medae_ratio_vs_benchmark == pytest.approx(vt["map (risk.tif)"].prediction.medae_ha / bench)
    assert g.best_baseline_medae_ratio_vs_benchmark == pytest.approx(
        min(vt[n].prediction.medae_ha for n in names.values()) / bench)
    for name in names.values():  # both VT0007 tests, each baseline with its own calibration-period map
        assert vt[name].fit.n_cells == 16 and vt[name].passes == (vt[name].passes_fit and vt[name].passes_prediction)
    # decision value: decide's planner (same cost matrix, same budgets) on each baseline's probabilities
    cfg = synthetic_run.cfg
    cost = np.array(cfg.decision.cost, dtype=np.float64)
    budgets = [Budget(cfg.decision.actions.index(b.action), b.max_ha, 0.09, "ha") for b in cfg.decision.budgets
               if b.max_ha is not None]
    rules = {r.name: r for r in m.decision_value.rules}
    for key, name in names.items():
        p = np.nan_to_num(maps[key][pop].astype(np.float64), nan=0.0)
        a = solve(p, cost, budgets).actions.astype(np.int64)
        rule = [r for n, r in rules.items() if n.endswith(f"on the {name}")]
        assert len(rule) == 1 and rule[0].realised_cost == pytest.approx(cost[a, label].sum())
    page = paths.report.read_text(encoding="utf-8")
    for text in ("Margin of the map over the best baseline", *names.values()):
        assert text in page, text


def test_baselines_can_be_skipped(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    m = run_evaluate(_cfg(synthetic_region, _copy(source, tmp_path / "run"), baselines=[]))
    assert m.baselines is None and m.margin_over_baselines is None
    assert not any("baseline (" in c.name for c in m.scorecards)
    assert [r.name for r in m.vt0007.models] == ["map (risk.tif)", "model before the zone projection"]


def test_baselines_need_the_chip_store(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _copy(source, tmp_path / "run")
    shutil.rmtree(RunPaths(run).chips)
    with pytest.raises(InputDataError, match="evaluate.baselines: \\[\\] to skip"):
        run_evaluate(_cfg(synthetic_region, run))
    assert not RunPaths(run).metrics.exists()


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.srcs, self.hrefs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])


def test_report_is_self_contained_and_shows_the_numbers(evaluated):
    m, paths, _, _ = evaluated
    page = paths.report.read_text(encoding="utf-8")
    c = _Checker()
    c.feed(page)
    assert "script" not in c.tags and "link" not in c.tags
    assert len(c.srcs) >= 6 and all(s.startswith("data:image/png;base64,") for s in c.srcs)
    assert all(h.startswith("#") for h in c.hrefs)  # only links inside the page
    for text in ("West", "Centre", "East", "Read both columns", "may replace the benchmark", "Decision value",
                 f"{m.vt0007.benchmark.fit.medae_ha:.1f}", f"{m.coverage.forest_pixels:,}", "learning curves"):
        assert text in page, text


def test_report_loads_offline_in_chromium(evaluated, tmp_path):
    """Headless Chromium with every host unresolvable: the page renders, the console stays silent."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    _, paths, _, _ = evaluated
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         paths.report.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Deforestation-risk evaluation" in proc.stdout and proc.stdout.count("<img") >= 6
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console


# ------------------------------------------------------------------------------------- bad input


def _broken(source: Path, tmp_path: Path) -> Path:
    return _copy(source, tmp_path / "run")


def test_refuses_a_cell_larger_than_the_region(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    with pytest.raises(InputDataError, match="evaluate.cell_size_m.*as large as the whole region"):
        run_evaluate(_cfg(synthetic_region, run, cell_size_m=5000))
    assert not RunPaths(run).metrics.exists() and not RunPaths(run).report.exists()


def test_default_cell_on_a_small_region_skips_the_validation_only(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    m = run_evaluate(synthetic_config(synthetic_region, run, evaluate={"bootstrap": 0}))
    assert "evaluate.cell_size_m" in m.vt0007.skipped and m.vt0007.benchmark is None
    assert RunPaths(run).density.is_file()  # the allocation needs no cells
    assert "Validation skipped" in RunPaths(run).report.read_text()


def test_refuses_an_expected_total_larger_than_the_forest(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    with pytest.raises(InputDataError, match="expected_ha_per_yr.*more than the .* ha of forest"):
        run_evaluate(_cfg(synthetic_region, run, expected_ha_per_yr=1000))


def test_refuses_a_prediction_on_another_grid(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    risk = RunPaths(run).probability
    with rasterio.open(risk) as src:
        data, profile = src.read(1), src.profile
    profile.update(transform=profile["transform"] @ rasterio.Affine.translation(10, 0), driver="GTiff")
    with rasterio.open(risk, "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(InputDataError, match="risk.tif is not on the grid of the labels.*geo-risk predict"):
        run_evaluate(_cfg(synthetic_region, run))


def _edit_stack(run: Path, name: str, fn) -> None:
    import zarr

    group = zarr.open_group(str(RunPaths(run).stack), mode="r+")
    arr = group[name]
    arr[...] = fn(arr[...])


def test_refuses_a_period_without_labels(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    _edit_stack(run, "label", lambda a: np.concatenate([a[:1], np.zeros_like(a[1:])]))  # no loss in 2010–15
    with pytest.raises(InputDataError, match="forecast period 2010-2015 has no observed forest loss"):
        run_evaluate(_cfg(synthetic_region, run))


def test_refuses_a_calibration_period_without_labels(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    _edit_stack(run, "label", lambda a: np.concatenate([np.zeros_like(a[:1]), a[1:]]))  # no loss in 2005–10
    with pytest.raises(InputDataError, match="calibration period 2005-2010 \\(periods.train\\) has no observed forest "
                                             "loss.*periods.train"):
        run_evaluate(_cfg(synthetic_region, run))
    assert not RunPaths(run).metrics.exists() and not RunPaths(run).report.exists()


@pytest.mark.parametrize("bad, message", [(["glm", "glm"], "lists a baseline twice"), (["rf"], "baselines")])
def test_refuses_bad_baseline_settings(synthetic_region, tmp_path, bad, message):
    from geo_risk_errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        synthetic_config(synthetic_region, tmp_path / "run", evaluate={"baselines": bad})


def test_refuses_zones_that_miss_the_forest(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    _edit_stack(run, "zone", np.zeros_like)
    with pytest.raises(InputDataError, match="no zone of layers.zones .* covers a forest pixel"):
        run_evaluate(_cfg(synthetic_region, run))


def test_refuses_a_missing_or_stale_decision(source, synthetic_region, tmp_path):
    from geo_risk.evaluate import run_evaluate

    run = _broken(source, tmp_path)
    cfg = synthetic_config(synthetic_region, run, evaluate={"cell_size_m": CELL_M},
                           decision={"actions": ["none", "patrol"], "cost": [[0, 50], [10, 10]]})
    with pytest.raises(InputDataError, match="decision.tif was made with the cost matrix.*geo-risk decide"):
        run_evaluate(cfg)
    RunPaths(run).decision.unlink()
    with pytest.raises(InputDataError, match="decision.tif not found.*geo-risk decide"):
        run_evaluate(cfg)


def test_polygon_cells(source, synthetic_region, tmp_path):
    """evaluate.cells_path: the west and east halves of the region as two polygon cells."""
    import geopandas as gpd
    from shapely.geometry import box

    from geo_risk.evaluate import run_evaluate

    run = _copy(source, tmp_path / "run")
    with rasterio.open(RunPaths(run).probability) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    mid = (left + right) / 2
    cells = gpd.GeoDataFrame({"name": ["west", "east"]}, geometry=[box(left, bottom, mid, top), box(mid, bottom, right, top)],
                             crs=crs)
    cells.to_file(tmp_path / "cells.geojson", driver="GeoJSON")
    m = run_evaluate(synthetic_config(synthetic_region, run, evaluate={"cells_path": str(tmp_path / "cells.geojson"),
                                                                       "bootstrap": 0}))
    assert m.vt0007.cells == "2 polygons of cells.geojson"
    assert m.vt0007.benchmark.fit.n_cells == m.vt0007.benchmark.prediction.n_cells == 2
    # a polygon layer away from the forest is refused
    far = gpd.GeoDataFrame(geometry=[box(left, bottom, left + 30, bottom + 30)], crs=crs)  # one pixel, outside the outline
    far.to_file(tmp_path / "far.geojson", driver="GeoJSON")
    with pytest.raises(InputDataError, match="no polygon covers a forest pixel"):
        run_evaluate(synthetic_config(synthetic_region, run, evaluate={"cells_path": str(tmp_path / "far.geojson")}))


def test_vt0007_classes_crossed_with_the_zones(source, synthetic_region, tmp_path, evaluated):
    """evaluate.vt0007_zones: UDef-ARP's modelling regions (class × division) for the benchmark and every map,
    said in metrics.json; the benchmark's tests are those of vt0007 called with the zones."""
    from geo_risk.evaluate import run_evaluate
    from geo_risk.evaluate import vt0007 as vt
    from geo_risk.evaluate.inputs import load_inputs
    from geo_risk.evaluate.verra import benchmark

    assert evaluated[0].vt0007.modeling_regions == "none"  # the default
    run = _copy(source, tmp_path / "run")
    cfg = _cfg(synthetic_region, run, vt0007_zones=True, bootstrap=0)
    m = run_evaluate(cfg)
    assert m.vt0007.modeling_regions.startswith("the 3 zones of layers.zones (")
    x = load_inputs(cfg)
    cells = vt.square_cells(x.inside.shape, x.pixel_size_m, CELL_M, valid=x.inside)
    b = benchmark(x.cal, x.cnf, x.pixel_size_m[0], x.pixel_area_ha, x.zone)
    fit = vt.fit_test(b.classes_cal, x.cal.loss, x.cal.forest, years=x.cal.years, pixel_area_ha=x.pixel_area_ha,
                      cells=cells, zones=x.zone)[1]
    pred = vt.prediction_test(b.classes_cnf, b.density, x.cnf.loss, x.cnf.forest, years=x.cnf.years, cells=cells,
                              zones=x.zone)
    assert m.vt0007.benchmark.fit.medae_ha == pytest.approx(fit.validation.medae_ha)
    assert m.vt0007.benchmark.prediction.medae_ha == pytest.approx(pred.validation.medae_ha)
    # crossed densities: the fitted benchmark map holds each zone's own calibration-period loss
    dens = fit.allocation.density_ha_per_pixel_yr * x.cal.years
    for z in np.unique(x.zone[x.cal.forest & (x.zone > 0)]):
        inz = x.cal.forest & (x.zone == z)
        assert dens[inz].sum() == pytest.approx((x.cal.loss & inz).sum() * x.pixel_area_ha)
    assert "VT0007 modelling regions" in RunPaths(run).report.read_text()


def test_vt0007_zones_without_a_zones_layer_warns(synthetic_region, caplog):
    from geo_risk.evaluate.report import _modeling_regions

    cfg = synthetic_config(synthetic_region, layers={"zones": None}, evaluate={"vt0007_zones": True})
    zone2d, forest = np.ones((4, 4), np.int32), np.ones((4, 4), bool)
    with caplog.at_level("WARNING"):
        zones, label = _modeling_regions(cfg, zone2d, forest)
    assert zones is None and label.startswith("none")
    assert "evaluate.vt0007_zones is set but layers.zones is not" in caplog.text
