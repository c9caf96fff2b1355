"""Masked (optionally pos-weighted / focal) binary cross-entropy: the accuracy term."""

from __future__ import annotations

import torch
from torch import nn

from ._options import check_options
from .functional import LossInputs, check_inputs, masked_bce_checked, no_autocast


class MaskedBCELoss(nn.Module):
    """L_acc = Σ m·BCE(z, y) / Σ m over valid pixels (0 when none is valid).

    ``pos_weight`` scales the positive term as in ``BCEWithLogitsLoss``; ``focal_gamma``
    multiplies by (1 - p_t)^γ (binary focal loss, no alpha). Under DDP the term stays
    per rank: DDP averages the gradients.
    """

    def __init__(self, pos_weight: float | None = None, focal_gamma: float | None = None):
        super().__init__()
        check_options(pos_weight=pos_weight, focal_gamma=focal_gamma)
        self.pos_weight = None if pos_weight is None else float(pos_weight)
        self.focal_gamma = None if focal_gamma is None else float(focal_gamma)

    def forward(self, logits: torch.Tensor, label: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        with no_autocast(logits):
            return self.forward_checked(check_inputs(logits, label, valid))

    def forward_checked(self, x: LossInputs) -> torch.Tensor:
        """The term on inputs already passed through ``check_inputs``."""
        return masked_bce_checked(x, self.pos_weight, self.focal_gamma)

    def extra_repr(self) -> str:
        return f"pos_weight={self.pos_weight}, focal_gamma={self.focal_gamma}"
