"""Stage 6 — evaluate: the evidence a map is judged by, over all forest pixels of the forecast period.

Reads ``risk.tif``, ``decision.tif``, ``zone_risk.csv``, ``model.pt`` and the layer stack; writes, as
one set, ``metrics.json`` (typed: :class:`geo_risk.artifacts.Metrics`), ``report.html``
(self-contained), its PNG figures, ``density.tif`` (VT0007 allocation, ha/pixel/yr) and, with
zones, ``zones.csv`` / ``zones.geojson`` (the per-zone audit for GIS users).

1. population: forest at the start of the period inside the outline; pixels the map leaves
   without a value are scored as its lowest risk (probability 0, action "none") and counted;
2. scores of the map, the model before the zone projection, the uncalibrated model (logit × T)
   and the baselines: AUC, AP, Brier, ECE, FOM, eco-weighted recall (:mod:`.metrics`);
3. VT0007 (:mod:`.verra`): benchmark and model, fit test (calibration = ``train`` period, the
   model's map from :func:`geo_risk.predict.stage.logits_of_period`) and prediction test;
4. per-zone audit (:mod:`.audit`) and decision value (:mod:`.value`); 5. the report (:mod:`.html`).
What each number means: ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import dask
import numpy as np
from scipy.special import expit, logit

from geo_risk.artifacts import (
    BaselineFit, BaselineMargin, BaselinesRun, Coverage, Metrics, ReliabilityCurve, ScoreCard, Scores,
    Vt0007Metrics, ZoneMetrics, read_zone_table,
)
from geo_risk.config import RunConfig
from geo_risk.evaluate import figures, html
from geo_risk.evaluate.inputs import RunInputs, load_inputs, zone_offsets
from geo_risk.evaluate.audit import ZoneInputs, block_ids, write_zones_geojson, zone_audit, zone_names, zone_table
from geo_risk.evaluate.metrics import (
    brier_score, expected_calibration_error, fom_at_observed_quantity, ranking_metrics, reliability_curve,
    weighted_recall_at_area,
)
from geo_risk.evaluate import value as dv
from geo_risk.evaluate.verra import (
    MapPair, benchmark, benchmark_probability, cell_grid, check_expected, run_vt0007,
)
from geo_risk.export import DECISION_NODATA, write_cog
from geo_risk.paths import RunPaths
from geo_risk.provenance import provenance_tags
from geo_risk.zone_stats import counted_zones, spread, zone_mean_risk
from geo_risk_errors import InputDataError
from tiles import open_store
from tiles.atomic import atomic_files
from tiles.vectors import burn, read_vector

log = logging.getLogger(__name__)

MAP = "map (risk.tif)"
MODEL = "model before the zone projection"
UNCALIBRATED = "model, uncalibrated (logit × T)"
BENCHMARK = "VT0007 benchmark (distance classes)"
DISTANCE = "distance to forest edge (rank only)"
#: the baselines' names in the tables (geo_risk.baselines, evaluate.baselines)
BASELINE_LABELS = {
    "distance_to_edge": "distance-to-edge baseline (logistic curve)",
    "glm": "GLM baseline (forestatrisk, no iCAR)",
    "gbm": "gradient-boosting baseline (HistGBM)",
}
#: probabilities are clipped to this before taking logits (float32 maps reach 0 and 1)
_EPS = 1e-7


def scores(score: np.ndarray, label: np.ndarray, eco: np.ndarray) -> Scores:
    """AUC, AP and eco-weighted recall when flagging as much area as was really lost."""
    rank = ranking_metrics(score, label)
    return Scores(rank["auc"], rank["ap"], weighted_recall_at_area(score, label, eco, float(label.mean())))


def scorecard(name: str, score: np.ndarray, label: np.ndarray, eco: np.ndarray, bins: int,
              is_probability: bool = True) -> ScoreCard:
    """Every population-level metric of one map (flat arrays over the population)."""
    rank = ranking_metrics(score, label)
    nan = float("nan")
    return ScoreCard(
        name=name, auc=rank["auc"], ap=rank["ap"],
        brier=brier_score(score, label) if is_probability else nan,
        ece=expected_calibration_error(score, label, bins) if is_probability else nan,
        fom_at_observed_quantity=fom_at_observed_quantity(score, label),
        eco_weighted_recall_at_observed_rate=weighted_recall_at_area(score, label, eco, float(label.mean())),
        mean_probability=float(np.mean(score)) if is_probability else nan, is_probability=is_probability)


def forecast_metrics(period: str, prob: np.ndarray, label: np.ndarray, dist_edge_m: np.ndarray, eco: np.ndarray,
                     zone: np.ndarray, min_zone_pixels: int) -> Metrics:
    """Model and baseline metrics over the given pixels (flat arrays; ``prob`` and ``dist_edge_m`` finite)."""
    s = spread(zone_mean_risk(prob, zone, min_zone_pixels))
    return Metrics(
        period=period, pixels=int(label.size), observed_loss_rate=float(label.mean()),
        model=scores(prob, label, eco), baseline_distance_to_edge=scores(-dist_edge_m, label, eco),
        zones=ZoneMetrics(count=s.count, min_pixels=min_zone_pixels, mean_risk_std=s.std, mean_risk_range=s.range),
    )


def calibration_period_logits(cfg: RunConfig) -> tuple[np.ndarray | None, str]:
    """The model's calibrated logits over the calibration (``train``) period, or (None, why)."""
    try:
        from geo_risk.predict.stage import logits_of_period
    except ImportError as e:
        return None, f"the model's calibration-period map is not available ({e})"
    out, _ = logits_of_period(cfg, "train")
    with dask.config.set(scheduler="threads", num_workers=1):
        return np.asarray(out[0].compute(), dtype=np.float64), ""


