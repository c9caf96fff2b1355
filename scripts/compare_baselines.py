"""The baselines in the box against a run's U-Net, on exactly the same forecast pixels.

    python scripts/compare_baselines.py --run runs/guadeloupe-demo [--max-pixels 200000] [--seed 0] [--variants]

Fits the distance-to-edge curve, forestatrisk's GLM and gradient boosting on the run's training
chips (geo_risk/baselines.py), maps them over the forecast period and scores them beside the
run's ``risk.tif`` over the pixels where every map is defined (the forecast's valid pixels).
Prints a Markdown table (AUC, average precision, eco-weighted recall at the observed loss rate,
mean predicted risk against the observed rate, fit time) and the GLM's coefficients. Needs
``<run>/tiles/`` and ``<run>/risk.tif``.

``--variants`` adds a second table: the GLM and the GBM refitted with other seeds, caps and
settings (inverse-probability weights instead of the prior correction, forestatrisk's
``scale(distance)`` without the log, other boosting settings), scored on the same pixels (held
in memory as a flat array: fine for the demo, not for a country).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

import yaml

from sklearn.linear_model import LogisticRegression

from geo_risk.baselines import (
    BASELINES, DESCRIPTIONS, MAX_PIXELS, PixelSample, fit_and_score_run, fit_gbm, fit_glm, informative_bands,
    sample_pixels,
)
from geo_risk.evaluate.metrics import ranking_metrics, weighted_recall_at_area
from geo_risk.paths import RunPaths
from tiles import open_store
from tiles.bands import DIST_EDGE
from tiles.chips import normalise

def run_seed(paths: RunPaths) -> int:
    """``train.seed`` of the run's resolved config (read as plain YAML: older runs' configs still load), else 0."""
    try:
        return int(yaml.safe_load(paths.config.read_text())["train"]["seed"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return 0


def raw_covariates(sample: PixelSample, x: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """Undo the U-Net's normalisation of ``bands`` (x: normalised, every store band): raw units, distances in m."""
    out = np.empty((x.shape[0], len(bands)))
    for k, b in enumerate(bands):
        st = sample.stats[b]
        v = x[:, sample.bands.index(b)] * st["std"] + st["mean"]
        out[:, k] = np.expm1(v) if st["transform"] == "log1p" else v
    return out


