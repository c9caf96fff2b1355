"""Time one training step (forward + backward + Adam) with the composite loss vs plain masked BCE.

Usage: python bench/bench_loss_step.py [--steps 15] [--warmup 3] [--threads 2]

Model: segmentation_models_pytorch.Unet(resnet18, no weights, 10 bands, 1 class); batch of
8 random 10×128×128 chips with random labels, valid mask, eco weights and 33 blocky zones.
The two variants run interleaved (alternating order) on identical model copies, so drift
and noise hit both. Prints the median ms per step and composite/BCE (target <= 1.05).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from losses import CompositeLoss, MaskedBCELoss

ZONES = 33


def make_batch(n=8, bands=10, size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, bands, size, size, generator=g)
    label = torch.rand(n, 1, size, size, generator=g) < 0.2
    valid = torch.rand(n, 1, size, size, generator=g) < 0.9
    eco = torch.rand(n, 1, size, size, generator=g) * 3
    coarse = torch.randint(0, ZONES + 1, (n, 1, 8, 8), generator=g).float()  # 0 = outside, 1..33 zones
    zone = F.interpolate(coarse, size=(size, size), mode="nearest").long()
    return x, label, valid, eco, zone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, label, valid, eco, zone = make_batch()
    base = smp.Unet(encoder_name="resnet18", encoder_weights=None, in_channels=10, classes=1)

    composite = CompositeLoss(lambda_eco=1.0, lambda_fair=1.0, num_zones=ZONES + 1)
    bce = MaskedBCELoss()
    variants = {
        "composite": (lambda out: composite(out, label, valid, eco, zone).total),
        "masked_bce": (lambda out: bce(out, label, valid)),
    }
    state = {}
    for name in variants:
        model = copy.deepcopy(base).train()
        state[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    step_ms = {name: [] for name in variants}
    loss_ms = {name: [] for name in variants}

    def step(name):
        model, opt = state[name]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(x)
        t1 = time.perf_counter()
        loss = variants[name](out)
        t2 = time.perf_counter()
        loss.backward()
        opt.step()
        t3 = time.perf_counter()
        return (t3 - t0) * 1e3, (t2 - t1) * 1e3

    names = list(variants)
    for i in range(args.warmup + args.steps):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate order
            total, fwd_loss = step(name)
            if i >= args.warmup:
                step_ms[name].append(total)
                loss_ms[name].append(fwd_loss)

    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, batch 8x10x128x128, "
          f"{ZONES} zones, warmup={args.warmup}, timed steps={args.steps} each (interleaved)")
    for name in names:
        print(f"{name:>11}: median step {statistics.median(step_ms[name]):8.1f} ms "
              f"(min {min(step_ms[name]):.1f}, max {max(step_ms[name]):.1f}); "
              f"loss forward {statistics.median(loss_ms[name]):.2f} ms")
    ratio = statistics.median(step_ms["composite"]) / statistics.median(step_ms["masked_bce"])
    print(f"ratio composite/masked_bce: {ratio:.3f}x (target <= 1.05x)")

    # Loss alone (forward + backward on a leaf logits tensor): far less noisy than the step.
    logits = torch.randn(8, 1, 128, 128, requires_grad=True)
    alone = {name: [] for name in names}
    for i in range(5 + 4 * args.steps):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            variants[name](logits).backward()
            if i >= 5:
                alone[name].append((time.perf_counter() - t0) * 1e3)
    extra = statistics.median(alone["composite"]) - statistics.median(alone["masked_bce"])
    print(f"loss alone fwd+bwd: composite {statistics.median(alone['composite']):.2f} ms, "
          f"masked_bce {statistics.median(alone['masked_bce']):.2f} ms; extra {extra:.2f} ms = "
          f"{100 * extra / statistics.median(step_ms['masked_bce']):.2f}% of the median masked_bce step")


if __name__ == "__main__":
    main()
