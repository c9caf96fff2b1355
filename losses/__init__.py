"""Composite segmentation loss of geo-risk: masked BCE + ecological false negatives + zone fairness.

Torch only: nothing in this package imports rasterio, geopandas, xarray or dask (keep it so;
the training loop and DDP workers import it without the GIS stack). One loss per module over
the pure functions of :mod:`losses.functional`; errors are ``geo_risk_errors.LossInputError``.
"""

from .accuracy import MaskedBCELoss
from .composite import LOSS_PARTS, CompositeLoss, LossResult
from .eco import EcoFalseNegativeLoss
from .fairness import ZoneFairnessLoss
from ._options import ECO_FORMS, FAIRNESS_KINDS
from .functional import (LossInputs, check_inputs, eco_false_negative, fairness_penalty, masked_bce,
                         zone_means)

__all__ = [
    "CompositeLoss",
    "LossResult",
    "LOSS_PARTS",
    "MaskedBCELoss",
    "EcoFalseNegativeLoss",
    "ZoneFairnessLoss",
    "LossInputs",
    "check_inputs",
    "masked_bce",
    "eco_false_negative",
    "zone_means",
    "fairness_penalty",
    "FAIRNESS_KINDS",
    "ECO_FORMS",
]