def variants(chips: Path, features: np.ndarray, label: np.ndarray, seed: int, max_pixels: int) -> None:
    """The sensitivity table: GLM and GBM refitted other ways, scored on the same pixels."""
    def row(what: str, p: np.ndarray, fit_s: float) -> None:
        m = ranking_metrics(p, label)
        print(f"| {what} | {m['auc']:.3f} | {m['ap']:.3f} | {fit_s:.1f} |", flush=True)

    print("\n| variant | AUC | AP | fit (s) |\n|---|---|---|---|")
    for k in range(3):
        s = sample_pixels(chips, "train", max_pixels, seed + k)
        val = sample_pixels(chips, "val", max(2, max_pixels // 4), seed + k + 1)
        x = normalise(features[:, :, None], list(s.bands), s.stats)[:, :, 0].T
        g = fit_glm(s)
        row(f"GLM, sample seed {seed + k}", g.predict_proba(x), g.fit_seconds)
        b = fit_gbm(s, val, seed=seed + k)
        row(f"GBM, seed {seed + k} ({b.iterations} rounds)", b.predict_proba(x), b.fit_seconds)
        if k:
            continue
        b = fit_gbm(s, val, seed=seed, learning_rate=0.05, min_samples_leaf=200)
        row(f"GBM, learning rate 0.05, min_samples_leaf 200 ({b.iterations} rounds)", b.predict_proba(x), b.fit_seconds)
        b = fit_gbm(s, None, seed=seed)
        row("GBM without validation pixels (100 rounds)", b.predict_proba(x), b.fit_seconds)
        bands = informative_bands(s)
        cols = [s.bands.index(c) for c in bands]
        t0 = time.perf_counter()
        m = LogisticRegression(solver="lbfgs", max_iter=1000).fit(s.features[:, cols], s.label, sample_weight=s.weight)
        row("GLM with inverse-probability weights (no prior correction)", m.predict_proba(x[:, cols])[:, 1],
            time.perf_counter() - t0)
        a = raw_covariates(s, s.features, bands)
        mu, sd = a.mean(axis=0), a.std(axis=0)
        t0 = time.perf_counter()
        m = LogisticRegression(solver="lbfgs", max_iter=1000).fit((a - mu) / sd, s.label)
        row("GLM on scale(raw value), no log (forestatrisk's notebooks)",
            m.predict_proba((raw_covariates(s, x, bands) - mu) / sd)[:, 1], time.perf_counter() - t0)
    for cap in (max_pixels // 4, 10**9):
        s = sample_pixels(chips, "train", cap, seed)
        val = sample_pixels(chips, "val", max(2, cap // 4), seed + 1)
        x = normalise(features[:, :, None], list(s.bands), s.stats)[:, :, 0].T
        what = f"cap {cap:,}" if cap < 10**9 else "no cap"
        g = fit_glm(s)
        row(f"GLM, {what} ({len(s):,} px)", g.predict_proba(x), g.fit_seconds)
        b = fit_gbm(s, val, seed=seed)
        row(f"GBM, {what} ({len(s):,} px, {b.iterations} rounds)", b.predict_proba(x), b.fit_seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder with tiles/ and risk.tif")
    ap.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="cap on the training pixels")
    ap.add_argument("--seed", type=int, default=None, help="sampling/boosting seed (default: the run's train.seed)")
    ap.add_argument("--unet-train-s", type=float, default=None,
                    help="the U-Net's training time to show in the table (from its train log)")
    ap.add_argument("--variants", action="store_true", help="also refit the GLM and GBM other ways (second table)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    run = args.run.resolve()
    paths = RunPaths(run)
    seed = args.seed if args.seed is not None else run_seed(paths)
    t0 = time.perf_counter()
    maps = fit_and_score_run(run, max_pixels=args.max_pixels, seed=seed)
    total_s = time.perf_counter() - t0

    with rasterio.open(paths.probability) as src:
        risk = src.read(1)
        fairness = src.tags().get("zone_fairness_lambda", "?")
    fc = open_store(paths.stack, "layer stack").sel(period="forecast")
    valid = fc["valid"].values.astype(bool)
    scored = valid & np.isfinite(risk)
    for name in maps.names:
        scored &= np.isfinite(maps[name])
    label = fc["label"].values[scored].astype(np.uint8)
    eco = np.nan_to_num(fc["eco"].values[scored])
    scores = {name: maps[name][scored] for name in maps.names}
    scores["unet"] = risk[scored]
    rate = float(label.mean())

    f = maps.fitted
    print(f"\nforecast pixels scored: {int(scored.sum()):,} (valid: {int(valid.sum()):,}, "
          f"observed loss rate {rate:.4f}); baselines fitted on {f.train_pixels:,} training pixels "
          f"({f.train_positives:,} lost), GBM early-stopped on {f.val_pixels:,} validation pixels; "
          f"seed {f.seed}\n")
    print("| model | AUC | AP | eco-weighted recall* | mean risk | fit (s) |")
    print("|---|---|---|---|---|---|")
    for name in (*BASELINES, "unet"):
        s = scores[name]
        m = ranking_metrics(s, label)
        rec = weighted_recall_at_area(s, label, eco, rate)
        if name == "unet":
            fit = f"{args.unet_train_s:.0f}" if args.unet_train_s is not None else "—"
            what = f"geo-risk U-Net (`risk.tif`, zone-fairness projection λ = {fairness})"
        else:
            fit = f"{maps.fit_seconds[name]:.1f}"
            what = DESCRIPTIONS[name]
        print(f"| {what} | {m['auc']:.3f} | {m['ap']:.3f} | {rec:.3f} | {float(s.mean()):.4f} | {fit} |")
    raw = ranking_metrics(-fc["features"].sel(band=DIST_EDGE).values[scored], label)
    print(f"\n\\* share of the biomass-weighted observed loss caught when flagging as many pixels as were lost."
          f"\nraw −distance to edge on the same pixels: AUC {raw['auc']:.3f}, AP {raw['ap']:.3f}."
          f"\nmapping the three baselines over the forecast: {maps.score_seconds:.1f} s; "
          f"sampling + fitting + mapping: {total_s:.1f} s; GBM boosting rounds kept: {f['gbm'].iterations}.")
    print("\nGLM coefficients (normalised covariates; intercept after the prior correction "
          f"{float(f['glm'].model.intercept_[0] + f['glm'].logit_offset):.3f}):")
    for band, coef in f["glm"].coefficients.items():
        print(f"  {band:<18} {coef:+.3f}")
    if args.variants:
        variants(paths.chips, fc["features"].values[:, scored], label, seed, args.max_pixels)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