def baseline_maps(cfg: RunConfig) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], BaselinesRun | None]:
    """The baselines of ``evaluate.baselines`` fitted on the training chips (docs/baselines.md) and mapped
    over the calibration (``train``) and forecast periods: label → (calibration, forecast) float32
    probability maps, NaN off each period's valid pixels (the map's coverage rule).

    Mapped block by block over the stack's chunks (:func:`geo_risk.baselines.score_baselines`, one
    worker): only a block's valid pixels are normalised and predicted, so memory holds the output
    maps and one block of covariates, never whole-grid copies of the covariates.
    """
    ec = cfg.evaluate
    if not ec.baselines:
        return {}, None
    from geo_risk.baselines import fit_run_baselines, score_baselines

    paths = RunPaths(cfg.run_dir)
    if not paths.chips.exists():
        raise InputDataError(f"evaluate.baselines {ec.baselines} are fitted on the chip store {paths.chips}, which is "
                             "missing — run `geo-risk tile CONFIG`, or set evaluate.baselines: [] to skip them")
    t0 = time.perf_counter()
    fitted = fit_run_baselines(paths, max_pixels=ec.baseline_max_pixels, seed=cfg.train.seed, names=ec.baselines)
    stack = open_store(paths.stack, "layer stack")
    t1 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=1):
        cal = score_baselines(fitted, stack.sel(period="train")).values
        cnf = score_baselines(fitted, stack.sel(period="forecast")).values
    t2 = time.perf_counter()
    maps = {BASELINE_LABELS[n]: (cal[i], cnf[i]) for i, n in enumerate(fitted.names)}
    run = BaselinesRun(
        train_pixels=fitted.train_pixels, train_positives=fitted.train_positives, val_pixels=fitted.val_pixels,
        max_pixels=ec.baseline_max_pixels, seed=fitted.seed,
        fitted=[BaselineFit(n, BASELINE_LABELS[n], list(m.bands), m.iterations, m.fit_seconds)
                for n, m in fitted.models.items()],
        seconds=t2 - t0, score_seconds=t2 - t1)
    log.info("evaluate: baselines %s fitted on %d training pixels and mapped over both periods in %.1f s (maps %.1f s)",
             ", ".join(fitted.names), fitted.train_pixels, run.seconds, run.score_seconds)
    return maps, run


