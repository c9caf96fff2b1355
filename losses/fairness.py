"""Group-fairness term over zones, with optional EMA smoothing and DDP all-reduce."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn

from geo_risk_errors import LossInputError

from ._options import check_options
from .functional import (LossInputs, check_inputs, no_autocast, penalty_from_zone_stats,
                         zone_stats_checked)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Autograd-aware SUM; its backward SUMs the gradients over ranks (see ZoneFairnessLoss)."""
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # deprecated in favour of _functional_collectives in torch >= 2.10
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(t, op=dist.ReduceOp.SUM)


class ZoneFairnessLoss(nn.Module):
    """Spread of per-zone predicted risk (or soft false-negative rate) across zones.

    Per zone g >= 1: rate_g = S_g / C_g with
      "variance", "range": S_g = Σ m·p,         C_g = Σ m     (zone mean risk μ_g)
      "fnr_parity":        S_g = Σ m·y·(1 - p), C_g = Σ m·y   (soft FNR_g)
    and P_g = Σ m (valid pixels). Zones qualify with P_g >= min_zone_pixels and C_g > 0.
    The penalty is the population variance of the rates ("variance", "fnr_parity") or
    max - min ("range"); it is 0 when fewer than two zones qualify.

    EMA (``ema_momentum`` = β, training mode only): with detached running sums R,
      S_g ← S_g + β·R_S[g],  C_g ← C_g + β·R_C[g],  P_g ← P_g + β·R_P[g]
    then R ← (S, C, P).detach(). So μ_g = (S_batch + β·R_S) / (C_batch + β·R_C), the gradient
    flows through the current batch only, and qualification uses the smoothed P_g (about
    P_batch / (1 - β) in steady state). In eval mode the buffers are neither read nor updated.

    DDP (initialised, world size > 1): S is all-reduced with the autograd-aware
    ``torch.distributed.nn.functional.all_reduce`` and C, P with a plain all-reduce, so
    every rank computes the same global penalty; ``num_zones`` is then required. The
    backward of that all-reduce sums the (identical) upstream gradients over ranks, so a
    rank's logit gradient is world_size × d(global penalty)/d(its logits); DDP's gradient
    averaging then yields exactly the gradient of the global penalty.
    """

    def __init__(self, kind: str = "variance", min_zone_pixels: int = 50,
                 ema_momentum: float | None = None, num_zones: int | None = None):
        super().__init__()
        check_options(fairness=kind, min_zone_pixels=min_zone_pixels, ema_momentum=ema_momentum,
                      num_zones=num_zones)
        self.kind, self.min_zone_pixels = kind, int(min_zone_pixels)
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        self.num_zones = None if num_zones is None else int(num_zones)
        if ema_momentum is not None:  # rows: running S, C, P per zone (grows if num_zones is None)
            self.register_buffer("running", torch.zeros(3, num_zones or 0))

    def forward(self, logits: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                zone: torch.Tensor) -> torch.Tensor:
        with no_autocast(logits):
            return self.forward_checked(check_inputs(logits, label, valid, zone=zone, num_zones=self.num_zones))

    def forward_checked(self, x: LossInputs) -> torch.Tensor:
        """The term on inputs already passed through ``check_inputs`` (with ``zone``)."""
        distributed = _distributed()
        if distributed and self.num_zones is None:
            raise LossInputError("num_zones is required under DDP (every rank must reduce equally sized "
                                 "per-zone sums): pass num_zones = max zone id + 1 to the loss.")
        sums, counts, pixels = zone_stats_checked(x, self.kind)
        if distributed:
            sums = _all_reduce_with_grad(sums)
            plain = torch.stack([counts, pixels]).detach()
            dist.all_reduce(plain)
            counts, pixels = plain[0], plain[1]
        if self.ema_momentum is not None and self.training:
            sums, counts, pixels = self._smooth(sums, counts, pixels)
        return penalty_from_zone_stats(sums, counts, pixels, self.kind, self.min_zone_pixels)

    def _smooth(self, sums, counts, pixels):
        k = max(sums.numel(), self.running.shape[1])
        pad = lambda t: torch.nn.functional.pad(t, (0, k - t.shape[-1]))  # noqa: E731
        run = pad(self.running).to(device=sums.device, dtype=sums.dtype)
        beta = self.ema_momentum
        sums, counts, pixels = pad(sums) + beta * run[0], pad(counts) + beta * run[1], pad(pixels) + beta * run[2]
        with torch.no_grad():
            self.running = torch.stack([sums, counts, pixels]).detach().to(self.running.dtype)
        return sums, counts, pixels

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "running"
        if self.ema_momentum is not None and key in state_dict:  # buffer may have grown
            self.running = torch.zeros_like(state_dict[key], device=self.running.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"kind={self.kind!r}, min_zone_pixels={self.min_zone_pixels}, "
                f"ema_momentum={self.ema_momentum}, num_zones={self.num_zones}")
