"""What limits a run's VT0007 prediction MedAE? Diagnostics on one run, without retraining.

    python scripts/medae_diagnostics.py CONFIG RUN [--cell-m 1000] [--draws 3]

``RUN`` is a run folder of CONFIG (``geo-risk run CONFIG --out RUN``). Predicts the model over the
calibration period once (cached as ``RUN/calibration_logits.npy``) and prints the prediction-test MedAE
of the benchmark and of ``risk.tif`` on square cells of ``--cell-m``:

1. as ``geo-risk evaluate`` scores it (30 equal-area classes, calibration-period densities);
2. with the classes crossed with the run's zones (VT0007's modelling regions, ``evaluate.vt0007_zones``),
   for the benchmark and the map alike;
3. with the map's class densities taken from the forecast period itself (an oracle: is the
   calibration-period density curve the limit?);
4. with ``risk.tif``'s probabilities themselves scaled to the observed total (no classes: is the
   30-class cut the limit?);
5. a floor: outcomes drawn at random from ``risk.tif`` as if it were the truth, scored against it (how
   low the MedAE of a map this sharp goes when the only error is chance; real loss is more clustered).

The ratio to the benchmark's MedAE on the real data is printed for each (docs/model.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.special import expit

from geo_risk.config.load import load_config
from geo_risk.evaluate import vt0007 as vt
from geo_risk.evaluate.inputs import load_inputs, zone_offsets
from geo_risk.evaluate.report import calibration_period_logits
from geo_risk.evaluate.verra import benchmark, cell_grid
from geo_risk.paths import RunPaths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("run", type=Path, help="the run folder (geo-risk run CONFIG --out RUN)")
    ap.add_argument("--cell-m", type=float, default=1000.0, help="side of the square validation cells (m)")
    ap.add_argument("--draws", type=int, default=3, help="random draws for the chance floor")
    args = ap.parse_args()
    cfg = load_config(args.config, {"output_dir": str(args.run), "evaluate": {"cell_size_m": args.cell_m}})
    x = load_inputs(cfg)
    cal, cnf, px_ha = x.cal, x.cnf, x.pixel_area_ha
    # square cells of --cell-m, whatever evaluate.cells_path says
    cells, label = cell_grid(x.inside.shape, x.pixel_size_m, x.inside, args.cell_m, True)
    cache = args.run / "calibration_logits.npy"
    if cache.exists():
        logits_cal = np.load(cache)
    else:
        logits_cal, why = calibration_period_logits(cfg)
        if logits_cal is None:
            raise SystemExit(why)
        np.save(cache, logits_cal)
    offsets = zone_offsets(RunPaths(cfg.run_dir), x.tags, int(x.zone.max()) + 1)
    scored = np.isfinite(logits_cal) & x.valid_cal
    p_cal = np.where(scored, expit(logits_cal + offsets[x.zone]), np.nan)  # the map's rule: projected like risk.tif
    p_cnf = np.where(np.isfinite(x.risk) & cnf.forest, x.risk, np.nan)
    print(f"{args.run}: {label}, forecast {cnf.name}, calibration {cal.name}")

    def predict(classes, density, zones=None) -> float:
        return vt.prediction_test(classes, density, cnf.loss, cnf.forest, years=cnf.years, cells=cells,
                                  zones=zones).validation.medae_ha

    c_cal = vt.probability_classes(p_cal, cal.forest)
    c_cnf = vt.probability_classes(p_cnf, cnf.forest)
    rows = []
    for zname, zones in (("as evaluated", None), ("classes × zones", x.zone)):
        bench = benchmark(cal, cnf, x.pixel_size_m[0], px_ha, zones)
        b = predict(bench.classes_cnf, bench.density, zones)
        m = predict(c_cnf, vt.class_density(c_cal, cal.loss, cal.forest, cal.years, px_ha, zones), zones)
        rows.append((zname, b, m))
    b0 = rows[0][1]
    for zname, b, m in rows:
        print(f"  {zname:<44} benchmark {b:.3f} ha, map {m:.3f} ha → ratio {m / b:.3f}")
    oracle = predict(c_cnf, vt.class_density(c_cnf, cnf.loss, cnf.forest, cnf.years, px_ha))
    print(f"  {'map, densities of the forecast period (oracle)':<44} map {oracle:.3f} ha → ratio {oracle / b0:.3f}")
    p = np.where(cnf.forest, np.nan_to_num(p_cnf), 0.0)
    raw = vt.validate(p / p.sum() * cnf.loss.sum() * px_ha, cnf.loss * px_ha, cells, cnf.forest, px_ha).medae_ha
    print(f"  {'map, probabilities scaled to the total':<44} map {raw:.3f} ha → ratio {raw / b0:.3f}")
    rng = np.random.default_rng(0)
    for k in range(args.draws):
        y = (rng.random(p.shape) < p) & cnf.forest
        floor = vt.validate(p / p.sum() * y.sum() * px_ha, y * px_ha, cells, cnf.forest, px_ha).medae_ha
        print(f"  {f'chance floor, draw {k + 1} (outcomes drawn from the map)':<44} map {floor:.3f} ha → ratio "
              f"{floor / b0:.3f}")


if __name__ == "__main__":
    main()
