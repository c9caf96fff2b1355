"""Stage 6 — evaluate: how good the risk map is, the way its users are judged.

``metrics`` (pure functions on flat pixel arrays), ``vt0007`` (Verra VT0007 arithmetic, pure NumPy),
``verra`` (VT0007 on a run's periods), ``audit`` (per-zone fairness audit), ``value`` (decision
value), ``figures`` and ``html`` (the report); ``report`` runs the stage on a run folder.
"""

from geo_risk.evaluate.metrics import ranking_metrics, weighted_recall_at_area
from geo_risk.evaluate.report import forecast_metrics, run_evaluate

__all__ = ["forecast_metrics", "ranking_metrics", "run_evaluate", "weighted_recall_at_area"]
