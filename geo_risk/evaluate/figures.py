"""The report's figures, as PNG bytes: built with :class:`matplotlib.figure.Figure` (never pyplot), so
rendering them changes no backend and needs no display."""

from __future__ import annotations

import io
import textwrap

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.patches import Patch
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from geo_risk.artifacts import FairnessAudit, ReliabilityCurve
from geo_risk.evaluate.vt0007 import CellTable

COLOURS = ["#1b6ca8", "#e6550d", "#31a354", "#756bb1", "#636363", "#bcbd22"]


def png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _thin(*arrays: np.ndarray, n: int = 2000) -> list[np.ndarray]:
    """At most ``n`` evenly spaced points of each curve (plots of millions of vertices are slow and heavy)."""
    size = len(arrays[0])
    if size <= n:
        return list(arrays)
    idx = np.unique(np.linspace(0, size - 1, n).round().astype(np.int64))
    return [a[idx] for a in arrays]


def roc_pr(scores: dict[str, np.ndarray], label: np.ndarray, aucs: dict[str, tuple[float, float]]) -> bytes:
    """ROC and precision–recall curves of each score over the population."""
    fig = Figure(figsize=(11, 4.2), constrained_layout=True)
    ax_roc, ax_pr = fig.subplots(1, 2)
    for (name, s), colour in zip(scores.items(), COLOURS):
        auc, ap = aucs[name]
        fpr, tpr, _ = roc_curve(label, s)
        ax_roc.plot(*_thin(fpr, tpr), color=colour, label=f"{name} (AUC {auc:.3f})")
        prec, rec, _ = precision_recall_curve(label, s)
        ax_pr.plot(*_thin(rec, prec), color=colour, label=f"{name} (AP {ap:.3f})")
    ax_roc.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax_roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1))
    rate = float(np.mean(label))
    ax_pr.axhline(rate, ls=":", color="grey", lw=1, label=f"observed loss rate {rate:.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision–recall", xlim=(0, 1), ylim=(0, 1))
    ax_roc.legend(fontsize=8, loc="lower right")
    ax_pr.legend(fontsize=8, loc="upper right")
    return png(fig)


def reliability(curves: list[ReliabilityCurve], observed_rate: float) -> bytes:
    """Observed loss rate against mean predicted probability (equal-count bins), linear and log axes."""
    fig = Figure(figsize=(11, 4.4), constrained_layout=True)
    ax_lin, ax_log = fig.subplots(1, 2)
    top = max([max(c.mean_predicted + c.observed_rate) for c in curves] + [observed_rate * 2])
    for c, colour in zip(curves, COLOURS):
        for ax in (ax_lin, ax_log):
            ax.plot(c.mean_predicted, c.observed_rate, "o-", ms=4, color=colour, label=c.name)
    lo = min([min(v for v in c.mean_predicted + c.observed_rate if v > 0) for c in curves] + [1e-3])
    for ax in (ax_lin, ax_log):
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=1, label="perfect calibration")
        ax.set(xlabel="mean predicted probability (bin)", ylabel="observed loss rate (bin)")
    ax_lin.set(xlim=(0, min(1, top * 1.05)), ylim=(0, min(1, top * 1.05)), title="reliability (equal-count bins)")
    ax_log.set(xscale="log", yscale="log", xlim=(lo / 2, 1), ylim=(lo / 2, 1), title="the same, log axes")
    ax_lin.legend(fontsize=8, loc="upper left")
    return png(fig)


def vt0007_cells(tables: dict[str, dict[str, CellTable]]) -> bytes:
    """Observed vs predicted hectares per validation cell, fit and prediction test, one column per map."""
    names = list(tables)
    fig = Figure(figsize=(3.6 * len(names) + 0.6, 7.2), constrained_layout=True)
    axes = np.atleast_2d(fig.subplots(2, len(names), squeeze=False))
    for j, name in enumerate(names):
        for i, test in enumerate(("fit", "prediction")):
            ax = axes[i, j]
            t = tables[name][test]
            err = np.abs(t.predicted_ha - t.observed_ha)
            hi = float(max(t.observed_ha.max(), t.predicted_ha.max(), 1.0)) * 1.08
            ax.plot([0, hi], [0, hi], ":", color="grey", lw=1)
            ax.scatter(t.observed_ha, t.predicted_ha, s=18, color=COLOURS[j % len(COLOURS)], alpha=0.8)
            ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="observed loss (ha)", ylabel="predicted loss (ha)",
                   title=f"{textwrap.fill(name, 30)}\n{test} test — MedAE {np.median(err):,.1f} ha, {len(err)} cells")
            ax.set_aspect("equal")
            ax.title.set_fontsize(8.5)
    return png(fig)


