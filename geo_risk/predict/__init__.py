"""Stage 3 — predict: seamless block inference (``blocks``), the zone step (``zones``), the stage (``stage``)."""

from geo_risk.predict.blocks import infer_blocks, predict_window, seam_metric
from geo_risk.predict.stage import PredictResult, logits_of_period, run_predict
from geo_risk.predict.zones import project_zones

__all__ = ["PredictResult", "infer_blocks", "logits_of_period", "predict_window", "project_zones", "run_predict",
           "seam_metric"]
