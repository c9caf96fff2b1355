"""Controlled experiment on the composite loss: same data, seed and epochs; only λ changes.

    python scripts/loss_ablation.py --base runs/ablation \
        --runs "eco=0 fair=0" "eco=5 fair=0" "eco=0 fair=10 ema=0.9"

Each run is a set of loss settings (eco → lambda_eco, fair → lambda_fair, ema → ema_momentum,
kind → fairness) and optionally proj → predict.lambda_fair, the zone-fairness projection of the
map (geo_risk/fairness.py; it uses no labels, so it is applied to the validation map as well).
Runs that differ only in proj share one trained model. The demo is tiled once (``<base>/shared/tiles``, reused by every run), each run
trains with the same seed and epochs, and each is scored on the validation chips (spatially
held-out blocks) and on the forecast period. Prints a Markdown table and writes
``<base>/ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from torch.utils.data import DataLoader

from geo_risk.config import load_config
from geo_risk.data import ChipDataset
from geo_risk.evaluate import ranking_metrics, weighted_recall_at_area
from geo_risk.zone_stats import spread, zone_mean_risk
from geo_risk.fairness import fair_zone_offsets
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths
from geo_risk.predict import predict_probability
from geo_risk.tiling import run_tile
from geo_risk.train import make_loss, run_train

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def score_validation(run_dir: Path, min_zone_pixels: int, lambda_proj: float) -> dict:
    """Metrics on the validation chips (calibrated, then projected when ``lambda_proj`` > 0):
    AUC, AP, zone-mean-risk spread, eco-weighted recall."""
    model, meta = load_checkpoint(RunPaths(run_dir).checkpoint)
    ds = ChipDataset(RunPaths(run_dir).chips, "val")
    logits, labels, ecos, zones = [], [], [], []
    for image, label, valid, eco, zone in DataLoader(ds, batch_size=16):
        lg = model(image).float() / meta.temperature
        m = valid.bool()
        for store, t in zip((logits, labels, ecos, zones), (lg[m], label[m], eco[m], zone[m])):
            store.append(t.numpy())
    lg, y, e, z = (np.concatenate(a) for a in (logits, labels, ecos, zones))
    p = expit(lg + fair_zone_offsets(lg, z, lambda_proj, min_zone_pixels)[z])
    zs = spread(zone_mean_risk(p, z, min_zone_pixels))
    return {
        **ranking_metrics(p, y),
        "zone_mean_risk_std": zs.std,
        "zone_mean_risk_range": zs.range,
        "zones": zs.count,
        "eco_recall": weighted_recall_at_area(p, y, e, float(y.mean())),
    }


def score_forecast(cfg) -> dict:
    risk, stack = predict_probability(cfg)
    prob = risk.prob
    stack = stack.sel(period="forecast")
    valid = stack["valid"].values.astype(bool) & np.isfinite(prob)
    y = stack["label"].values[valid]
    e = np.nan_to_num(stack["eco"].values[valid])
    z = stack["zone"].values[valid]
    zs = spread(zone_mean_risk(prob[valid], z, cfg.loss.min_zone_pixels))
    return {**{f"forecast_{k}": v for k, v in ranking_metrics(prob[valid], y).items()},
            "forecast_zone_mean_risk_std": zs.std,
            "forecast_eco_recall": weighted_recall_at_area(prob[valid], y, e, float(y.mean()))}


def initial_magnitudes(cfg) -> dict:
    """Each term of the loss on the first training batch, for an untrained model (seeded)."""
    from geo_risk.model import build_model

    torch.manual_seed(cfg.train.seed)
    ds = ChipDataset(RunPaths(cfg.run_dir).chips, "train")
    batch = next(iter(DataLoader(ds, batch_size=cfg.train.batch_size)))
    model = build_model(cfg.model, len(ds.bands)).eval()
    with torch.no_grad():
        res = make_loss(cfg, ds.num_zones)(model(batch.image), batch.label, batch.valid, batch.eco, batch.zone)
    return {k: float(v) for k, v in res.parts.items()}


KEYS = {"eco": "lambda_eco", "fair": "lambda_fair", "ema": "ema_momentum", "kind": "fairness"}


def parse_run(spec: str) -> tuple[dict, float]:
    """'eco=5 fair=10 ema=0.9 proj=10' → ({'lambda_eco': 5.0, 'lambda_fair': 10.0, 'ema_momentum': 0.9}, 10.0)."""
    out, proj = {}, 0.0
    for item in spec.split():
        key, _, value = item.partition("=")
        if key == "proj":
            proj = float(value)
        else:
            out[KEYS[key]] = value if key == "kind" else float(value)
    return out, proj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "guadeloupe-demo.yaml")
    ap.add_argument("--base", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--runs", nargs="+", default=["eco=0 fair=0", "eco=5 fair=0", "eco=0 fair=10", "eco=5 fair=10"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None, help="training seed (the chips and their split stay fixed)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    train_over = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                    ("seed", args.seed))
                  if v is not None}
    base_cfg = load_config(args.config, {"output_dir": str(args.base / "shared"), "train": train_over})
    if not RunPaths(base_cfg.run_dir).chips.exists():
        run_tile(base_cfg)
    results = {"initial_terms": initial_magnitudes(base_cfg), "runs": []}
    for spec in args.runs:
        loss, proj = parse_run(spec)
        name = "_".join(f"{k}{v}" for k, v in sorted(loss.items()))
        cfg = load_config(args.config, {"output_dir": str(args.base / name), "train": train_over, "loss": loss,
                                        "predict": {"lambda_fair": proj}})
        paths = RunPaths(cfg.run_dir)
        paths.root.mkdir(parents=True, exist_ok=True)
        if not paths.tiles.exists():
            os.symlink(RunPaths(base_cfg.run_dir).tiles.resolve(), paths.tiles)
        if not paths.checkpoint.exists():  # runs differing only in proj share the model
            run_train(cfg)
        row = {"run": spec, "lambda_eco": cfg.loss.lambda_eco, "lambda_fair": cfg.loss.lambda_fair,
               "ema": cfg.loss.ema_momentum, "fairness": cfg.loss.fairness, "lambda_proj": proj,
               **score_validation(cfg.run_dir, cfg.loss.min_zone_pixels, proj), **score_forecast(cfg)}
        results["runs"].append(row)
        print(json.dumps(row))
    (args.base / "ablation.json").write_text(json.dumps(results, indent=2))
    print("\ninitial loss terms (untrained model, first batch):", results["initial_terms"])
    print("\n| run | val AUC | val AP | zone-mean risk std | range | eco-weighted recall | "
          "forecast AUC | forecast AP | forecast zone-mean risk std | forecast eco recall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['run']} | {r['auc']:.3f} | {r['ap']:.3f} | "
              f"{r['zone_mean_risk_std']:.4f} | {r['zone_mean_risk_range']:.4f} | {r['eco_recall']:.3f} | "
              f"{r['forecast_auc']:.3f} | {r['forecast_ap']:.3f} | {r['forecast_zone_mean_risk_std']:.4f} | "
              f"{r['forecast_eco_recall']:.3f} |")


if __name__ == "__main__":
    main()
