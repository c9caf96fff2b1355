"""Verra VT0007 (Unplanned Deforestation Allocation, v1.0, 2024): benchmark, allocation, validation.

Pure NumPy on arrays of one grid (no file I/O). Every map is 2-D ``(y, x)``; ``forest`` is the
forest mask at the *start* of the period a function works on, ``loss`` the pixels of that forest
lost during the period. Areas are hectares, distances metres, periods whole or fractional years.

The sequence (VT0007 §5.1; UDef-ARP's "testing stage"):

1. **Benchmark vulnerability map** (§5.3): distance to the forest edge at the start of the period
   → :func:`edge_distance_threshold` (the distance holding 99.5 % of the loss, UDef-ARP's "NRT")
   → :func:`benchmark_classes` (class 1 beyond it, a geometric series of 29 distance bins inside).
   A model's probabilities become the same 30 classes with :func:`probability_classes`.
2. **Fitting** (calibration period): :func:`class_density` — relative frequency of loss per class
   (crossed with administrative ``zones`` when given, UDef-ARP's "modeling regions") turned into a
   density in ha/pixel/yr.
3. **Prediction + quantity adjustment**: :func:`allocate` — calibration densities on the classes of
   another period, scaled to an expected total and iterated so that no pixel receives more than
   its own area over the period.
4. **Validation** (§5.5): :func:`square_cells` (or a polygon-id raster) → :func:`validate` (per-cell
   observed vs predicted hectares; MedAE, MAE, RMSE, wRMSE, R²); :func:`fit_test` and
   :func:`prediction_test` run steps 2–4 for one map; :func:`verdict` says whether a model may
   replace the benchmark (lower MedAE than the benchmark in *both* tests).

What each step follows, and where VT0007, Clark Labs' UDef-ARP and riskmapjnr differ:
``docs/vt0007.md``.

The code: ``results.py`` (the result types), ``classes.py`` (steps 1–2), ``allocation.py`` (step 3),
``validation.py`` (step 4), ``checks.py`` (input checks). Import from here:
``from geo_risk.evaluate.vt0007 import allocate``.
"""

from __future__ import annotations

from geo_risk.evaluate.vt0007.allocation import allocate
from geo_risk.evaluate.vt0007.classes import (CLASS_METHODS, EDGE_QUANTILE, N_CLASSES, ClassDensity, benchmark_classes,
                                              class_density, edge_distance_threshold, probability_classes)
from geo_risk.evaluate.vt0007.results import (Allocation, CellTable, PeriodScore, Validation, Verdict,
                                              VulnerabilityClasses)
from geo_risk.evaluate.vt0007.validation import (MEDIAN_PROJECT_AREA_HA, fit_test, prediction_test, square_cells,
                                                 validate, verdict)

__all__ = [
    "CLASS_METHODS", "EDGE_QUANTILE", "MEDIAN_PROJECT_AREA_HA", "N_CLASSES", "Allocation", "CellTable", "ClassDensity", "PeriodScore",
    "Validation", "Verdict", "VulnerabilityClasses", "allocate", "benchmark_classes", "class_density",
    "edge_distance_threshold", "fit_test", "prediction_test", "probability_classes", "square_cells", "validate",
    "verdict",
]
