"""Pure, stateless loss functions over per-pixel tensors (single process, no collectives).

Public functions take raw tensors, validate them with :func:`check_inputs` and work in
float32 (float64 stays float64, for gradcheck). ``*_checked`` variants take the
:class:`LossInputs` that ``check_inputs`` returns, so a composite loss validates once.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from geo_risk_errors import LossInputError

from ._options import check_options


class LossInputs(NamedTuple):
    """Checked inputs, flattened over pixels; masked pixels hold 0 in every tensor."""

    logits: torch.Tensor  # float32 (float64 kept), carries grad to the caller's logits
    label: torch.Tensor  # same dtype, 0/1
    valid: torch.Tensor  # same dtype: the 0/1 mask, or per-pixel weights ≥ 0 (0 = masked)
    eco: torch.Tensor | None  # same dtype, >= 0
    zone: torch.Tensor | None  # int64 in [0, num_zones)
    num_zones: int | None


def no_autocast(t: torch.Tensor):
    """Context manager that switches autocast off on ``t``'s device type."""
    return torch.autocast(device_type=t.device.type, enabled=False)


def _pixels(name: str, t, ref: torch.Tensor, pix: tuple) -> torch.Tensor:
    if not torch.is_tensor(t):
        raise LossInputError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
    shape = tuple(t.shape)
    if not (shape == pix or (t.dim() == 4 and shape == (pix[0], 1, *pix[1:]))):
        raise LossInputError(
            f"{name} has shape {shape} but logits has shape {tuple(ref.shape)}; "
            f"give {name} as (N, 1, H, W) or (N, H, W) with (N, H, W) = {pix}."
        )
    return t.reshape(-1).to(ref.device)


def check_inputs(logits, label, valid, eco=None, zone=None, num_zones=None) -> LossInputs:
    """Validate shapes, dtypes and values; cast, flatten and zero out masked pixels.

    Values are checked on valid pixels only, so nodata codes under ``valid == 0`` are fine.
    ``valid`` is a 0/1 mask or non-negative per-pixel weights (e.g. a chip's sampling weight: every
    term then becomes a weighted mean). When ``zone`` is given and ``num_zones`` is None it becomes
    max valid zone id + 1.
    """
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        got = logits.dtype if torch.is_tensor(logits) else type(logits).__name__
        raise LossInputError(f"logits must be a floating-point tensor, got {got}; pass the raw model output.")
    if logits.dim() == 4 and logits.shape[1] == 1:
        pix = (logits.shape[0], *logits.shape[2:])
    elif logits.dim() == 3:
        pix = tuple(logits.shape)
    else:
        raise LossInputError(f"logits has shape {tuple(logits.shape)}; expected (N, 1, H, W) or (N, H, W).")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    v = _pixels("valid", valid, logits, pix)
    mask = v.ne(0)
    w = torch.where(mask, v.to(dtype), 0.0)
    z = torch.where(mask, logits.reshape(-1).to(dtype), 0.0)  # masked grads are exactly 0
    y = torch.where(mask, _pixels("label", label, logits, pix).to(dtype), 0.0)
    checks = {"label": ~((y >= 0) & (y <= 1)), "valid": ~(w >= 0)}
    e = g = None
    if eco is not None:
        e = torch.where(mask, _pixels("eco", eco, logits, pix).to(dtype), 0.0)
        checks["eco"] = ~(e >= 0)
    if zone is not None:
        g = _pixels("zone", zone, logits, pix)
        if g.dtype.is_floating_point or g.dtype.is_complex or g.dtype == torch.bool:
            raise LossInputError(f"zone has dtype {g.dtype}; zone ids must be an integer dtype (e.g. zone.long()).")
        g = torch.where(mask, g.to(torch.int64), 0)
        checks["zone"] = g < 0
    flags = [c.any() for c in checks.values()] + ([g.max()] if g is not None and g.numel() else [])
    flags = dict(zip([*checks, "zmax"], torch.stack([f.to(torch.int64) for f in flags]).tolist()))  # one sync
    if flags["valid"]:
        raise LossInputError("valid has negative or NaN values; give a 0/1 mask or non-negative per-pixel "
                             "weights (0 = ignored).")
    if flags["label"]:
        raise LossInputError("label has values outside [0, 1] at valid pixels; labels must be 0/1 "
                             "(mark nodata pixels with valid=0 instead of a code such as 255).")
    if flags.get("eco"):
        raise LossInputError(f"eco has negative or NaN weights at valid pixels (min {e.min().item():g}); "
                             "ecological weights must be >= 0: clip them or mark those pixels invalid.")
    if flags.get("zone"):
        raise LossInputError(f"zone has negative ids at valid pixels (min {g.min().item()}); zone ids must be "
                             ">= 0, with 0 meaning outside every zone.")
    if g is not None:
        zmax = flags.get("zmax", 0)
        if num_zones is None:
            num_zones = zmax + 1
        elif zmax >= num_zones:
            raise LossInputError(f"zone has id {zmax} at a valid pixel but num_zones={num_zones}; "
                                 f"pass num_zones >= {zmax + 1} (max zone id + 1).")
    return LossInputs(z, y, w, e, g, num_zones)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (values * valid).sum() / valid.sum().clamp_min(1)  # 0 with grad when nothing is valid


