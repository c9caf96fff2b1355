"""``report.html``: one self-contained page per run (figures inlined as data URIs, no script, no
external resource), built from the typed metrics. Every text that comes from the user's data
(zone names, paths) is escaped."""

from __future__ import annotations

import base64
import math
from html import escape

from geo_risk.artifacts import CellErrors, Metrics
from geo_risk.config import RunConfig

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:0 24px 48px;
color:#222;line-height:1.45}
h1{margin-top:28px;font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:10px 0 16px;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td{white-space:nowrap}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{background:#fff7e6;border-left:4px solid #f0a500;padding:8px 12px;margin:12px 0}
.pass{color:#1a7f37;font-weight:600}.fail{color:#b42318;font-weight:600}.muted{color:#666;font-size:.9em}
.wide{overflow-x:auto}nav a{margin-right:14px}code{background:#f4f4f4;padding:1px 4px}
"""


def _f(v, digits: int = 3, pct: bool = False) -> str:
    """A number for a table: '—' for None/NaN, thousands separators for large values."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if pct:
        return f"{100 * v:.{digits}f} %"
    return f"{v:,.{digits}f}" if abs(v) >= 1000 else f"{v:.{digits}g}" if abs(v) < 0.01 and v else f"{v:.{digits}f}"


def _img(data: bytes | None, alt: str) -> str:
    if not data:
        return ""
    return f'<p><img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}"></p>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class=\"wide\"><table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table></div>"


def _verdict(v: bool | None) -> str:
    if v is None:
        return "—"
    return '<span class="pass">pass</span>' if v else '<span class="fail">fail</span>'


def render(cfg: RunConfig, m: Metrics, figs: dict[str, bytes], learning_png: bytes | None, *, temperature: float,
           seconds: float) -> str:
    """The whole page."""
    parts = [_header(cfg, m, temperature), _coverage(m), _scores(m, figs), _vt0007(m, figs), _fairness(m, figs),
             _decision(m), _maps(figs, learning_png)]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>geo-risk evaluation — {escape(cfg.name)}</title><style>{CSS}</style></head><body>"
            + "".join(parts)
            + f"<p class=\"muted\">Written by <code>geo-risk evaluate</code> in {seconds:.1f} s. Definitions: "
              "docs/evaluation.md and docs/vt0007.md in the geo-risk repository.</p></body></html>\n")


def _header(cfg: RunConfig, m: Metrics, temperature: float) -> str:
    tr, fc = cfg.periods.train, cfg.periods.forecast
    dc = cfg.decision
    cost = "; ".join(f"{a}: " + ", ".join(f"{s} {c:g}" for s, c in zip(dc.states, row))
                     for a, row in zip(dc.actions, dc.cost))
    ec = cfg.evaluate
    rows = [
        ["region", escape(cfg.name)],
        ["calibration period (model fitted, VT0007 fit test)", f"{tr.start_year}–{tr.end_year}"],
        ["forecast = confirmation period (scored here)", f"{fc.start_year}–{fc.end_year}"],
        ["model", escape(f"{cfg.model.arch} {cfg.model.encoder}, {cfg.train.epochs} epochs")],
        ["loss weights", f"λ_eco {cfg.loss.lambda_eco:g}, λ_fair {cfg.loss.lambda_fair:g} (training)"],
        ["zone-fairness projection of the map", f"λ {m.zones.projection_lambda_fair:g}"
         if m.zones.projection_lambda_fair else "none"],
        ["temperature T (calibration)", f"{temperature:.4g}"],
        ["cost matrix C[action, state]", escape(cost)],
        ["VT0007 cells", escape(m.vt0007.cells if m.vt0007 else "—")],
        ["VT0007 classes of a model's map", escape(m.vt0007.class_method.replace("_", " ") if m.vt0007 else "—")],
        ["VT0007 modelling regions (classes crossed with)", escape(m.vt0007.modeling_regions or "—" if m.vt0007 else "—")],
        ["bootstrap (zone intervals)", f"{ec.bootstrap} replicates of {ec.bootstrap_block_px}-px blocks, "
                                       f"{ec.confidence:.0%} intervals"],
    ]
    nav = " ".join(f'<a href="#{a}">{t}</a>' for a, t in [("coverage", "coverage"), ("scores", "scores"),
                                                           ("vt0007", "VT0007"), ("zones", "zones"),
                                                           ("decision", "decision value"), ("maps", "maps")])
    return (f"<h1>Deforestation-risk evaluation — {escape(cfg.name)}, forecast {escape(m.period)}</h1>"
            f"<nav>{nav}</nav><h2>Run</h2>" + _table(["setting", "value"], rows))


def _coverage(m: Metrics) -> str:
    c = m.coverage
    share = c.missing_pixels / c.forest_pixels if c.forest_pixels else float("nan")
    text = (f"<h2 id=\"coverage\">Population and coverage</h2><p>Every score below is computed over the "
            f"<b>{c.forest_pixels:,}</b> pixels ({c.forest_ha:,.0f} ha) that were forest at the start of {m.period} "
            f"inside the region's outline — the population a verifier uses. The observed loss rate is "
            f"<b>{_f(m.observed_loss_rate, 2, pct=True)}</b>. The map gives a value to {c.scored_pixels:,} of them; ")
    if c.missing_pixels:
        text += (f"<b>{c.missing_pixels:,} ({_f(share, 2, pct=True)}) have none</b> (an input is missing there) and "
                 f"are scored as the map's lowest risk (probability 0, no action); {c.missing_lost_pixels:,} of the "
                 "observed losses are among them.</p>")
    else:
        text += "every forest pixel has a value.</p>"
    if c.filled_inputs:
        text += ("<p>Inputs missing on forest pixels and filled by the tile stage (the map has a value there, "
                 "from filled inputs): " + ", ".join(f"{escape(k)} {v:,}" for k, v in c.filled_inputs.items())
                 + " pixels.</p>")
    return text


def _scores(m: Metrics, figs: dict[str, bytes]) -> str:
    rows = [[escape(c.name), _f(c.auc), _f(c.ap), _f(c.brier, 4), _f(c.ece, 4), _f(c.fom_at_observed_quantity),
             _f(c.eco_weighted_recall_at_observed_rate), _f(c.mean_probability, 4)] for c in m.scorecards]
    return ("<h2 id=\"scores\">Discrimination and calibration</h2>"
            + _table(["map", "AUC", "average precision", "Brier", "ECE", "FOM at observed quantity",
                      "eco-weighted recall", "mean probability"], rows)
            + f"<p class=\"muted\">Observed loss rate {_f(m.observed_loss_rate, 4)}: a calibrated map's mean probability "
              "is close to it. FOM (figure of merit, Pontius et al. 2008) = hits / (hits + misses + false alarms) "
              "when the map flags as many pixels as were lost. Eco-weighted recall: share of the biomass-weighted "
              "loss among those pixels. ECE: 15 equal-width bins by default (evaluate.calibration_bins). The "
              "uncalibrated model is the same network with its logits multiplied back by T.</p>"
            + _baselines(m)
            + _img(figs.get("roc_pr"), "ROC and precision-recall curves")
            + "<p>Reliability: observed loss rate against mean predicted probability, in bins of equal pixel count, "
              "before (uncalibrated) and after temperature scaling, and for the map after the zone projection.</p>"
            + _img(figs.get("reliability"), "reliability diagram"))


def _baselines(m: Metrics) -> str:
    """What the baselines are and the map's margin over the best of them."""
    b, g = m.baselines, m.margin_over_baselines
    if b is None:
        return "<p class=\"muted\">No baselines (evaluate.baselines is empty).</p>"
    fits = "; ".join(f"{escape(f.label)}: {len(f.bands)} covariates, {f.iterations} "
                     f"{'rounds' if f.name == 'gbm' else 'iterations'}, fitted in {f.fit_seconds:.1f} s" for f in b.fitted)
    out = (f"<p>Baselines (docs/baselines.md): per-pixel models without spatial context, fitted on "
           f"{b.train_pixels:,} pixels of the training period's chips ({b.train_positives:,} lost; case-control "
           f"sample, prior-corrected; the U-Net's covariates) and scored on exactly the same forest pixels as the map, "
           f"a pixel without a value as probability 0. {fits}. Sampling, fitting and mapping them over both periods "
           f"took {b.seconds:.1f} s.</p>")
    if g is not None:
        medae = ""
        if math.isfinite(g.medae_ratio_vs_benchmark):
            medae = (f"; VT0007 prediction-test MedAE <b>{g.medae_ratio_vs_benchmark:.2f}×</b> the distance-to-edge "
                     f"benchmark's (best baseline, {escape(g.best_medae_baseline)}: "
                     f"{_f(g.best_baseline_medae_ratio_vs_benchmark, 2)}×)")
        out += (f"<p><b>Margin of the map over the best baseline</b>: AUC <b>{g.auc_difference:+.3f}</b> "
                f"(against {escape(g.best_auc_baseline)}), average precision <b>{_f(g.ap_ratio, 3)}×</b> "
                f"(against {escape(g.best_ap_baseline)}){medae}.</p>")
    return out


def _err_cells(e: CellErrors | None) -> list[str]:
    if e is None or e.n_cells == 0:
        return ["—"] * 6
    return [_f(e.medae_ha, 1), _f(e.medae_pct_cell, 3) + " %", _f(e.mae_ha, 1), _f(e.rmse_ha, 1), _f(e.wrmse_ha, 1),
            _f(e.r2, 3)]


def _vt0007(m: Metrics, figs: dict[str, bytes]) -> str:
    vt = m.vt0007
    out = "<h2 id=\"vt0007\">Verra VT0007: benchmark and validation</h2>"
    if vt is None:
        return out + "<p>Not run.</p>"
    out += (f"<p>Calibration period {escape(vt.calibration_period)}, confirmation period "
            f"{escape(vt.confirmation_period)}. Benchmark: distance to the forest edge at the start of the calibration "
            f"period; 99.5 % of its loss lies within <b>{_f(vt.threshold_m, 0)} m</b> of the edge; 30 classes. "
            "Each map is cut into 30 classes, each class takes its calibration-period loss frequency, and the "
            "confirmation-period map is adjusted to the observed total before it is compared, cell by cell, with "
            "the observed loss.</p>")
    if vt.skipped:
        out += f"<p class=\"note\">Validation skipped: {escape(vt.skipped)}.</p>"
    else:
        head = ["map", "fit MedAE (ha)", "fit MedAE % cell", "fit MAE", "fit RMSE", "fit wRMSE", "fit R²",
                "prediction MedAE (ha)", "pred. MedAE % cell", "pred. MAE", "pred. RMSE", "pred. wRMSE", "pred. R²",
                "fit test", "prediction test", "may replace the benchmark"]
        rows = []
        for r in [vt.benchmark, *vt.models]:
            if r is None:
                continue
            bench = r.name == "benchmark"
            rows.append([escape(r.name), *_err_cells(r.fit), *_err_cells(r.prediction),
                         "(reference)" if bench else _verdict(r.passes_fit),
                         "(reference)" if bench else _verdict(r.passes_prediction),
                         "" if bench else _verdict(r.passes)])
        first = vt.benchmark.prediction if vt.benchmark else None
        out += (f"<p>{escape(vt.cells)}; {first.n_cells if first else 0} cells with forest kept"
                f"{f', {first.n_dropped} dropped' if first and first.n_dropped else ''}. Errors are predicted − observed "
                "hectares over each period. A map may replace the benchmark only if its MedAE is lower in <i>both</i> "
                "tests.</p>" + _table(head, rows))
        notes = [r for r in vt.models if r.note]
        for r in notes:
            out += f"<p class=\"note\">{escape(r.name)}: {escape(r.note)}</p>"
        out += _img(figs.get("vt0007_cells"), "VT0007 observed vs predicted per cell")
    out += (f"<p><code>density.tif</code>: the {escape(vt.density_map)}'s allocation of "
            f"{_f(vt.expected_ha_per_yr, 1)} ha/yr ({'from evaluate.expected_ha_per_yr' if vt.expected_source == 'config' else 'the observed rate of the confirmation period'})"
            f" over the forecast period's forest, in ha/pixel/yr; {_f(vt.allocated_ha_per_yr, 1)} ha/yr allocated"
            f"{'' if not vt.shortfall_ha_per_yr else f', shortfall {_f(vt.shortfall_ha_per_yr, 1)} ha/yr'}.</p>")
    return out


def _fairness(m: Metrics, figs: dict[str, bytes]) -> str:
    a = m.fairness
    out = "<h2 id=\"zones\">Fairness audit per zone</h2>"
    if a is None:
        return out + "<p>The region has no zones.</p>"
    out += ("<p class=\"note\"><b>Read both columns.</b> The zone-fairness terms pull the mean predicted risk of the "
            "zones together. Where zones truly differ in observed loss, equal mean risk means the map no longer tracks "
            "the observed risk in some of them: it under-states risk where forest is really being lost (a harm to "
            "those forests and the people who depend on them) and over-states it elsewhere. Each row shows the "
            "observed loss rate beside the mean risk of the model and of the map, and the decision's error rates, so "
            "the trade-off the λ's made is visible.</p>")
    out += (f"<p>Flagged = the decision takes {escape(', '.join(a.flagged_actions))}. Intervals: {a.confidence:.0%} "
            f"percentile intervals of a bootstrap of {a.bootstrap_replicates} replicates resampling "
            f"{a.bootstrap_block_px}×{a.bootstrap_block_px}-pixel blocks within each zone. Zones with fewer than "
            f"{a.min_zone_pixels} forest pixels are listed but not summarised.</p>")
    out += _img(figs.get("zone_audit"), "per-zone audit")

    def iv(i, pct=True):
        return (f"{_f(i.value, 2, pct=pct)} <span class=\"muted\">[{_f(i.low, 2, pct=pct)}, "
                f"{_f(i.high, 2, pct=pct)}]</span>")

    rows = [[escape(r.name or str(r.zone_id)), _f(r.forest_pixels), iv(r.observed_loss_rate), iv(r.mean_risk_model),
             iv(r.mean_risk_map), iv(r.fnr), iv(r.fpr), _f(r.flagged_ha, 0), "" if r.counted else "not counted"]
            for r in sorted(a.zones, key=lambda r: -r.forest_pixels)]
    out += _table(["zone", "forest pixels", "observed loss rate", "mean risk, model", "mean risk, map",
                   "false-negative rate", "false-positive rate", "flagged ha", ""], rows)
    labels = {"observed_loss_rate": "observed loss rate", "mean_risk_model": "mean risk, model",
              "mean_risk_map": "mean risk, map", "fnr": "false-negative rate", "fpr": "false-positive rate"}
    srows = [[labels[s.metric], _f(s.max_minus_min, 4), _f(s.max_over_min, 3), _f(s.variance, 3)] for s in a.summaries]
    out += "<p>Spread over the counted zones:</p>" + _table(["quantity", "max − min", "max / min", "variance"], srows)
    return out


def _decision(m: Metrics) -> str:
    d = m.decision_value
    out = "<h2 id=\"decision\">Decision value</h2>"
    if d is None:
        return out + "<p>Not computed.</p>"
    budgets = any(r.within_budgets is not None for r in d.rules)
    rows = [[escape(r.name), _f(r.flagged_ha, 0), _f(r.expected_cost, 0), _f(r.realised_cost, 0),
             _f(r.realised_vs_threshold, 3), *([_f(r.within_budgets)] if budgets else [])] for r in d.rules]
    out += ("<p>Expected cost: Σ over the forest pixels of C[action, lost]·p + C[action, stays]·(1 − p) under the "
            "map's probabilities. Realised cost: Σ C[action, observed state] — what following the plan over the "
            "forecast period would have cost. Flagged: any action but the first. The 0.5 threshold gives the "
            "strongest action where p ≥ 0.5 and nothing elsewhere; decide's planner is the decide stage's rule "
            "(minimum expected cost within the budgets) applied to another probability map.</p>"
            + _table(["plan", "flagged ha", "expected cost", "realised cost", "realised / 0.5-threshold rule",
                      *(["within the budgets"] if budgets else [])], rows))
    if d.note:
        out += f"<p class=\"note\">{escape(d.note)}</p>"
    if d.target_met is not None:
        out += (f"<p>Target: the decision map's realised cost ≤ {d.target_ratio:g} × the 0.5-threshold rule's — "
                f"{_verdict(d.target_met)}."
                + ("" if d.target_met else " What limits it (calibration, cost matrix, budgets, discrimination) is "
                   "measured in docs/evaluation.md, “What limits the decision value”; "
                   "<code>scripts/decision_value.py</code> re-plans a run folder's map under those variants.")
                + "</p>")
    return out


def _maps(figs: dict[str, bytes], learning_png: bytes | None) -> str:
    out = "<h2 id=\"maps\">Maps</h2>" + _img(figs.get("maps"), "risk, decision and density maps")
    if learning_png:
        out += "<h2>Training</h2>" + _img(learning_png, "learning curves")
    return out
