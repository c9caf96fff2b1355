"""Zone-fair risk maps: the smallest change to a map that narrows the spread of zone-mean risk.

The fairness term of the training loss sees a batch of a few chips, so it can only compare zones
through whichever chips they happen to share a batch with — and a network that is not told the
zone can only narrow the spread by flattening risk everywhere (docs/losses.md measures the cost).
Here the same term is applied to the whole map at once. Each zone g gets one logit offset b_g
minimising

    mean_i CE(p_i, σ(z_i + b_g(i))) + λ_fair · Var_g(zone-mean risk)

where p_i = σ(z_i) is the model's calibrated probability: the cross-entropy to the unadjusted map
is its KL divergence plus a constant, so this is an information projection of the map onto fairer
maps. No labels are needed, the ranking of pixels inside every zone is unchanged, and one common
shift then restores the map's total expected loss (the expected deforested area is not changed).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import expit

from geo_risk.zone_stats import counted_zones
from losses import CompositeLoss


def fair_zone_offsets(logits: np.ndarray, zones: np.ndarray, lambda_fair: float, min_zone_pixels: int,
                      max_iter: int = 200) -> np.ndarray:
    """Logit offset per zone id (a table: ``offsets[zones]`` is the shift of every pixel).

    ``logits``: calibrated logits of the valid pixels (flat, finite). ``zones``: their integer zone
    ids, 0 = outside every zone. Zones with at least ``min_zone_pixels`` pixels get their own
    offset; all pixels, zone 0 and small zones included, share the common shift that keeps the
    mean risk unchanged. ``lambda_fair == 0`` gives all zeros.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    zones = np.asarray(zones).ravel().astype(np.int64)
    table = np.zeros(int(zones.max()) + 1 if zones.size else 1)
    fitted = counted_zones(zones, min_zone_pixels)
    if lambda_fair == 0 or fitted.size < 2:
        return table
    slot = np.full(table.size, -1)
    slot[fitted] = np.arange(fitted.size)
    pixel_slot = torch.from_numpy(slot[zones])
    has_offset = pixel_slot >= 0
    zt = torch.from_numpy(z)
    offsets = torch.zeros(fitted.size, dtype=torch.float64, requires_grad=True)
    loss_fn = CompositeLoss(lambda_eco=0.0, lambda_fair=lambda_fair, min_zone_pixels=min_zone_pixels)
    shape = (1, 1, 1, -1)
    target = torch.sigmoid(zt).view(shape)
    ones, no_eco, g = torch.ones_like(target), torch.zeros_like(target), torch.from_numpy(zones).view(shape)
    opt = torch.optim.LBFGS([offsets], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        shift = torch.where(has_offset, offsets[pixel_slot.clamp(min=0)], torch.zeros_like(zt))
        loss = loss_fn((zt + shift).view(shape), target, ones, no_eco, g).total
        loss.backward()
        return loss

    opt.step(closure)
    table[fitted] = offsets.detach().numpy()
    shifted = z + table[zones]
    goal = expit(z).mean()
    common = brentq(lambda c: expit(shifted + c).mean() - goal, -200.0, 200.0, xtol=1e-10)
    return table + common