def margin_over_baselines(cards: list[ScoreCard], baselines: list[str], vt: Vt0007Metrics | None,
                          model: str = MAP) -> BaselineMargin | None:
    """The ``model`` scorecard against the best of ``baselines`` (scorecard names): AUC difference, AP
    ratio, and VT0007 prediction-test MedAE as a ratio of the benchmark's (NaN when not validated)."""
    card = {c.name: c for c in cards}
    if not baselines or model not in card:
        return None
    m = card[model]
    best_auc = max(baselines, key=lambda n: card[n].auc)
    best_ap = max(baselines, key=lambda n: card[n].ap)
    nan = float("nan")
    ratio, best_medae, best_ratio = nan, "", nan
    if vt is not None and vt.benchmark is not None and not vt.skipped:
        ref = vt.benchmark.prediction.medae_ha
        rows = {r.name: r.prediction.medae_ha for r in vt.models if r.prediction.n_cells}
        if ref > 0:
            ratio = rows.get(model, nan) / ref
            have = [n for n in baselines if n in rows]
            if have:
                best_medae = min(have, key=lambda n: rows[n])
                best_ratio = rows[best_medae] / ref
    return BaselineMargin(model=model, best_auc_baseline=best_auc, auc_difference=m.auc - card[best_auc].auc,
                          best_ap_baseline=best_ap, ap_ratio=m.ap / card[best_ap].ap if card[best_ap].ap > 0 else nan,
                          medae_ratio_vs_benchmark=ratio, best_medae_baseline=best_medae,
                          best_baseline_medae_ratio_vs_benchmark=best_ratio)


