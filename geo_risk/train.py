"""Stage 2 — train: U-Net on the chip store with the composite loss, then calibrate.

A plain loop rather than a framework: it is short, every loss part is visible, and AMP on CUDA
is two lines. (Lightning Fabric is the planned route once DDP via torchrun lands.)
"""

from __future__ import annotations

import csv
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from geo_risk.artifacts import CheckpointMeta, train_log_columns
from geo_risk.calibrate import fit_temperature
from geo_risk.config import RunConfig, config_to_yaml
from geo_risk.data import ChipDataset
from geo_risk.model import build_model, save_checkpoint
from geo_risk.paths import RunPaths
from geo_risk.plots import plot_learning_curves
from geo_risk_errors import TrainingError
from losses import LOSS_PARTS, CompositeLoss
from tiles.atomic import atomic_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs: int
    temperature: float
    val_auc: float
    val_ap: float
    seconds: float
    chips_per_s: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        log.warning("train.device is 'cuda' but no GPU is visible: using the CPU")
        return torch.device("cpu")
    return torch.device(name)


def make_loss(cfg: RunConfig, num_zones: int) -> CompositeLoss:
    lc = cfg.loss
    return CompositeLoss(
        lambda_eco=lc.lambda_eco, lambda_fair=lc.lambda_fair, min_zone_pixels=lc.min_zone_pixels,
        fairness=lc.fairness, eco_form=lc.eco_form, pos_weight=lc.pos_weight, focal_gamma=lc.focal_gamma,
        ema_momentum=lc.ema_momentum, num_zones=num_zones,
    )


def _to(batch, device):
    return [t.to(device, non_blocking=True) for t in batch]


def run_train(cfg: RunConfig) -> TrainResult:
    """Train, keep the epoch with the lowest validation loss, calibrate, write the checkpoint."""
    tc = cfg.train
    paths = RunPaths(cfg.run_dir)
    seed_everything(tc.seed)
    torch.set_num_threads(tc.num_threads or max(1, os.cpu_count() or 1))
    device = pick_device(tc.device)
    train_ds = ChipDataset(paths.chips, "train", augment=True, seed=tc.seed)
    val_ds = ChipDataset(paths.chips, "val")
    gen = torch.Generator().manual_seed(tc.seed)
    train_dl = DataLoader(train_ds, batch_size=tc.batch_size, shuffle=True, drop_last=len(train_ds) > tc.batch_size,
                          generator=gen, pin_memory=device.type == "cuda")
    val_dl = DataLoader(val_ds, batch_size=tc.batch_size, pin_memory=device.type == "cuda")
    model = build_model(cfg.model, len(train_ds.bands)).to(device).to(memory_format=torch.channels_last)
    criterion = make_loss(cfg, train_ds.num_zones).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps = tc.epochs * len(train_dl)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=steps, pct_start=0.15)
    use_amp = tc.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    log.info("train: %d train / %d val chips, %d bands, %s on %s%s, %d epochs × %d steps",
             len(train_ds), len(val_ds), len(train_ds.bands), cfg.model.encoder, device,
             f" with {amp_dtype} autocast" if use_amp else "", tc.epochs, len(train_dl))

    best, best_state, best_logits, rows = float("inf"), None, None, []
    t0, seen = time.perf_counter(), 0
    for epoch in range(1, tc.epochs + 1):
        model.train()
        criterion.train()
        sums = dict.fromkeys(("total", *LOSS_PARTS), 0.0)
        bar = tqdm(train_dl, desc=f"epoch {epoch}/{tc.epochs}", unit="batch", leave=False)
        for image, label, valid, eco, zone in (_to(b, device) for b in bar):
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = model(image.contiguous(memory_format=torch.channels_last))
            res = criterion(logits, label, valid, eco, zone)
            opt.zero_grad(set_to_none=True)
            scaler.scale(res.total).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            seen += image.shape[0]
            total = float(res.total.detach())
            sums["total"] += total
            for k, v in res.parts.items():
                sums[k] += float(v)
            bar.set_postfix(loss=f"{total:.4f}", fair=f"{float(res.parts['fairness']):.2e}")
        n = max(1, len(train_dl))
        val_metrics, val_logits = _validate(model, val_dl, criterion, device)
        row = {"epoch": epoch, **{f"train_{k}": v / n for k, v in sums.items()}, **val_metrics}
        rows.append(row)
        log.info("epoch %d: train loss %.4f (acc %.4f, eco %.4f, fair %.2e) | val loss %.4f AUC %.3f AP %.3f",
                 epoch, row["train_total"], row["train_accuracy"], row["train_eco"], row["train_fairness"],
                 row["val_total"], row["val_auc"], row["val_ap"])
        if row["val_total"] < best:  # NaN never compares smaller: a NaN epoch is never kept
            best = row["val_total"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_logits = val_logits
    train_s = time.perf_counter() - t0
    if best_state is None:
        raise TrainingError(
            f"every validation loss was NaN or infinite over {tc.epochs} epochs (train losses: "
            f"{[round(r['train_total'], 4) for r in rows]}) — the learning rate may be too high (train.lr "
            f"{tc.lr:g}: try 10× lower), or an input band holds non-finite values; nothing was written")
    temperature = fit_temperature(*best_logits) if tc.calibrate else 1.0
    best_row = next(r for r in rows if r["val_total"] == best)
    meta = CheckpointMeta(
        model=cfg.model.model_dump(), bands=train_ds.bands, band_stats=train_ds.stats, num_zones=train_ds.num_zones,
        temperature=temperature, epoch=best_row["epoch"], val_auc=best_row["val_auc"], val_ap=best_row["val_ap"],
        config_yaml=config_to_yaml(cfg),
    )
    save_checkpoint(paths.checkpoint, model, meta)
    _write_log(paths.train_log, rows)
    plot_learning_curves(rows, paths.learning_curves)
    log.info("train: best epoch %d, temperature %.3f, %.1f s (%.1f chips/s) → %s", best_row["epoch"], temperature,
             train_s, seen / train_s, paths.checkpoint)
    return TrainResult(paths.checkpoint, tc.epochs, temperature, best_row["val_auc"], best_row["val_ap"],
                       train_s, seen / train_s)


@torch.no_grad()
def _validate(model, loader, criterion, device) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """Validation loss, AUC and AP over valid pixels, plus those pixels' logits and labels."""
    model.eval()
    criterion.eval()  # no EMA updates from validation batches
    total, n, scores, labels = 0.0, 0, [], []
    for image, label, valid, eco, zone in (_to(b, device) for b in loader):
        logits = model(image.contiguous(memory_format=torch.channels_last)).float()
        total += float(criterion(logits, label, valid, eco, zone).total) * image.shape[0]
        n += image.shape[0]
        m = valid.bool()
        scores.append(logits[m].cpu().numpy())
        labels.append(label[m].cpu().numpy())
    s, y = np.concatenate(scores), np.concatenate(labels)
    both = 0 < y.sum() < y.size
    metrics = {"val_total": total / max(n, 1),
               "val_auc": float(roc_auc_score(y, s)) if both else float("nan"),
               "val_ap": float(average_precision_score(y, s)) if both else float("nan")}
    return metrics, (torch.from_numpy(s), torch.from_numpy(y))


def _write_log(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=train_log_columns(LOSS_PARTS))
        w.writeheader()
        w.writerows(rows)
