"""Numerical stability, dtypes, autocast, empty batches and input layouts."""

import pytest
import torch

from losses import CompositeLoss

KINDS = ["variance", "range", "fnr_parity"]


def batch(seed=0, n=2, h=8, w=8, zones=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 1, h, w)
    return (torch.randn(shape, generator=g).to(dtype), torch.rand(shape, generator=g) < 0.4,
            torch.rand(shape, generator=g) < 0.85, torch.rand(shape, generator=g) * 3,
            torch.randint(0, zones + 1, shape, generator=g))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("opts", [{}, {"pos_weight": 5.0}, {"focal_gamma": 2.0}, {"focal_gamma": 0.5},
                                  {"eco_form": "linear"}, {"ema_momentum": 0.9}])
def test_extreme_logits_give_finite_values_and_grads(kind, opts):
    _, y, m, e, zone = batch()
    z = torch.where(torch.rand(y.shape, generator=torch.Generator().manual_seed(1)) < 0.5, 100.0, -100.0)
    z = z.requires_grad_()
    loss = CompositeLoss(min_zone_pixels=2, fairness=kind, **opts)
    for _ in range(2):  # second call also reads EMA buffers
        out = loss(z, y, m, e, zone)
        out.total.backward()
        assert torch.isfinite(out.total) and all(torch.isfinite(v) for v in out.parts.values())
        assert torch.isfinite(z.grad).all()
        z.grad = None


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_autocast_close_to_float32(kind):
    z32, y, m, e, zone = batch(2)
    loss = CompositeLoss(min_zone_pixels=3, fairness=kind)
    ref = loss(z32, y, m, e, zone)
    z16 = z32.to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(z16, y, m, e, zone)
    assert out.total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in out.parts.values())
    assert out.total.item() == pytest.approx(ref.total.item(), rel=2e-2)
    for key in ref.parts:
        assert out.parts[key].item() == pytest.approx(ref.parts[key].item(), rel=5e-2, abs=1e-4)
    out.total.backward()
    assert z16.grad.dtype == torch.bfloat16 and torch.isfinite(z16.grad.float()).all()


def test_float16_logits_give_float32_result():
    z, y, m, e, zone = batch(3)
    out = CompositeLoss(min_zone_pixels=3)(z.half(), y, m, e, zone)
    assert out.total.dtype == torch.float32


@pytest.mark.parametrize("kind", KINDS)
def test_no_valid_pixel_gives_zero_with_grad(kind):
    z, y, _, e, zone = batch(4)
    z.requires_grad_()
    out = CompositeLoss(min_zone_pixels=1, fairness=kind)(z, y, torch.zeros_like(y), e, zone)
    assert out.total.item() == 0.0 and out.total.requires_grad
    out.total.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_layouts_and_dtypes_agree():
    z, y, m, e, zone = batch(5)
    loss = CompositeLoss(min_zone_pixels=2)
    ref = loss(z, y, m, e, zone)
    variants = [
        (z, y.squeeze(1), m.squeeze(1), e.squeeze(1), zone.squeeze(1)),  # (N, H, W) targets
        (z.squeeze(1), y, m, e, zone),  # (N, H, W) logits
        (z, y.float(), m.to(torch.uint8), e.double(), zone.to(torch.int16)),
        (z, y.long(), m.float(), e, zone.to(torch.uint8)),
    ]
    for args in variants:
        out = loss(*args)
        assert out.total.item() == pytest.approx(ref.total.item(), rel=1e-6)


def test_given_num_zones_matches_derived():
    z, y, m, e, zone = batch(6, zones=4)
    a = CompositeLoss(min_zone_pixels=2)(z, y, m, e, zone)
    b = CompositeLoss(min_zone_pixels=2, num_zones=40)(z, y, m, e, zone)
    assert torch.equal(a.total, b.total)


def test_zero_lambda_terms_are_logged_but_carry_no_grad():
    z, y, m, e, zone = batch(7)
    z.requires_grad_()
    out = CompositeLoss(lambda_eco=0, lambda_fair=0, min_zone_pixels=2)(z, y, m, e, zone)
    assert out.parts["eco"] > 0 and out.parts["fairness"] > 0
    assert out.total.item() == pytest.approx(out.parts["accuracy"].item())
