"""Is the U-Net's information the in-box GLM's with context bands? A stacking bound.

    python scripts/stacking_bound.py --tiles CTX_RUN/tiles RUN/risk.tif [RUN2/risk.tif ...]

``CTX_RUN`` is a run tiled with ``layers.context_windows_px`` (the window shares of forest and past
loss as bands, docs/model.md). Fits the in-box baselines on its chips (:func:`geo_risk.baselines.
fit_and_score_run`), averages the logits of the U-Net maps given (a seed ensemble when several), and
scores on the forecast period over every forest pixel: the context GLM and GBM, the U-Net (ensemble),
and ``logit(U-Net) + w · logit(context GLM)`` for a few weights ``w``. Weights are chosen in hindsight
on the forecast itself, so the best blend is an upper bound of what stacking the two could add, not a
model: if it barely beats the context GLM, the U-Net holds no ranking information the GLM lacks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from scipy.special import logit
from sklearn.metrics import average_precision_score, roc_auc_score

from geo_risk.baselines import fit_and_score_run
from tiles import open_store


def scores(y: np.ndarray, s: np.ndarray) -> str:
    return f"{roc_auc_score(y, s):.4f} / {average_precision_score(y, s):.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=Path, required=True, help="tiles/ of a run tiled with context_windows_px")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0])
    ap.add_argument("maps", type=Path, nargs="+", help="U-Net risk.tif maps on the same grid")
    args = ap.parse_args()
    fc = open_store(args.tiles / "stack.zarr", "layer stack").sel(period="forecast")
    valid = fc["valid"].values.astype(bool)
    y = fc["label"].values[valid].astype(np.uint8)
    maps = fit_and_score_run(args.tiles.parent)
    clip = lambda p: logit(np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7))  # noqa: E731
    glm = clip(maps["glm"][valid])
    units = []
    for path in args.maps:
        with rasterio.open(path) as r:
            units.append(clip(np.nan_to_num(r.read(1)[valid], nan=0.0)))
    unet = np.mean(units, axis=0)
    print(f"forecast {int(valid.sum()):,} forest pixels, {int(y.sum()):,} lost — AUC / AP")
    print(f"| context GLM | {scores(y, glm)} |")
    print(f"| context GBM | {scores(y, maps['gbm'][valid])} |")
    for path, u in zip(args.maps, units):
        print(f"| U-Net {path} | {scores(y, u)} |")
    if len(units) > 1:
        print(f"| U-Net, mean logit of {len(units)} maps | {scores(y, unet)} |")
    for w in args.weights:
        print(f"| U-Net + {w:g} × context GLM (logits) | {scores(y, unet + w * glm)} |")


if __name__ == "__main__":
    main()
