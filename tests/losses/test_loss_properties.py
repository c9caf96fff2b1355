"""Hypothesis properties of the composite loss and its terms."""

import math

import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from losses import CompositeLoss, ZoneFairnessLoss, eco_false_negative, fairness_penalty

SETTINGS = settings(max_examples=50, deadline=None, database=None)
KINDS = st.sampled_from(["variance", "range", "fnr_parity"])


@st.composite
def batches(draw, dtype=torch.float32, valid_rate=None, min_side=1):
    """Random small batch; tensors are built from a drawn seed with torch's generator."""
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(min_side, 6)), draw(st.integers(min_side, 6))
    zones = draw(st.integers(1, 5))
    scale = draw(st.sampled_from([0.5, 3.0, 8.0]))
    valid_rate = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])) if valid_rate is None else valid_rate
    pos_rate = draw(st.sampled_from([0.0, 0.3, 1.0]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    shape = (n, 1, h, w)
    return {
        "logits": (torch.randn(shape, generator=g) * scale).to(dtype),
        "label": (torch.rand(shape, generator=g) < pos_rate).to(torch.uint8),
        "valid": torch.rand(shape, generator=g) < valid_rate,
        "eco": torch.rand(shape, generator=g) * 4,
        "zone": torch.randint(0, zones + 1, shape, generator=g),
    }


def run(loss, b, logits=None):
    z = (b["logits"] if logits is None else logits).clone().requires_grad_()
    out = loss(z, b["label"], b["valid"], b["eco"], b["zone"])
    out.total.backward()
    return out, z.grad


def close(a, b, tol=1e-5):
    return torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


@SETTINGS
@given(batches(), st.sampled_from([None, 0.5, 4.0]))
def test_zero_lambdas_equal_plain_masked_bce(b, pos_weight):
    out, grad = run(CompositeLoss(lambda_eco=0, lambda_fair=0, min_zone_pixels=1, pos_weight=pos_weight), b)
    z = b["logits"].clone().requires_grad_()
    m = b["valid"]
    pw = None if pos_weight is None else torch.tensor(pos_weight)
    ref = F.binary_cross_entropy_with_logits(z[m], b["label"][m].float(), pos_weight=pw) if m.any() else z.sum() * 0
    ref.backward()
    assert close(out.total, ref) and close(out.parts["accuracy"], ref)
    assert close(grad, z.grad)


@SETTINGS
@given(batches(), st.sampled_from(["log", "linear"]), st.booleans())
def test_eco_zero_without_positives_or_weights(b, form, no_positives):
    label, eco = b["label"], b["eco"]
    if no_positives:
        label = torch.zeros_like(label)
    else:
        eco = torch.zeros_like(eco)
    assert eco_false_negative(b["logits"], label, b["valid"], eco, form=form).item() == 0.0


@SETTINGS
@given(st.integers(1, 6), st.integers(2, 5), KINDS, st.integers(0, 2**31 - 1))
def test_fairness_zero_when_zone_means_equal(k, zones, kind, seed):
    """Every zone holds a permutation of the same k logits (and labels): equal means and FNRs."""
    g = torch.Generator().manual_seed(seed)
    base_z, base_y = torch.randn(k, generator=g) * 3, torch.arange(k) % 2
    order = [torch.randperm(k, generator=g) for _ in range(zones)]
    z = torch.cat([base_z[o] for o in order]).reshape(1, 1, 1, -1)
    y = torch.cat([base_y[o] for o in order]).reshape(z.shape)
    zone = torch.arange(1, zones + 1).repeat_interleave(k).reshape(z.shape)
    pen = fairness_penalty(z, y, torch.ones_like(y), zone, kind=kind, min_zone_pixels=1)
    assert abs(pen.item()) < 1e-6


@SETTINGS
@given(batches(), KINDS, st.integers(0, 2**31 - 1))
def test_invariant_to_zone_relabelling_and_pixel_permutation(b, kind, seed):
    loss = CompositeLoss(min_zone_pixels=2, fairness=kind)
    out, grad = run(loss, b)
    g = torch.Generator().manual_seed(seed)
    k = int(b["zone"].max()) + 1
    relabel = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(k - 1, generator=g)])  # 0 stays 0
    out2, grad2 = run(loss, {**b, "zone": relabel[b["zone"]]})
    assert all(close(out.parts[key], out2.parts[key]) for key in out.parts) and close(out.total, out2.total)
    assert close(grad, grad2)
    perm = torch.randperm(b["logits"].numel(), generator=g)
    shuffled = {key: v.reshape(-1)[perm].reshape(1, 1, 1, -1) for key, v in b.items()}
    out3, grad3 = run(loss, shuffled)
    assert all(close(out.parts[key], out3.parts[key]) for key in out.parts) and close(out.total, out3.total)
    assert close(grad.reshape(-1)[perm], grad3.reshape(-1))


@SETTINGS
@given(batches(), KINDS, st.sampled_from([None, 2.0]), st.integers(0, 2**31 - 1))
def test_masked_pixels_have_no_influence(b, kind, focal_gamma, seed):
    loss = CompositeLoss(min_zone_pixels=2, fairness=kind, focal_gamma=focal_gamma)
    out, grad = run(loss, b)
    g = torch.Generator().manual_seed(seed)
    masked = ~b["valid"]
    junk = torch.tensor([100.0, -100.0, math.nan, math.inf, -math.inf, 0.3])
    noise = junk[torch.randint(0, len(junk), b["logits"].shape, generator=g)]
    changed = {
        "logits": torch.where(masked, noise, b["logits"]),
        "label": torch.where(masked, torch.randint(0, 256, b["label"].shape, generator=g).to(torch.uint8), b["label"]),
        "eco": torch.where(masked, torch.randn(b["eco"].shape, generator=g) * 100, b["eco"]),
        "zone": torch.where(masked, torch.randint(-3, 50, b["zone"].shape, generator=g), b["zone"]),
    }
    out2, grad2 = run(loss, {**b, **changed})
    assert all(torch.equal(out.parts[key], out2.parts[key]) for key in out.parts)
    assert torch.equal(out.total, out2.total)
    assert torch.equal(grad, grad2)  # includes: exactly 0 on masked pixels
    assert not grad[masked].any()


@SETTINGS
@given(batches(dtype=torch.float64, valid_rate=0.9, min_side=3), st.sampled_from([1, 3]))
def test_sgd_step_reduces_fairness_variance(b, min_zone_pixels):
    loss = ZoneFairnessLoss("variance", min_zone_pixels=min_zone_pixels)
    z = b["logits"].clamp(-4, 4).requires_grad_()
    before = loss(z, b["label"], b["valid"], b["zone"])
    assume(before.item() > 1e-10)
    before.backward()
    with torch.no_grad():
        z -= 1.0 * z.grad  # plain SGD, lr = 1
    after = loss(z, b["label"], b["valid"], b["zone"])
    assert after.item() < before.item()
