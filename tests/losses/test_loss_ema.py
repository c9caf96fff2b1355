"""EMA smoothing of the fairness term: formula, gradient path, modes and state_dict."""

import pytest
import torch

from losses import ZoneFairnessLoss
from losses.functional import check_inputs, penalty_from_zone_stats, zone_means


def batch(seed, zones=3):
    g = torch.Generator().manual_seed(seed)
    shape = (1, 1, 6, 6)
    return (torch.randn(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g) < 0.5,
            torch.rand(shape, generator=g) < 0.9, torch.randint(0, zones + 1, shape, generator=g))


def stats(z, m, zone, k):
    x = check_inputs(z, torch.zeros_like(m), m, zone=zone, num_zones=k)
    return zone_means(torch.sigmoid(x.logits), x.valid, x.zone, k)


def test_ema_formula_and_gradient_through_current_batch_only():
    beta, k = 0.8, 4
    loss = ZoneFairnessLoss("variance", min_zone_pixels=12, ema_momentum=beta, num_zones=k)
    z1, y1, m1, g1 = batch(0)
    z2, y2, m2, g2 = batch(1)
    loss(z1, y1, m1, g1)
    z2 = z2.requires_grad_()
    got = loss(z2, y2, m2, g2)
    s1, c1 = stats(z1, m1, g1, k)
    s2, c2 = stats(z2, m2, g2, k)
    # μ_g = (S_batch + β·R_S) / (C_batch + β·R_C); qualification on the smoothed counts
    expected = penalty_from_zone_stats(s2 + beta * s1, c2 + beta * c1, c2 + beta * c1, "variance", 12)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)  # buffers are float32
    assert penalty_from_zone_stats(s2, c2, c2, "variance", 12).item() == 0.0  # batch alone too small
    (g_got,) = torch.autograd.grad(got, z2)
    (g_exp,) = torch.autograd.grad(expected, z2)
    assert torch.allclose(g_got, g_exp, rtol=1e-5, atol=1e-9)
    assert torch.allclose(loss.running[0].double(), (s2 + beta * s1).detach())


def test_eval_mode_neither_reads_nor_updates_buffers():
    loss = ZoneFairnessLoss("variance", min_zone_pixels=1, ema_momentum=0.5, num_zones=4)
    z, y, m, g = batch(2)
    loss(z, y, m, g)
    running = loss.running.clone()
    loss.eval()
    z2, y2, m2, g2 = batch(3)
    plain = ZoneFairnessLoss("variance", min_zone_pixels=1)(z2, y2, m2, g2)
    assert loss(z2, y2, m2, g2).item() == pytest.approx(plain.item(), rel=1e-12)
    assert torch.equal(loss.running, running)


def test_buffers_grow_without_num_zones_and_round_trip_state_dict():
    loss = ZoneFairnessLoss("range", min_zone_pixels=1, ema_momentum=0.9)
    assert loss.running.shape == (3, 0)
    loss(*batch(4, zones=2))
    loss(*batch(5, zones=6))
    assert loss.running.shape == (3, 7)
    fresh = ZoneFairnessLoss("range", min_zone_pixels=1, ema_momentum=0.9)
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.running, loss.running)
    nxt = batch(6, zones=3)
    assert fresh(*nxt).item() == pytest.approx(loss(*nxt).item(), rel=1e-12)


def test_no_buffers_without_ema():
    assert ZoneFairnessLoss().state_dict() == {}
