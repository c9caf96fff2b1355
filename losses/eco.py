"""Ecological false-negative term: missed positives, weighted by ecological value."""

from __future__ import annotations

import torch
from torch import nn

from ._options import check_options
from .functional import LossInputs, check_inputs, eco_false_negative_checked, no_autocast


class EcoFalseNegativeLoss(nn.Module):
    """L_eco = Σ m·y·e·(-log p) / Σ m ("log", computed as softplus(-z)) or Σ m·y·e·(1 - p) / Σ m
    ("linear"). Negatives add nothing; the denominator counts every valid pixel.
    Under DDP the term stays per rank: DDP averages the gradients.
    """

    def __init__(self, form: str = "log"):
        super().__init__()
        check_options(eco_form=form)
        self.form = form

    def forward(self, logits: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                eco: torch.Tensor) -> torch.Tensor:
        with no_autocast(logits):
            return self.forward_checked(check_inputs(logits, label, valid, eco=eco))

    def forward_checked(self, x: LossInputs) -> torch.Tensor:
        """The term on inputs already passed through ``check_inputs`` (with ``eco``)."""
        return eco_false_negative_checked(x, self.form)

    def extra_repr(self) -> str:
        return f"form={self.form!r}"
