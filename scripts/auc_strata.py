"""Where a map loses its AUC: the forecast's forest pixels split into strata of distance to the forest
edge, and 1 − AUC decomposed over (lost-pixel stratum, kept-pixel stratum) pairs.

    python scripts/auc_strata.py --tiles RUN/tiles RUN/risk.tif OTHER/risk.tif [--baselines]

AUC = Σ_ij w_ij · AUC_ij, where w_ij is the share of (lost, kept) pixel pairs with the lost pixel in
stratum i and the kept one in stratum j, and AUC_ij the probability that the map ranks the lost pixel
of such a pair above the kept one (ties count half). Each cell prints AUC_ij and the AUC it costs,
w_ij · (1 − AUC_ij); the costs sum to 1 − AUC. ``--baselines`` adds the GLM and GBM fitted on the
run's training chips (geo_risk.baselines), scored on the same pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from sklearn.metrics import roc_auc_score

from tiles import open_store

#: strata of distance to the forest edge in metres (30 m pixels: the edge row, rows 2–3, 4–10, beyond)
EDGES_M = (0, 31, 91, 301, np.inf)


def pair_auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a pixel of ``pos`` > score of a pixel of ``neg``), ties counted half."""
    sp, sn = score[pos], score[neg]
    if not len(sp) or not len(sn):
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(sp)), np.zeros(len(sn))], np.r_[sp, sn]))


def decompose(score: np.ndarray, lost: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(AUC_ij, w_ij, total AUC) over the strata of :data:`EDGES_M`."""
    strata = [(dist >= lo) & (dist < hi) for lo, hi in zip(EDGES_M[:-1], EDGES_M[1:])]
    n = len(strata)
    auc, w = np.full((n, n), np.nan), np.zeros((n, n))
    npos, nneg = lost.sum(), (~lost).sum()
    for i, si in enumerate(strata):
        for j, sj in enumerate(strata):
            pos, neg = si & lost, sj & ~lost
            w[i, j] = pos.sum() * neg.sum() / (npos * nneg)
            auc[i, j] = pair_auc(score, pos, neg)
    return auc, w, float(np.nansum(auc * w))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=Path, required=True, help="the run's tiles/ folder (stack.zarr, chips.zarr)")
    ap.add_argument("maps", nargs="*", type=Path, help="probability GeoTIFFs on the stack's grid (risk.tif)")
    ap.add_argument("--baselines", action="store_true", help="also the GLM and GBM of geo_risk.baselines")
    args = ap.parse_args()
    fc = open_store(args.tiles / "stack.zarr", "layer stack").sel(period="forecast")
    valid = fc["valid"].values.astype(bool)
    lost = fc["label"].values[valid].astype(bool)
    dist = fc["features"].sel(band="dist_edge_m").values[valid]
    scores = {str(p): rasterio.open(p).read(1)[valid].astype(np.float64) for p in args.maps}
    if args.baselines:
        from geo_risk.baselines import fit_and_score_run

        bm = fit_and_score_run(args.tiles.parent)
        scores.update({name: bm[name][valid].astype(np.float64) for name in ("glm", "gbm")})
    names = [f"{lo:g}–{hi:g} m" for lo, hi in zip(EDGES_M[:-1], EDGES_M[1:])]
    counts = [int(((dist >= lo) & (dist < hi) & lost).sum()) for lo, hi in zip(EDGES_M[:-1], EDGES_M[1:])]
    print("lost pixels per stratum of distance to the edge:", dict(zip(names, counts)))
    for label, s in scores.items():
        s = np.where(np.isfinite(s), s, -1.0)
        auc, w, total = decompose(s, lost, dist)
        print(f"\n{label}: AUC {total:.4f}\n| lost in \\ kept in | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for i, n in enumerate(names):
            print(f"| {n} | " + " | ".join(f"{auc[i, j]:.3f} (−{w[i, j] * (1 - auc[i, j]):.4f})" if w[i, j] else "—"
                                         for j in range(len(names))) + " |")


if __name__ == "__main__":
    main()
