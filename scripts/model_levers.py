"""Lever study of issue #9: train variants of the default recipe on one tiled region and score each
on the forecast period over all its forest pixels, beside the GLM and GBM baselines fitted on the
same training chips and scored on the same pixels.

    python scripts/model_levers.py --config configs/guadeloupe-demo.yaml --tiles RUN/tiles \
        --base runs/levers "ref" "long: train.epochs=24 train.batch_size=32"

A variant is ``name`` or ``name: key=value ...`` (dotted config keys, YAML values). Every variant
predicts with one test-time view and no zone projection, so only the lever changes. Writes
``<base>/levers.jsonl`` (one line per variant, appended) and prints a Markdown table.

``--vt0007-cell-m 1000`` also runs VT0007's prediction test on square cells of that side (the
model's calibration-period map predicted too, equal-area or geometric classes as the config says) and
reports each map's prediction MedAE and its ratio to the distance-to-edge benchmark's.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import rasterio
import yaml

from geo_risk.baselines import fit_and_score_run
from geo_risk.config import load_config
from geo_risk.evaluate import ranking_metrics
from geo_risk.evaluate.metrics import weighted_recall_at_area
from geo_risk.paths import RunPaths
from geo_risk.predict import run_predict
from geo_risk.train import run_train
from tiles import open_store


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    over: dict = {}
    for item in rest.split():
        key, _, value = item.partition("=")
        node = over
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return name.strip(), over


def forecast_population(tiles: Path):
    """The forecast period's forest pixels: (mask, labels, ecological weights) of the stack."""
    fc = open_store(tiles / "stack.zarr", "layer stack").sel(period="forecast")
    valid = fc["valid"].values.astype(bool)
    return valid, fc["label"].values[valid].astype(np.uint8), fc["eco"].values[valid].astype(np.float64)


def score(prob: np.ndarray, valid: np.ndarray, label: np.ndarray, eco: np.ndarray) -> dict:
    """AUC, AP and the eco-weighted recall at matched area (flagging as many pixels as were lost)."""
    s = prob[valid].astype(np.float64)
    missing = int((~np.isfinite(s)).sum())
    s[~np.isfinite(s)] = -1.0  # a forest pixel without a value is scored as the lowest risk
    eco_recall = weighted_recall_at_area(s, label, eco, float(label.mean()))
    return {**ranking_metrics(s, label), "eco_recall": eco_recall, "missing": missing}


class Vt0007Scorer:
    """VT0007's prediction MedAE of a map on square cells, against the distance benchmark's (geo_risk.evaluate.verra)."""

    def __init__(self, cfg, tiles: Path, cell_m: float):
        from geo_risk.evaluate.inputs import period_layers
        from geo_risk.evaluate.verra import benchmark, cell_grid

        stack = open_store(tiles / "stack.zarr", "layer stack")
        self.cal, self.cnf, inside = period_layers(cfg, stack)
        t = stack.rio.transform()
        self.px = (abs(t.a), abs(t.e))
        self.area_ha = self.px[0] * self.px[1] / 1e4
        self.valid_cal = stack["valid"].sel(period="train").values.astype(bool)
        self.bench = benchmark(self.cal, self.cnf, self.px[0], self.area_ha)
        self.cells, self.label = cell_grid(inside.shape, self.px, inside, cell_m, True)
        self.cell_m = cell_m

    def score(self, name: str, p_cal: np.ndarray, p_cnf: np.ndarray, class_method: str) -> dict:
        from geo_risk.evaluate.verra import MapPair, run_vt0007

        pair = MapPair(name, np.where(self.valid_cal & np.isfinite(p_cal), p_cal, np.nan),
                       np.where(self.cnf.forest & np.isfinite(p_cnf), p_cnf, np.nan))
        m = run_vt0007(self.cal, self.cnf, self.bench, [pair], cells=self.cells, cells_label=self.label,
                       pixel_area_ha=self.area_ha, expected_ha_per_yr=None, cell_size_m=self.cell_m,
                       class_method=class_method).metrics
        b, v = m.benchmark.prediction.medae_ha, m.models[0].prediction.medae_ha
        return {"vt0007_cell_m": self.cell_m, "medae_ha": v, "benchmark_medae_ha": b, "medae_ratio": v / b}


def calibration_map(cfg) -> np.ndarray:
    """The trained model's calibrated probability over the calibration (train) period."""
    from scipy.special import expit

    from geo_risk.evaluate.report import calibration_period_logits

    logits, why = calibration_period_logits(cfg)
    if logits is None:
        raise SystemExit(why)
    return expit(logits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--tiles", type=Path, required=True, help="a run's tiles/ folder, shared by every variant")
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--baselines", action="store_true", help="also fit and score the GLM and GBM")
    ap.add_argument("--vt0007-cell-m", type=float, default=None,
                    help="also VT0007's prediction MedAE on square cells of this side (e.g. 1000)")
    ap.add_argument("variants", nargs="*", help="none: only the baselines (with --baselines)")
    args = ap.parse_args()
    if not args.variants and not args.baselines:
        ap.error("give a variant, or --baselines to score only the baselines")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    args.base.mkdir(parents=True, exist_ok=True)
    tiles = args.tiles.resolve()
    valid, label, eco = forecast_population(tiles)
    out = args.base / "levers.jsonl"
    vt = Vt0007Scorer(load_config(args.config), tiles, args.vt0007_cell_m) if args.vt0007_cell_m else None
    if args.baselines:
        ref = args.base / "_baselines"
        ref.mkdir(exist_ok=True)
        if not (ref / "tiles").exists():
            (ref / "tiles").symlink_to(tiles)
        maps = fit_and_score_run(ref)
        if vt:  # the same fitted baselines over the calibration period
            import dask

            from geo_risk.baselines import score_baselines

            with dask.config.set(scheduler="threads"):
                train = score_baselines(maps.fitted, open_store(tiles / "stack.zarr", "layer stack").sel(
                    period="train")).values
            cal_maps = {n: train[i] for i, n in enumerate(maps.fitted.names)}
        for name in maps.names:
            row = {"variant": f"baseline {name}", **score(maps[name], valid, label, eco)}
            if vt:
                row.update(vt.score(name, cal_maps[name], maps[name], load_config(args.config).evaluate.vt0007_classes))
            print(row, flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    for text in args.variants:
        name, over = parse_variant(text)
        run = args.base / name
        run.mkdir(exist_ok=True)
        if not (run / "tiles").exists():
            (run / "tiles").symlink_to(tiles)
        over = {**over, "output_dir": str(run.resolve())}
        over["predict"] = {**over.get("predict", {}), "tta": over.get("predict", {}).get("tta", 1), "lambda_fair": 0}
        cfg = load_config(args.config, over)
        t0 = time.perf_counter()
        tr = run_train(cfg)
        t1 = time.perf_counter()
        run_predict(cfg)
        t2 = time.perf_counter()
        with rasterio.open(RunPaths(run).probability) as src:
            prob = src.read(1)
        row = {"variant": name, "overrides": text, **score(prob, valid, label, eco), "val_auc": tr.val_auc,
               "val_ap": tr.val_ap, "train_s": round(t1 - t0, 1), "predict_s": round(t2 - t1, 1)}
        if vt:
            row.update(vt.score(name, calibration_map(cfg), prob, cfg.evaluate.vt0007_classes))
        print(row, flush=True)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