def masked_bce_checked(x: LossInputs, pos_weight=None, focal_gamma=None) -> torch.Tensor:
    z, y = x.logits, x.label
    pos = y if pos_weight is None else y * float(pos_weight)
    loss = (1 - y) * F.softplus(z) + pos * F.softplus(-z)  # == BCEWithLogits(pos_weight)
    if focal_gamma:  # (1 - p_t)^γ = exp(γ·logsigmoid(±z)): finite value and grad everywhere
        loss = loss * torch.exp(focal_gamma * F.logsigmoid(z * (1 - 2 * y)))
    return _masked_mean(loss, x.valid)


def masked_bce(logits, label, valid, pos_weight=None, focal_gamma=None) -> torch.Tensor:
    """L_acc = Σ m·BCE(z, y) / Σ m, optionally pos-weighted and/or focal ((1-p_t)^γ·BCE)."""
    check_options(pos_weight=pos_weight, focal_gamma=focal_gamma)
    with no_autocast(logits):
        return masked_bce_checked(check_inputs(logits, label, valid), pos_weight, focal_gamma)


def eco_false_negative_checked(x: LossInputs, form: str = "log") -> torch.Tensor:
    miss = F.softplus(-x.logits) if form == "log" else torch.sigmoid(-x.logits)  # -log p | 1 - p
    return _masked_mean(x.label * x.eco * miss, x.valid)


def eco_false_negative(logits, label, valid, eco, form: str = "log") -> torch.Tensor:
    """L_eco = Σ m·y·e·(-log p) / Σ m ("log") or with (1 - p) ("linear"); negatives add 0."""
    check_options(eco_form=form)
    with no_autocast(logits):
        return eco_false_negative_checked(check_inputs(logits, label, valid, eco=eco), form)


def zone_means(prob, valid, zone, num_zones: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-zone ``sums[g] = Σ_{zone=g} valid·prob`` and ``counts[g] = Σ_{zone=g} valid``.

    Low level: expects flat-compatible tensors, zone ids in [0, num_zones). ``sums / counts``
    are the zone means; ``counts`` carry no gradient.
    """
    w = valid.reshape(-1).to(prob.dtype)
    g = zone.reshape(-1).long()
    sums = prob.new_zeros(num_zones).index_add(0, g, prob.reshape(-1) * w)
    return sums, w.new_zeros(num_zones).index_add(0, g, w.detach())


def zone_stats_checked(x: LossInputs, kind: str = "variance"):
    """(sums, counts, pixels) per zone: rate = sums / counts, qualification on pixels."""
    if kind == "fnr_parity":  # FNR_g = Σ m·y·(1-p) / Σ m·y
        sums, counts = zone_means(torch.sigmoid(-x.logits), x.valid * x.label, x.zone, x.num_zones)
        return sums, counts, zone_means(x.valid, x.valid, x.zone, x.num_zones)[1]
    sums, counts = zone_means(torch.sigmoid(x.logits), x.valid, x.zone, x.num_zones)
    return sums, counts, counts


def penalty_from_zone_stats(sums, counts, pixels, kind: str = "variance", min_zone_pixels: int = 50):
    """Spread of ``sums / counts`` over zones g >= 1 with pixels >= min_zone_pixels and counts > 0.

    Population variance ("variance", "fnr_parity") or max - min ("range"); 0 with < 2 zones.
    """
    ids = torch.arange(sums.numel(), device=sums.device)
    q = (ids >= 1) & (pixels >= min_zone_pixels) & (counts > 0)
    rate = torch.where(q, sums, 0.0) / torch.where(q, counts, 1.0)
    qf = q.to(rate.dtype)
    n = qf.sum()
    if kind == "range":
        pen = torch.where(q, rate, -1.0).amax() - torch.where(q, rate, 2.0).amin()
    else:
        mean = (qf * rate).sum() / n.clamp_min(1)
        pen = (qf * (rate - mean) ** 2).sum() / n.clamp_min(1)
    return torch.where(n >= 2, pen, torch.zeros_like(pen))


def fairness_penalty(logits, label, valid, zone, kind: str = "variance", min_zone_pixels: int = 50,
                     num_zones: int | None = None) -> torch.Tensor:
    """L_fair of one batch in one process (no EMA, no all-reduce; see ZoneFairnessLoss)."""
    check_options(fairness=kind, min_zone_pixels=min_zone_pixels, num_zones=num_zones)
    with no_autocast(logits):
        x = check_inputs(logits, label, valid, zone=zone, num_zones=num_zones)
        return penalty_from_zone_stats(*zone_stats_checked(x, kind), kind, min_zone_pixels)