def run_evaluate(cfg: RunConfig) -> Metrics:
    """Evaluate the run's forecast; write metrics.json, report.html and the files beside it."""
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    ec = cfg.evaluate
    x = load_inputs(cfg)
    cal, cnf = x.cal, x.cnf
    cells, cells_label = _cells(cfg, x)  # bad settings fail here, before the model runs
    check_expected(cnf, ec.expected_ha_per_yr, x.pixel_area_ha)
    pop = cnf.forest
    n_pop = int(pop.sum())
    has_value = np.isfinite(x.risk) & pop
    missing = pop & ~has_value
    label = cnf.loss[pop].astype(np.uint8)
    eco = x.eco[pop]
    zone2d = x.zone
    coverage = Coverage(forest_pixels=n_pop, scored_pixels=int(has_value.sum()), missing_pixels=int(missing.sum()),
                        missing_lost_pixels=int((missing & cnf.loss).sum()), pixel_area_ha=x.pixel_area_ha,
                        forest_ha=n_pop * x.pixel_area_ha, filled_inputs=x.filled_inputs)
    log.info("evaluate: %s, %d forest pixels, %d without a value in risk.tif (scored as the lowest risk, %d of them "
             "lost)", cnf.name, n_pop, coverage.missing_pixels, coverage.missing_lost_pixels)

    # the map, the model before the projection, the uncalibrated model (missing pixels: probability 0)
    from geo_risk.model import load_checkpoint

    temperature = float(load_checkpoint(paths.checkpoint)[1].temperature)
    offsets = zone_offsets(paths, x.tags, int(zone2d.max()) + 1)
    p_map2d = np.where(has_value, x.risk, 0.0)
    z_model2d = logit(np.clip(p_map2d, _EPS, 1 - _EPS)) - offsets[zone2d]
    p_model2d = np.where(has_value, expit(z_model2d), 0.0)
    p_uncal2d = np.where(has_value, expit(z_model2d * temperature), 0.0)
    projected = x.tags.zone_fairness_lambda > 0
    dist = cnf.dist_edge_m[pop]  # the distance baseline ranks by −distance; no distance = farthest
    known = np.isfinite(dist)
    dist_rank = -np.where(known, dist, (dist[known].max() if known.any() else 0.0) + 1.0)

    # VT0007: the benchmark, the calibration-period map, the tests
    zones_vt, zones_label = _modeling_regions(cfg, zone2d, cnf.forest)
    bench = benchmark(cal, cnf, x.pixel_size_m[0], x.pixel_area_ha, zones_vt)
    p_bench2d = np.nan_to_num(benchmark_probability(bench, cnf, zones_vt))
    t_cal = time.perf_counter()
    logits_cal, why = calibration_period_logits(cfg)
    log.info("evaluate: the model over the calibration period %s in %.1f s", cal.name, time.perf_counter() - t_cal)
    if logits_cal is not None:  # masked like risk.tif: a value where the period's inputs are valid
        scored_cal = np.isfinite(logits_cal) & x.valid_cal
        p_cal_model = np.where(scored_cal, expit(logits_cal), np.nan)
        p_cal_map = np.where(scored_cal, expit(logits_cal + offsets[zone2d]), np.nan)
    else:
        log.warning("evaluate: %s — VT0007 runs for the benchmark only", why)
        p_cal_model = p_cal_map = None
    pairs = [MapPair(MAP, p_cal_map, np.where(has_value, x.risk, np.nan), why)]
    if projected:
        pairs.append(MapPair(MODEL, p_cal_model, np.where(has_value, p_model2d, np.nan), why))
    # the baselines: fitted on the training chips, mapped over both periods, the map's coverage rule
    base, base_run = baseline_maps(cfg)
    for name, (b_cal, b_cnf) in base.items():
        pairs.append(MapPair(name, np.where(x.valid_cal, b_cal, np.nan), np.where(pop, b_cnf, np.nan)))
    vt_run = run_vt0007(cal, cnf, bench, pairs, cells=cells, cells_label=cells_label, pixel_area_ha=x.pixel_area_ha,
                        expected_ha_per_yr=ec.expected_ha_per_yr, min_forest_fraction=ec.min_forest_fraction,
                        cell_size_m=ec.cell_size_m, zones=zones_vt, zones_label=zones_label,
                        class_method=ec.vt0007_classes)

    # scorecards and reliability over the population
    probs = {MAP: p_map2d[pop]}
    if projected:
        probs[MODEL] = p_model2d[pop]
    probs[UNCALIBRATED] = p_uncal2d[pop]
    for name, (_, b_cnf) in base.items():  # no value (off the valid pixels): probability 0, as for the map
        b = b_cnf[pop]
        probs[name] = np.where(np.isfinite(b), b, 0.0).astype(np.float64)
    del base
    probs[BENCHMARK] = p_bench2d[pop]
    cards = [scorecard(n, p, label, eco, ec.calibration_bins) for n, p in probs.items()]
    cards.append(scorecard(DISTANCE, dist_rank, label, eco, ec.calibration_bins, is_probability=False))
    curves = []
    for name in (UNCALIBRATED, MODEL if projected else MAP, MAP if projected else None, BENCHMARK):
        if name is not None:
            r = reliability_curve(probs[name], label)
            curves.append(ReliabilityCurve(name, r.mean_predicted.tolist(), r.observed_rate.tolist(),
                                           r.count.astype(int).tolist()))

    # legacy blocks: the map's zone spread over its scored pixels, as zone_risk.csv
    v = x.valid & has_value
    min_px = cfg.loss.min_zone_pixels
    s = spread(zone_mean_risk(x.risk[v], zone2d[v], min_px))
    zm = ZoneMetrics(count=s.count, min_pixels=min_px, mean_risk_std=s.std, mean_risk_range=s.range)
    if projected and paths.zone_risk.is_file():
        t = read_zone_table(paths.zone_risk)
        same = t[t.zone_id.isin(counted_zones(zone2d[v], min_px))]
        zm = replace(zm, projection_lambda_fair=x.tags.zone_fairness_lambda,
                     mean_risk_std_before_projection=float(same.mean_risk_model.std(ddof=0)))

    # decision: the audit per zone and the value
    dc = cfg.decision
    actions2d = np.where(x.decision == DECISION_NODATA, 0, x.decision).astype(np.int64)
    names = zone_names(paths)
    fairness = None
    if (zone2d[pop] > 0).any():
        zi = ZoneInputs(zone=zone2d[pop], block=block_ids(zone2d.shape, ec.bootstrap_block_px)[pop],
                        lost=label.astype(bool), risk_model=p_model2d[pop], risk_map=p_map2d[pop],
                        flagged=actions2d[pop] > 0)
        fairness = zone_audit(zi, names, min_zone_pixels=min_px, pixel_area_ha=x.pixel_area_ha,
                              flagged_actions=dc.actions[1:], replicates=ec.bootstrap, block_px=ec.bootstrap_block_px,
                              confidence=ec.confidence, seed=ec.seed)
    pop_probs = {"the map, no budgets": None, **({"the model before the zone projection": probs[MODEL]}
                                                  if projected else {}),
                 "the uncalibrated model": probs[UNCALIBRATED],
                 **{f"the {name}": probs[name] for name in BASELINE_LABELS.values() if name in probs},
                 "the VT0007 benchmark": probs[BENCHMARK]}
    value = dv.run_decision_value(cfg, actions2d[pop], p_map2d[pop], label.astype(bool), pop_probs, x.pixel_area_ha)

    card = {c.name: c for c in cards}
    metrics = Metrics(
        period=cnf.name, pixels=n_pop, observed_loss_rate=float(label.mean()),
        model=Scores(card[MAP].auc, card[MAP].ap, card[MAP].eco_weighted_recall_at_observed_rate),
        baseline_distance_to_edge=Scores(card[DISTANCE].auc, card[DISTANCE].ap,
                                         card[DISTANCE].eco_weighted_recall_at_observed_rate),
        zones=zm, coverage=coverage, scorecards=cards, reliability=curves, vt0007=vt_run.metrics,
        fairness=fairness, decision_value=value, baselines=base_run,
        margin_over_baselines=margin_over_baselines(cards, [n for n in BASELINE_LABELS.values() if n in probs],
                                                    vt_run.metrics))

    # figures, report and files, renamed into place together
    figs = {
        "roc_pr": figures.roc_pr({n: (dist_rank if n == DISTANCE else probs[n])
                                  for n in (MAP, *[b for b in BASELINE_LABELS.values() if b in probs], BENCHMARK,
                                            DISTANCE)},
                                 label, {c.name: (c.auc, c.ap) for c in cards}),
        "reliability": figures.reliability(curves, float(label.mean())),
        "maps": figures.thumbnails(np.where(pop, p_map2d, np.nan), x.decision, vt_run.density_ha_per_pixel_yr,
                                   dc.actions, x.palette),
    }
    if vt_run.cells:
        figs["vt0007_cells"] = figures.vt0007_cells(vt_run.cells)
    if fairness is not None and any(r.counted for r in fairness.zones):
        figs["zone_audit"] = figures.zone_audit(fairness)
    learning = paths.learning_curves.read_bytes() if paths.learning_curves.is_file() else None
    page = html.render(cfg, metrics, figs, learning, temperature=temperature, seconds=time.perf_counter() - t0)
    targets = [paths.metrics, paths.report, *(paths.plot(n) for n in figs)]
    zones_df = zone_table(fairness) if fairness is not None else None
    if zones_df is not None:
        targets += [paths.zones_csv, paths.zones_geojson]
    if vt_run.density_ha_per_pixel_yr is not None:
        targets.append(paths.density)
    with atomic_files(targets) as tmps:
        out = dict(zip(targets, tmps))
        metrics.write(out[paths.metrics], atomic=False)
        out[paths.report].write_text(page, encoding="utf-8")
        for n, data in figs.items():
            out[paths.plot(n)].write_bytes(data)
        if zones_df is not None:
            zones_df.to_csv(out[paths.zones_csv], index=False, float_format="%.6g")
            write_zones_geojson(paths, zones_df, out[paths.zones_geojson])
        if paths.density in out:
            vm = vt_run.metrics
            write_cog(out[paths.density], vt_run.density_ha_per_pixel_yr.astype(np.float32), x.grid.crs, x.grid.transform,
                      nodata=np.nan, atomic=False,
                      tags={"description": f"VT0007 allocated deforestation density {cnf.name}", "units": "ha/pixel/yr",
                            "map": vm.density_map, "expected_ha_per_yr": f"{vm.expected_ha_per_yr:.6g}",
                            "expected_source": vm.expected_source, "run": cfg.name,
                            **provenance_tags(cfg, paths.checkpoint, period=cnf.name)})
    for stale in (paths.plot(n) for n in ("vt0007_cells", "zone_audit") if n not in figs):
        stale.unlink(missing_ok=True)
    _log(metrics, time.perf_counter() - t0, paths)
    return metrics


