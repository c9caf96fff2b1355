"""The trainer's overheads and its thread policy, in one run (issue 9; results in bench/README.md).

Usage: python bench/bench_train.py [--chips RUN/tiles/chips.zarr] [--batches 12] [--steps 4]

1. Epoch wall time against pure model compute: ``--batches`` training steps read through the
   trainer's DataLoader (Zarr reads, normalisation, augmentation, collation) against the same
   batches held in memory (target ≤ 1.10).
2. Step time with one core kept busy by another process against idle (target ≤ 2.2× on 2 cores),
   each with OMP_WAIT_POLICY=PASSIVE (geo-risk's default) and without it (torch imported before
   geo_risk, the variable unset: OpenMP's default spin-then-sleep). Each case runs in a fresh
   process, since OpenMP reads the variable when torch loads; threads = the available cores.
3. Chips/s of training steps and of validation (forward only), with and without channels_last.

Model: the demo's (segmentation-models-pytorch Unet, resnet18, no weights) on the store's bands,
batch ``--batch-size`` (8) chips, the composite loss with the default weights, AdamW; CPU.
Default chip store: the demo run's (/work/exp/final/tiles/chips.zarr) if present, else the
synthetic region's (written to a temporary folder; 32 px chips, so only a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHIPS = Path("/work/exp/final/tiles/chips.zarr")


def _setup(chips: Path, batch_size: int, channels_last: bool = True):
    import torch
    from torch.utils.data import DataLoader

    from geo_risk.config import LossConfig, ModelConfig
    from geo_risk.data import ChipDataset
    from geo_risk.model import build_model
    from geo_risk.train import EpochSampler
    from losses import CompositeLoss

    torch.manual_seed(0)
    ds = ChipDataset(chips, "train", augment=True, seed=0)
    val = ChipDataset(chips, "val")
    sampler = EpochSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=True)
    val_loader = DataLoader(val, batch_size=batch_size)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(ModelConfig(), len(ds.bands)).to(memory_format=fmt)
    lc = LossConfig()
    crit = CompositeLoss(lambda_eco=lc.lambda_eco, lambda_fair=lc.lambda_fair, min_zone_pixels=lc.min_zone_pixels,
                         num_zones=ds.num_zones)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    return ds, loader, val_loader, model, crit, opt, fmt


def _step(model, crit, opt, batch, fmt):
    image, label, valid, eco, zone = batch
    res = crit(model(image.contiguous(memory_format=fmt)), label, valid, eco, zone)
    opt.zero_grad(set_to_none=True)
    res.total.backward()
    opt.step()


def epoch_vs_compute(chips: Path, batch_size: int, batches: int) -> dict:
    """Steps through the DataLoader vs the same batches from memory (interleaved halves, 1 warm-up)."""
    import itertools

    ds, loader, _, model, crit, opt, fmt = _setup(chips, batch_size)
    model.train()
    _step(model, crit, opt, next(iter(loader)), fmt)  # warm-up
    t = time.perf_counter()
    held = list(itertools.islice(iter(loader), batches))
    read_s = time.perf_counter() - t
    loop_s = compute_s = 0.0
    for half in (0, 1):  # loader then memory, memory then loader: drift hits both
        order = ("loader", "memory") if half == 0 else ("memory", "loader")
        for what in order:
            t = time.perf_counter()
            if what == "loader":
                for batch in itertools.islice(iter(loader), batches // 2):
                    _step(model, crit, opt, batch, fmt)
                loop_s += time.perf_counter() - t
            else:
                for batch in held[:batches // 2]:
                    _step(model, crit, opt, batch, fmt)
                compute_s += time.perf_counter() - t
    n = 2 * (batches // 2)
    return {"batches": n, "loader_s_per_step": loop_s / n, "memory_s_per_step": compute_s / n,
            "ratio": loop_s / compute_s, "read_s_per_batch_alone": read_s / len(held)}


def chips_per_s(chips: Path, batch_size: int, batches: int) -> dict:
    import itertools

    import torch

    out = {}
    for cl in (True, False):
        _, loader, val_loader, model, crit, opt, fmt = _setup(chips, batch_size, channels_last=cl)
        train_b = list(itertools.islice(iter(loader), batches))
        val_b = list(itertools.islice(iter(val_loader), batches))
        model.train()
        _step(model, crit, opt, train_b[0], fmt)
        t = time.perf_counter()
        for b in train_b:
            _step(model, crit, opt, b, fmt)
        train_cps = sum(len(b[0]) for b in train_b) / (time.perf_counter() - t)
        model.eval()
        with torch.no_grad():
            model(val_b[0][0].contiguous(memory_format=fmt))
            t = time.perf_counter()
            for b in val_b:
                model(b[0].contiguous(memory_format=fmt))
            val_cps = sum(len(b[0]) for b in val_b) / (time.perf_counter() - t)
        out["channels_last" if cl else "contiguous"] = {"train_chips_per_s": train_cps, "val_chips_per_s": val_cps}
    return out


def child_steps(chips: Path, batch_size: int, steps: int) -> dict:
    """In a fresh process: median seconds per training step (memory batches), threads = cores."""
    import torch  # noqa: F401 - imported first on purpose: geo_risk's setdefault then comes too late

    from geo_risk.train import threads

    n, _ = threads.configure(None, None, torch.device("cpu"))
    _, loader, _, model, crit, opt, fmt = _setup(chips, batch_size)
    batch = next(iter(loader))
    model.train()
    _step(model, crit, opt, batch, fmt)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        _step(model, crit, opt, batch, fmt)
        times.append(time.perf_counter() - t)
    return {"threads": n, "s_per_step": statistics.median(times)}


def busy_core_cases(chips: Path, batch_size: int, steps: int) -> dict:
    out = {}
    for policy in ("PASSIVE", None):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        for load in ("idle", "one core busy"):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None
            try:
                done = subprocess.run([sys.executable, __file__, "--child", "--chips", str(chips), "--batch-size",
                                       str(batch_size), "--steps", str(steps)], env={**env, "PYTHONPATH": str(ROOT)},
                                      capture_output=True, text=True, timeout=1800)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            if done.returncode:
                raise SystemExit(done.stderr[-2000:])
            out[(policy or "unset", load)] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=Path, default=None, help="a chip store (default: the demo run's, or synthetic)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=12, help="training steps timed per variant in parts 1 and 3")
    ap.add_argument("--steps", type=int, default=4, help="steps timed per case in part 2 (median)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child_steps(a.chips, a.batch_size, a.steps)))
        return
    chips = a.chips
    if chips is None:
        if DEMO_CHIPS.exists():
            chips = DEMO_CHIPS
        else:
            chips = _synthetic_chips(Path(tempfile.mkdtemp(prefix="bench-train-")))
    import geo_risk  # noqa: F401,I001 - first: the thread policy, as the CLI has it
    import torch

    from geo_risk.train import threads

    n, _ = threads.configure(None, None, torch.device("cpu"))
    print(f"chip store {chips}; batch {a.batch_size}; torch {torch.__version__}, {n} threads, "
          f"{threads.available_cores()} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")

    e = epoch_vs_compute(chips, a.batch_size, a.batches)
    print(f"\n1. epoch wall time vs pure model compute ({e['batches']} steps each): "
          f"{e['loader_s_per_step']:.3f} s/step through the DataLoader, {e['memory_s_per_step']:.3f} s/step from "
          f"memory → ratio {e['ratio']:.3f} (target ≤ 1.10); reading alone {e['read_s_per_batch_alone']*1000:.0f} "
          f"ms/batch")

    cases = busy_core_cases(chips, a.batch_size, a.steps)
    print("\n2. step time, one core kept busy by another process vs idle (fresh process per case):")
    print("| OMP_WAIT_POLICY | threads | idle s/step | one core busy s/step | busy / idle (target ≤ 2.2) |")
    print("|---|---|---|---|---|")
    for policy in ("PASSIVE", "unset"):
        idle, busy = cases[(policy, "idle")], cases[(policy, "one core busy")]
        print(f"| {policy} | {idle['threads']} | {idle['s_per_step']:.3f} | {busy['s_per_step']:.3f} | "
              f"{busy['s_per_step'] / idle['s_per_step']:.2f}× |")

    c = chips_per_s(chips, a.batch_size, a.batches)
    print("\n3. chips/s (CPU, batches from memory):")
    print("| memory format | train chips/s | validation chips/s |")
    print("|---|---|---|")
    for k, v in c.items():
        print(f"| {k} | {v['train_chips_per_s']:.1f} | {v['val_chips_per_s']:.1f} |")


def _synthetic_chips(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from geo_risk.config import load_config
    from geo_risk.tiling import run_tile
    from tests.data.synthetic.data import make_region

    from geo_risk.paths import RunPaths

    cfg = load_config(make_region(folder / "region"), {"output_dir": str(folder / "run")})
    run_tile(cfg)
    return RunPaths(cfg.run_dir).chips


if __name__ == "__main__":
    main()
