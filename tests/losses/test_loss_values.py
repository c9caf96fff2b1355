"""Hand-computed values on 1×1×2×2 tensors, and float64 gradchecks of every term."""

import math

import pytest
import torch

from losses import CompositeLoss, ZoneFairnessLoss, eco_false_negative, fairness_penalty, masked_bce


def t(*rows, dtype=torch.float64):
    return torch.tensor([list(rows)], dtype=dtype).reshape(1, 1, 2, 2)


def sp(x):  # softplus = log(1 + exp(x))
    return math.log1p(math.exp(x))


def sig(x):
    return 1 / (1 + math.exp(-x))


Z = (0.0, 2.0, -1.0, 3.0)  # logits, row-major over the 2×2 tile
Y = (1, 0, 1, 0)
M = (1, 1, 1, 0)  # last pixel masked
E = (2.0, 5.0, 0.5, 7.0)
P = [sig(z) for z in Z]

BCE_CASES = [
    ("plain", {}, (sp(-0.0) + sp(2.0) + sp(1.0)) / 3),
    ("pos_weight", {"pos_weight": 3.0}, (3 * sp(-0.0) + sp(2.0) + 3 * sp(1.0)) / 3),
    ("focal", {"focal_gamma": 2.0},
     ((1 - P[0]) ** 2 * sp(-0.0) + P[1] ** 2 * sp(2.0) + (1 - P[2]) ** 2 * sp(1.0)) / 3),
    ("focal+pos_weight", {"focal_gamma": 1.0, "pos_weight": 2.0},
     (2 * (1 - P[0]) * sp(-0.0) + P[1] * sp(2.0) + 2 * (1 - P[2]) * sp(1.0)) / 3),
]


@pytest.mark.parametrize("name, kwargs, expected", BCE_CASES, ids=[c[0] for c in BCE_CASES])
def test_masked_bce_values(name, kwargs, expected):
    got = masked_bce(t(*Z), t(*Y), t(*M), **kwargs)
    assert got.item() == pytest.approx(expected, rel=1e-12)


ECO_CASES = [
    ("log", (2.0 * sp(-0.0) + 0.5 * sp(1.0)) / 3),  # only valid positives: pixels 0 and 2
    ("linear", (2.0 * (1 - P[0]) + 0.5 * (1 - P[2])) / 3),
]


@pytest.mark.parametrize("form, expected", ECO_CASES, ids=[c[0] for c in ECO_CASES])
def test_eco_values(form, expected):
    got = eco_false_negative(t(*Z), t(*Y), t(*M), t(*E), form=form)
    assert got.item() == pytest.approx(expected, rel=1e-12)


mu1, mu2 = (P[0] + P[1]) / 2, (P[2] + P[3]) / 2
fnr1, fnr2 = 1 - P[0], ((1 - P[2]) + (1 - P[3])) / 2  # zone 1 has one positive (pixel 0)
FAIR_CASES = [
    # (id, zones, label, valid, kind, min_zone_pixels, expected)
    ("variance", (1, 1, 2, 2), Y, (1, 1, 1, 1), "variance", 1, ((mu1 - mu2) / 2) ** 2),
    ("range", (1, 1, 2, 2), Y, (1, 1, 1, 1), "range", 1, abs(mu1 - mu2)),
    ("fnr_parity", (1, 1, 2, 2), (1, 0, 1, 1), (1, 1, 1, 1), "fnr_parity", 1, ((fnr1 - fnr2) / 2) ** 2),
    ("zone0_ignored", (0, 1, 2, 2), Y, (1, 1, 1, 1), "variance", 1, ((P[1] - mu2) / 2) ** 2),
    ("masked_shrinks_zone", (1, 1, 2, 2), Y, (1, 1, 1, 0), "variance", 1, ((mu1 - P[2]) / 2) ** 2),
    ("too_small_zone", (1, 1, 2, 2), Y, (1, 1, 1, 0), "variance", 2, 0.0),
    ("one_zone", (1, 1, 1, 1), Y, (1, 1, 1, 1), "variance", 1, 0.0),
    ("fnr_no_positive_zone", (1, 1, 2, 2), (0, 0, 1, 1), (1, 1, 1, 1), "fnr_parity", 1, 0.0),
    ("three_zones", (1, 2, 3, 3), Y, (1, 1, 1, 1), "variance", 1,
     sum((v - (P[0] + P[1] + mu2) / 3) ** 2 for v in (P[0], P[1], mu2)) / 3),
]


@pytest.mark.parametrize("name, zones, label, valid, kind, mzp, expected", FAIR_CASES,
                         ids=[c[0] for c in FAIR_CASES])