def _modeling_regions(cfg: RunConfig, zone2d: np.ndarray, forest: np.ndarray) -> tuple[np.ndarray | None, str]:
    """VT0007's modelling regions (UDef-ARP: vulnerability class × administrative division): the zones
    when ``evaluate.vt0007_zones`` is set, else None. Set without a zones layer: a warning, no crossing."""
    if not cfg.evaluate.vt0007_zones:
        return None, "none"
    if cfg.layers.zones is None:
        log.warning("evaluate.vt0007_zones is set but layers.zones is not: VT0007's classes are not crossed with "
                    "any division — add layers.zones (the jurisdiction's administrative divisions) or unset it")
        return None, "none (evaluate.vt0007_zones set without layers.zones)"
    z = cfg.layers.zones
    n = int(np.unique(zone2d[forest & (zone2d > 0)]).size)
    return zone2d, f"the {n} zones of layers.zones ({z.path.name}{f', layer {z.layer}' if z.layer else ''})"


def _cells(cfg: RunConfig, x: RunInputs) -> tuple[np.ndarray | None, str]:
    ec = cfg.evaluate
    if ec.cells_path is None:
        return cell_grid(x.inside.shape, x.pixel_size_m, x.inside, ec.cell_size_m, ec.cell_size_m is not None)
    path = cfg.data_path(ec.cells_path)
    grid = x.grid
    polys = read_vector(path, grid, "evaluate.cells_path")
    polys = polys[polys.geometry.notna() & ~polys.geometry.is_empty]
    cells = burn(list(polys.geometry), grid, values=list(range(1, len(polys) + 1)), all_touched=False,
                 dtype_out="int32")
    cells[~x.inside] = 0
    if not (cells[x.cnf.forest] > 0).any():
        raise InputDataError(f"evaluate.cells_path {path}: no polygon covers a forest pixel — check its extent and CRS")
    return cells, f"{len(polys)} polygons of {path.name}"


