"""How much AUC does equalising zone-mean risk cost if within-zone ranking is kept?

    python scripts/zone_shift_bound.py runs/ablation/lambda_eco0.0_lambda_fair0.0

Takes a trained run, and on its validation chips shifts every zone's logits by one constant so
that the zone's mean risk moves a fraction (25 / 50 / 75 %) of the way to the overall mean. That
is the cheapest way to shrink the spread (ranking inside each zone is untouched), so its AUC
cost is a reference for what a fairness-trained model could reach.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from geo_risk.data import ChipDataset
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--min-zone-pixels", type=int, default=50)
    args = ap.parse_args()
    paths = RunPaths(args.run_dir)
    model, _ = load_checkpoint(paths.checkpoint)
    logits, labels, zones = [], [], []
    with torch.no_grad():
        for image, label, valid, _eco, zone in DataLoader(ChipDataset(paths.chips, "val"), batch_size=16):
            m = valid.bool()
            logits.append(model(image).float()[m].numpy())
            labels.append(label[m].numpy())
            zones.append(zone[m].numpy())
    z, y, g = (np.concatenate(a) for a in (logits, labels, zones))
    ids = [k for k in np.unique(g) if k > 0 and (g == k).sum() >= args.min_zone_pixels]
    means = np.array([sigmoid(z[g == k]).mean() for k in ids])
    overall = sigmoid(z[np.isin(g, ids)]).mean()
    base_auc = roc_auc_score(y, z)
    print(f"unchanged: AUC {base_auc:.4f}, zone-mean risk std {means.std():.4f} over {len(ids)} zones")
    for shrink in (0.25, 0.5, 0.75):
        shifted = z.copy()
        for k, mu in zip(ids, means):
            sel = g == k
            target = overall + (1 - shrink) * (mu - overall)
            shifted[sel] += brentq(lambda d: sigmoid(z[sel] + d).mean() - target, -20, 20)
        new_means = np.array([sigmoid(shifted[g == k]).mean() for k in ids])
        auc = roc_auc_score(y, shifted)
        print(f"shrink {shrink:.0%}: AUC {auc:.4f} (−{base_auc - auc:.4f}), zone-mean risk std {new_means.std():.4f}")


if __name__ == "__main__":
    main()