def test_fairness_values(name, zones, label, valid, kind, mzp, expected):
    zone = t(*zones, dtype=torch.int64)
    got = fairness_penalty(t(*Z), t(*label), t(*valid), zone, kind=kind, min_zone_pixels=mzp)
    assert got.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_composite_total_and_unweighted_parts():
    zone = t(1, 1, 2, 2, dtype=torch.int64)
    loss = CompositeLoss(lambda_eco=0.5, lambda_fair=3.0, min_zone_pixels=1)
    out = loss(t(*Z, dtype=torch.float32), t(*Y), t(*M), t(*E), zone)
    acc, eco, fair = BCE_CASES[0][2], ECO_CASES[0][1], ((mu1 - P[2]) / 2) ** 2
    assert set(out.parts) == {"accuracy", "eco", "fairness"}
    assert all(v.dtype == torch.float32 and not v.requires_grad and v.dim() == 0 for v in out.parts.values())
    assert out.parts["accuracy"].item() == pytest.approx(acc, rel=1e-6)
    assert out.parts["eco"].item() == pytest.approx(eco, rel=1e-6)
    assert out.parts["fairness"].item() == pytest.approx(fair, rel=1e-5)
    assert out.total.item() == pytest.approx(acc + 0.5 * eco + 3.0 * fair, rel=1e-6)
    total, parts = out  # NamedTuple unpacking for the training loop
    assert total.dim() == 0


# ---- gradchecks (float64) -------------------------------------------------------------

def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = (torch.rand(2, 1, 4, 4, generator=g) < 0.5).double()
    m = (torch.rand(2, 1, 4, 4, generator=g) < 0.8).double()
    e = torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64) * 3
    zone = torch.arange(32).reshape(2, 1, 4, 4) % 4  # zones 1..3 qualify with min 2
    return z, y, m, e, zone


@pytest.mark.parametrize("kwargs", [{}, {"pos_weight": 2.5}, {"focal_gamma": 2.0}, {"focal_gamma": 0.5}])
def test_gradcheck_bce(kwargs):
    z, y, m, _, _ = _batch()
    assert torch.autograd.gradcheck(lambda z: masked_bce(z, y, m, **kwargs), (z,))


@pytest.mark.parametrize("form", ["log", "linear"])
def test_gradcheck_eco(form):
    z, y, m, e, _ = _batch(1)
    assert torch.autograd.gradcheck(lambda z: eco_false_negative(z, y, m, e, form=form), (z,))


@pytest.mark.parametrize("kind", ["variance", "range", "fnr_parity"])
def test_gradcheck_fairness(kind):
    z, y, m, _, zone = _batch(2)
    y[:, :, 0, :] = 1  # every zone has a valid positive
    m[:, :, 0, :] = 1
    assert fairness_penalty(z, y, m, zone, kind=kind, min_zone_pixels=2).item() > 0
    assert torch.autograd.gradcheck(lambda z: fairness_penalty(z, y, m, zone, kind=kind, min_zone_pixels=2), (z,))


def test_gradcheck_fairness_with_ema_and_composite():
    z, y, m, e, zone = _batch(3)
    ema = ZoneFairnessLoss("variance", min_zone_pixels=2, ema_momentum=0.7, num_zones=4)
    ema(z.detach() + 1, y, m, zone)  # fill the running sums
    running = ema.running.clone()

    def fair(z):
        ema.running = running.clone()  # same buffers for every gradcheck evaluation
        return ema(z, y, m, zone)

    assert torch.autograd.gradcheck(fair, (z,))
    comp = CompositeLoss(lambda_eco=0.7, lambda_fair=2.0, min_zone_pixels=2, focal_gamma=1.5)
    assert torch.autograd.gradcheck(lambda z: comp(z, y, m, e, zone).total, (z,))


def test_valid_as_weights_is_a_weighted_mean():
    # weight 2 on pixel 0 counts it twice: the same as the mean over (p0, p0, p1, p2)
    w = t(2.0, 1.0, 1.0, 0.0)
    want = (2 * sp(-0.0) + sp(2.0) + sp(1.0)) / 4
    assert masked_bce(t(*Z), t(*Y), w).item() == pytest.approx(want, rel=1e-12)
    want_eco = (2 * 2.0 * sp(-0.0) + 0.5 * sp(1.0)) / 4
    assert eco_false_negative(t(*Z), t(*Y), w, t(*E)).item() == pytest.approx(want_eco, rel=1e-12)
    # a 0/1 mask is the unweighted case
    assert masked_bce(t(*Z), t(*Y), t(*M)).item() == pytest.approx((sp(-0.0) + sp(2.0) + sp(1.0)) / 3)


def test_negative_or_nan_weights_are_refused():
    from geo_risk_errors import LossInputError

    for bad in (-1.0, float("nan")):
        with pytest.raises(LossInputError, match="valid has negative or NaN values"):
            masked_bce(t(*Z), t(*Y), t(bad, 1.0, 1.0, 0.0))