def _log(m: Metrics, secs: float, paths: RunPaths) -> None:
    z = m.zones
    log.info("evaluate: forecast %s AUC %.3f AP %.3f | distance-to-edge baseline AUC %.3f AP %.3f | %s",
             m.period, m.model.auc, m.model.ap, m.baseline_distance_to_edge.auc, m.baseline_distance_to_edge.ap,
             f"zone-mean risk std {z.mean_risk_std:.4f} over {z.count} zones" if z.count else "no zones")
    for c in m.scorecards:
        if c.name in BASELINE_LABELS.values():
            log.info("evaluate: %s AUC %.3f AP %.3f", c.name, c.auc, c.ap)
    g = m.margin_over_baselines
    if g is not None:
        log.info("evaluate: margin over the best baseline — AUC %+.3f (%s), AP ×%.2f (%s), prediction MedAE %.2f× the "
                 "benchmark's (best baseline %.2f×)", g.auc_difference, g.best_auc_baseline, g.ap_ratio,
                 g.best_ap_baseline, g.medae_ratio_vs_benchmark, g.best_baseline_medae_ratio_vs_benchmark)
    vt = m.vt0007
    if vt is not None and not vt.skipped and vt.benchmark is not None:
        for row in [vt.benchmark, *vt.models]:
            if row.fit is not None:
                log.info("evaluate: VT0007 %s — MedAE fit %.1f ha, prediction %.1f ha over %d cells%s", row.name,
                         row.fit.medae_ha, row.prediction.medae_ha, row.prediction.n_cells,
                         "" if row.passes is None else f" → {'passes' if row.passes else 'does not pass'}")
    elif vt is not None:
        log.info("evaluate: VT0007 validation skipped: %s", vt.skipped)
    log.info("evaluate: report %s in %.1f s", paths.report, secs)
