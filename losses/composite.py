"""The training loss of geo-risk: accuracy + λ_eco·eco + λ_fair·fairness."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .accuracy import MaskedBCELoss
from .eco import EcoFalseNegativeLoss
from .fairness import ZoneFairnessLoss
from ._options import check_options
from .functional import check_inputs, no_autocast


#: keys of :attr:`LossResult.parts`, in the order logs and plots show them
LOSS_PARTS = ("accuracy", "eco", "fairness")


class LossResult(NamedTuple):
    """``total``: scalar with grad. ``parts``: detached float32 UNWEIGHTED terms to log,
    keys exactly :data:`LOSS_PARTS`."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class CompositeLoss(nn.Module):
    """L = L_acc + λ_eco·L_eco + λ_fair·L_fair (see MaskedBCELoss, EcoFalseNegativeLoss, ZoneFairnessLoss).

    Inputs: logits (N, 1, H, W) of any float dtype; label, valid, eco, zone as (N, 1, H, W) or
    (N, H, W); zone of an integer dtype, 0 = outside every zone. Everything is computed in
    float32 (float64 logits stay float64) with autocast off; masked pixels (valid == 0)
    influence neither values nor gradients. Under DDP the fairness sums are all-reduced, so
    ``parts["fairness"]`` is the global value on every rank (``num_zones`` required), while
    the accuracy and eco terms stay per rank (DDP averages their gradients).
    A term whose λ is 0 is still computed for ``parts`` but without autograd.
    Raises ``geo_risk_errors.LossInputError`` on invalid options or inputs.
    """

    def __init__(self, lambda_eco: float = 1.0, lambda_fair: float = 1.0, min_zone_pixels: int = 50,
                 fairness: str = "variance", eco_form: str = "log", pos_weight: float | None = None,
                 focal_gamma: float | None = None, ema_momentum: float | None = None,
                 num_zones: int | None = None):
        super().__init__()
        check_options(lambda_eco=lambda_eco, lambda_fair=lambda_fair, min_zone_pixels=min_zone_pixels,
                      fairness=fairness, eco_form=eco_form, pos_weight=pos_weight, focal_gamma=focal_gamma,
                      ema_momentum=ema_momentum, num_zones=num_zones)
        self.lambda_eco, self.lambda_fair = float(lambda_eco), float(lambda_fair)
        self.num_zones = None if num_zones is None else int(num_zones)
        self.accuracy = MaskedBCELoss(pos_weight, focal_gamma)
        self.eco = EcoFalseNegativeLoss(eco_form)
        self.fairness = ZoneFairnessLoss(fairness, min_zone_pixels, ema_momentum, num_zones)

    def forward(self, logits: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                eco: torch.Tensor, zone: torch.Tensor) -> LossResult:
        with no_autocast(logits):
            x = check_inputs(logits, label, valid, eco=eco, zone=zone, num_zones=self.num_zones)
            acc = self.accuracy.forward_checked(x)
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.lambda_eco > 0):
                eco_term = self.eco.forward_checked(x)
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.lambda_fair > 0):
                fair = self.fairness.forward_checked(x)
            total = acc
            if self.lambda_eco > 0:
                total = total + self.lambda_eco * eco_term
            if self.lambda_fair > 0:
                total = total + self.lambda_fair * fair
        parts = dict(zip(LOSS_PARTS, (acc, eco_term, fair)))
        return LossResult(total, {k: v.detach().float() for k, v in parts.items()})

    def extra_repr(self) -> str:
        return f"lambda_eco={self.lambda_eco}, lambda_fair={self.lambda_fair}"
