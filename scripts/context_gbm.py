"""How much of the U-Net's margin is spatial context a per-pixel model gets from a few window densities?

    python scripts/context_gbm.py --tiles RUN/tiles [--windows 3 9 33 99] [RUN/risk.tif ...]

Fits the in-box gradient boosting (:func:`geo_risk.baselines.fit_gbm`, the same training and validation
pixels of the chip store, the same prior correction) twice: on the stack's bands (the in-box GBM), and
on those bands plus, for each window of ``--windows`` pixels, the share of forest and of past loss in
the square window around the pixel at the period's start (beyond the grid counts as neither). Both are
scored on the forecast period over every forest pixel, as AUC, AP and the AUC among edge-row pixels
(30 m from non-forest), beside any maps given.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import rasterio
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score

from geo_risk.baselines import fit_gbm, sample_pixels
from tiles import open_store
from tiles.bands import share_bands
from tiles.blockwise import window_share
from tiles.chips import normalise
from tiles.grid import CHUNK_PX


def window_shares(period, bands: list[str], windows: list[int]) -> tuple[np.ndarray, list[str]]:
    """(k, H, W) shares of forest and past loss in each window (:func:`tiles.blockwise.window_share`, as
    ``layers.context_windows_px`` puts them in the stack), and their band names."""
    f = period["features"]
    masks = [f.sel(band="forest").values > 0.5]
    past = "past_loss" in bands
    if past:
        masks.append(f.sel(band="past_loss").values > 0.5)
    out = [window_share(da.from_array(m, chunks=CHUNK_PX), w) for w in windows for m in masks]
    return np.stack(dask.compute(*out)), share_bands(windows, past)


def with_context(sample, shares: np.ndarray, names: list[str]):
    extra = shares[:, sample.row_px, sample.col_px].T
    return replace(sample, bands=sample.bands + tuple(names), features=np.hstack([sample.features, extra]))


def scores(p: np.ndarray, y: np.ndarray, edge: np.ndarray) -> str:
    return (f"AUC {roc_auc_score(y, p):.4f}  AP {average_precision_score(y, p):.4f}  "
            f"edge-row AUC {roc_auc_score(y[edge], p[edge]):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=Path, required=True)
    ap.add_argument("--windows", type=int, nargs="+", default=[3, 9, 33, 99])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("maps", type=Path, nargs="*")
    a = ap.parse_args()

    stack = open_store(a.tiles / "stack.zarr", "layer stack")
    bands = [str(b) for b in stack.band.values]
    train_p, fc = stack.sel(period="train"), stack.sel(period="forecast")
    tr, va = (sample_pixels(a.tiles / "chips.zarr", s, seed=a.seed) for s in ("train", "val"))
    sh_train, names = window_shares(train_p, bands, a.windows)

    valid = fc["valid"].values.astype(bool)
    y = fc["label"].values[valid].astype(np.uint8)
    edge = fc["features"].sel(band="dist_edge_m").values[valid] <= 31
    x = normalise(fc["features"].values[:, valid][:, :, None], bands, tr.stats)[:, :, 0].T
    sh_fc, _ = window_shares(fc, bands, a.windows)
    x_ctx = np.hstack([x, sh_fc[:, valid].T])
    print(f"forecast: {valid.sum():,} forest pixels, {int(y.sum()):,} lost, {int(edge.sum()):,} in the edge row")

    plain = fit_gbm(tr, va, seed=a.seed)
    print(f"GBM on the stack's bands ({plain.iterations} rounds):     ", scores(plain.predict_proba(x), y, edge))
    ctx = fit_gbm(with_context(tr, sh_train, names), with_context(va, sh_train, names), seed=a.seed)
    print(f"GBM + window shares {a.windows} ({ctx.iterations} rounds):", scores(expit(ctx.logit(x_ctx)), y, edge))
    for m in a.maps:
        with rasterio.open(m) as src:
            p = src.read(1, masked=True).filled(np.nan)[valid]
        print(f"{m}: ", scores(np.nan_to_num(p, nan=-1.0), y, edge))


if __name__ == "__main__":
    main()