def zone_audit(audit: FairnessAudit) -> bytes:
    """Per counted zone: observed loss rate beside mean risk of the model and the map; FNR of the
    decision; error bars = bootstrap intervals."""
    rows = sorted([r for r in audit.zones if r.counted], key=lambda r: r.observed_loss_rate.value)
    names = [r.name or str(r.zone_id) for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(8.0, 0.42 * len(rows) + 2), 7.5), constrained_layout=True)
    ax_rate, ax_fnr = fig.subplots(2, 1, sharex=True)

    def bars(ax, field, offset, width, colour, label):
        v = np.array([getattr(r, field).value for r in rows])
        lo = np.array([getattr(r, field).low for r in rows])
        hi = np.array([getattr(r, field).high for r in rows])
        yerr = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)]).clip(min=0)
        ax.bar(x + offset, v, width, color=colour, label=label, yerr=yerr, ecolor="#333", capsize=1.5,
               error_kw={"lw": 0.7})

    bars(ax_rate, "observed_loss_rate", -0.27, 0.27, "#444444", "observed loss rate")
    bars(ax_rate, "mean_risk_model", 0.0, 0.27, COLOURS[0], "mean risk, model")
    bars(ax_rate, "mean_risk_map", 0.27, 0.27, COLOURS[1], "mean risk, map (risk.tif)")
    ax_rate.set(ylabel="share of forest pixels", title="per zone: observed loss against predicted risk "
                f"({audit.confidence:.0%} block-bootstrap intervals)")
    ax_rate.legend(fontsize=8)
    bars(ax_fnr, "fnr", -0.2, 0.4, "#a50f15", "false-negative rate (lost, not flagged)")
    bars(ax_fnr, "fpr", 0.2, 0.4, "#fdae6b", "false-positive rate (kept, flagged)")
    ax_fnr.set(ylabel="rate", ylim=(0, 1), title=f"decision errors per zone (flagged = {', '.join(audit.flagged_actions)})")
    ax_fnr.legend(fontsize=8)
    ax_fnr.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    return png(fig)


def thumbnails(risk: np.ndarray, decision: np.ndarray, density: np.ndarray | None, actions: list[str],
               palette: list[tuple[int, int, int, int]], max_px: int = 700) -> bytes:
    """Small views of risk.tif, decision.tif and density.tif (nearest-neighbour subsampling); the
    continuous maps on a square-root scale, where most of the forest's low values stay visible."""
    step = max(1, int(np.ceil(max(risk.shape) / max_px)))
    fig = Figure(figsize=(4.8 * (3 if density is not None else 2), 4.6), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(1, 3 if density is not None else 2))
    panels = [(axes[0], "risk of forest loss (risk.tif)", risk, "magma_r")]
    if density is not None:
        panels.append((axes[2], "VT0007 density (density.tif), ha/pixel/yr", density, "viridis"))
    for ax, title, arr, cm in panels:
        small = arr[::step, ::step]
        top = float(np.nanmax(small)) if np.isfinite(small).any() else 1.0
        im = ax.imshow(small, cmap=cm, interpolation="nearest", norm=PowerNorm(0.5, vmin=0, vmax=top or 1.0))
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.7)
    dec = decision[::step, ::step]
    colours = [np.array(palette[i % len(palette)], dtype=np.float64) / 255 for i in range(len(actions))]
    rgba = np.zeros((*dec.shape, 4))
    for i, c in enumerate(colours):
        rgba[dec == i] = c
    axes[1].imshow(rgba, interpolation="nearest")
    axes[1].set_title("decision (decision.tif)", fontsize=9)
    axes[1].legend(handles=[Patch(color=c, label=a) for a, c in zip(actions, colours)], fontsize=8, loc="lower left")
    for ax in axes:
        ax.set_axis_off()
    return png(fig)
