#!/usr/bin/env python3
"""Decision throughput, in megapixels per second, without and with budgets — side by side, one run.

    python bench/bench_decide.py                        # a synthetic 3000 × 3000 region
    python bench/bench_decide.py --risk runs/guadeloupe-demo/risk.tif

Times the pure rules of geo_risk.decide (no file I/O): the Bayes rule (``decide``), ``solve``
without a budget, with one hectare budget (patrol) and with two (patrol in ha, monitor in cost
units), on one cost matrix and on per-pixel costs (damage × (1 + eco), patrol cost × distance).
Megapixels are pixels with a probability (forest); the grid's total is printed too. Each case is
the best of ``--repeat`` runs. Ratios, not absolute times, are what to compare across machines.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from geo_risk.decide import Budget, decide, pixel_costs, solve

THREE = np.array([[0.0, 100.0], [2.0, 60.0], [10.0, 25.0]])  # none / monitor / patrol (the demo's)
PIXEL_HA = 0.09


def load(args) -> tuple[np.ndarray, int]:
    if args.risk:
        import rasterio

        with rasterio.open(args.risk) as src:
            prob = src.read(1).astype(np.float64)
        return prob[np.isfinite(prob)], prob.size
    rng = np.random.default_rng(0)
    n = args.size * args.size
    p = rng.beta(0.4, 8.0, n)  # mean ≈ 0.05, a long right tail like the demo's map
    return p[rng.random(n) < args.forest], n


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--risk", help="a risk.tif to decide on (default: synthetic)")
    ap.add_argument("--size", type=int, default=3000, help="synthetic grid side, px")
    ap.add_argument("--forest", type=float, default=0.3, help="synthetic share of pixels with a probability")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    p, grid_px = load(args)
    n = p.size
    forest_ha = n * PIXEL_HA
    rng = np.random.default_rng(1)
    eco, dist = rng.random(n), rng.random(n) * 5000
    per_pixel = pixel_costs(THREE, 1 + 0.2 * dist / 1000, 1 + eco)
    patrol = Budget(2, limit=0.025 * forest_ha, weight=PIXEL_HA, name="patrol 2.5 % of the forest")
    cases = {
        "Bayes rule (decide)": lambda c: decide(p, c),
        "solve, no budget": lambda c: solve(p, c),
        "solve, 1 budget (patrol ha)": lambda c: solve(p, c, [patrol]),
        "solve, 2 budgets (+ monitor cost)": lambda c: solve(p, c, [
            patrol, Budget(1, limit=2 * 0.1 * n, weight=c[1, 0], unit="cost units")]),
    }
    print(f"{n / 1e6:.2f} Mpx with a probability (grid {grid_px / 1e6:.2f} Mpx), 3 actions, best of {args.repeat}")
    print(f"{'case':<36} {'one matrix':>12} {'per-pixel costs':>16}   (Mpx/s)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = {}
        for name, fn in cases.items():
            t1 = best_of(lambda: fn(THREE), args.repeat)
            t2 = best_of(lambda: fn(per_pixel), args.repeat)
            rows[name] = (n / t1 / 1e6, n / t2 / 1e6)
            print(f"{name:<36} {rows[name][0]:>12.1f} {rows[name][1]:>16.1f}")
        plan = solve(p, THREE, [patrol])
    base = rows["solve, no budget"][0]
    print(f"one budget runs at {rows['solve, 1 budget (patrol ha)'][0] / base:.2f}× the speed of no budget "
          f"(one matrix); the budget binds: {plan.budgets[0].binding}, shadow price "
          f"{plan.budgets[0].shadow_price:.4g} per ha, gap to the dual bound {plan.gap:.3g}")


if __name__ == "__main__":
    main()
