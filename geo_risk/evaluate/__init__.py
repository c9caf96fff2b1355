"""Stage 6 — evaluate: how good the risk map is, the way its users are judged.

``metrics`` holds pure functions on flat pixel arrays; ``report`` runs the stage on a run folder.
"""

from geo_risk.evaluate.metrics import ranking_metrics, weighted_recall_at_area
from geo_risk.evaluate.report import forecast_metrics, run_evaluate

__all__ = ["forecast_metrics", "ranking_metrics", "run_evaluate", "weighted_recall_at_area"]
