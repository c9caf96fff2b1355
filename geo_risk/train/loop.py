"""The training loop: data loaders, model, loss and optimiser; resume from ``train_state.pt``; best
epoch and early stopping; validation (rank 0 under DDP); calibration and the checkpoint."""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from geo_risk.artifacts import CheckpointMeta, train_log_columns
from geo_risk.calibrate import fit_temperature
from geo_risk.config import RunConfig, config_to_yaml
from geo_risk.data import ChipDataset
from geo_risk.model import build_model, save_checkpoint
from geo_risk.paths import RunPaths
from geo_risk.plots import plot_learning_curves
from geo_risk.train import ddp, state as tstate, threads
from geo_risk.train.ddp import DistContext
from geo_risk_errors import ConfigError, TrainingError
from losses import LOSS_PARTS, CompositeLoss
from tiles.atomic import atomic_file

log = logging.getLogger("geo_risk.train")  # the stage's logger

#: higher is better for these monitors; lower for "loss"
_HIGHER = {"ap": True, "auc": True, "loss": False}
_COLUMN = {"ap": "val_ap", "auc": "val_auc", "loss": "val_total"}


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs: int
    temperature: float
    val_auc: float
    val_ap: float
    seconds: float
    chips_per_s: float
    best_epoch: int = 0
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_deterministic(device: torch.device) -> None:
    """Deterministic kernels where PyTorch has them (warn, not fail, where it has none).

    On the CPU every op the U-Net uses is deterministic at a fixed thread count. On CUDA cuBLAS
    needs a fixed workspace (CUBLAS_WORKSPACE_CONFIG, set here unless given) and cuDNN's autotuner
    is off; a few CUDA backward kernels (e.g. bilinear upsampling's, used by FPN and DeepLabV3Plus)
    have no deterministic form and only warn — see docs/training.md.
    """
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_loss(cfg: RunConfig, num_zones: int) -> CompositeLoss:
    lc = cfg.loss
    return CompositeLoss(
        lambda_eco=lc.lambda_eco, lambda_fair=lc.lambda_fair, min_zone_pixels=lc.min_zone_pixels,
        fairness=lc.fairness, eco_form=lc.eco_form, pos_weight=lc.pos_weight, focal_gamma=lc.focal_gamma,
        ema_momentum=lc.ema_momentum, num_zones=num_zones,
    )


def _to(batch, device):
    return [t.to(device, non_blocking=True) for t in batch]


class EpochSampler(DistributedSampler):
    """DistributedSampler (one replica outside torchrun) that can skip the first batches of an
    epoch: a resumed run sees the rest of the interrupted epoch in the same order."""

    skip = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def run_train(cfg: RunConfig, resume: bool = False) -> TrainResult:
    """Train, keep the best epoch on ``train.monitor``, calibrate, write the checkpoint.

    ``resume``: continue from the run folder's ``train_state.pt`` (refused when it was written with
    another config or band set). Under torchrun every process calls this; rank 0 writes the files.
    """
    ctx = ddp.setup(cfg.train.device)
    try:
        return _train(cfg, resume, ctx)
    finally:
        ctx.close()


def _train(cfg: RunConfig, resume: bool, ctx: DistContext) -> TrainResult:
    tc = cfg.train
    paths = RunPaths(cfg.run_dir)
    device = ctx.device
    if ctx.main:
        threads.check_wait_policy()
    n_threads, n_workers = threads.configure(tc.num_threads, tc.num_workers, device, ctx.world)
    seed_everything(tc.seed)
    set_deterministic(device)
    if tc.batch_size % ctx.world:
        raise ConfigError(f"train.batch_size {tc.batch_size} is the global batch and must divide among the "
                          f"{ctx.world} processes — use a multiple of {ctx.world}")
    per_rank = tc.batch_size // ctx.world

    train_ds = ChipDataset(paths.chips, "train", augment=True, seed=tc.seed)
    val_ds = ChipDataset(paths.chips, "val")
    sampler = EpochSampler(train_ds, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=tc.seed)
    drop_last = sampler.num_samples > per_rank
    loader_kw = dict(num_workers=n_workers, pin_memory=device.type == "cuda",
                     worker_init_fn=threads.worker_init if n_workers else None,
                     persistent_workers=False)
    train_dl = DataLoader(train_ds, batch_size=per_rank, sampler=sampler, drop_last=drop_last, **loader_kw)
    val_dl = DataLoader(val_ds, batch_size=per_rank, **loader_kw)
    steps_per_epoch = sampler.num_samples // per_rank if drop_last else math.ceil(sampler.num_samples / per_rank)

    net = build_model(cfg.model, len(train_ds.bands)).to(device)
    memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    criterion = make_loss(cfg, train_ds.num_zones).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch,
                                                pct_start=0.15)
    use_amp = tc.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ema = None
    if tc.ema_decay:
        ema = torch.optim.swa_utils.AveragedModel(
            net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
    eval_net = ema.module if ema is not None else net  # what is validated, kept and calibrated

    state_file = tstate.state_path(paths.root)
    progress = {"epoch": 1, "step": 0, "global_step": 0, "seen": 0, "train_seconds": 0.0,
                "sums": dict.fromkeys(("total", *LOSS_PARTS), 0.0), "rows": [],
                "best": {"value": None, "epoch": 0, "bad_epochs": 0, "monitor": tc.monitor, "state": None,
                         "stopped": False}}
    if resume and state_file.is_file():
        saved = tstate.load_state(state_file, cfg, train_ds.bands, ctx.world)
        net.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        criterion.load_state_dict(saved["criterion"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        tstate.set_rng_state(saved["rng"], device)
        progress = saved["progress"]
        log.info("train: resuming from %s at epoch %d, step %d of %d", state_file, progress["epoch"],
                 progress["step"], steps_per_epoch)
    elif resume:
        log.warning("train: --resume but %s does not exist: starting from the first epoch", state_file)
    elif state_file.is_file() and ctx.main:
        log.info("train: starting over (without --resume); %s will be overwritten", state_file)

    model = net
    if ctx.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    identity = tstate.new_state_fields(cfg, train_ds.bands, ctx.world)

    def save(progress_now: dict) -> None:
        if not ctx.main:
            return
        tstate.save_state(state_file, {
            **identity, "model": tstate.cpu_state_dict(net), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
            "criterion": tstate.cpu_state_dict(criterion), "rng": tstate.rng_state(device),
            "progress": progress_now, **({"ema": tstate.cpu_state_dict(ema)} if ema is not None else {})})

    if ctx.main:
        log.info("train: %d train / %d val chips, %d bands, %s/%s on %s%s%s, %d epochs × %d steps of %d chips, "
                 "%d threads, %d loader workers", len(train_ds), len(val_ds), len(train_ds.bands), cfg.model.arch,
                 cfg.model.encoder, device, f" with {amp_dtype} autocast" if use_amp else "",
                 f" × {ctx.world} processes" if ctx.distributed else "", tc.epochs, steps_per_epoch,
                 tc.batch_size, n_threads, n_workers)

    best = progress["best"]
    every = tc.checkpoint_every_steps
    t_start = time.perf_counter() - progress["train_seconds"]
    while progress["epoch"] <= tc.epochs and not best["stopped"]:
        epoch = progress["epoch"]
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        sampler.skip = progress["step"] * per_rank
        model.train()
        criterion.train()
        sums = progress["sums"]
        bar = tqdm(train_dl, desc=f"epoch {epoch}/{tc.epochs}", unit="batch", leave=False, disable=not ctx.main,
                   initial=progress["step"], total=steps_per_epoch)
        for image, label, valid, eco, zone in (_to(b, device) for b in bar):
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = model(image.contiguous(memory_format=memory_format))
            res = criterion(logits, label, valid, eco, zone)
            opt.zero_grad(set_to_none=True)
            scaler.scale(res.total).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update_parameters(net)
            progress["seen"] += image.shape[0] * ctx.world
            progress["step"] += 1
            progress["global_step"] += 1
            total = float(res.total.detach())
            sums["total"] += total
            for k, v in res.parts.items():
                sums[k] += float(v)
            bar.set_postfix(loss=f"{total:.4f}", fair=f"{float(res.parts['fairness']):.2e}")
            if every and progress["global_step"] % every == 0 and progress["step"] < steps_per_epoch:
                progress["train_seconds"] = time.perf_counter() - t_start
                save(progress)
        val_metrics = _validate_everywhere(eval_net, val_dl, criterion, device, ctx)
        n = max(1, progress["step"])
        row = {"epoch": epoch, **{f"train_{k}": v / n for k, v in ctx.mean(sums).items()}, **val_metrics}
        progress["rows"].append(row)
        if ctx.main:
            log.info("epoch %d: train loss %.4f (acc %.4f, eco %.4f, fair %.2e) | val loss %.4f AUC %.3f AP %.3f",
                     epoch, row["train_total"], row["train_accuracy"], row["train_eco"], row["train_fairness"],
                     row["val_total"], row["val_auc"], row["val_ap"])
        _track_best(best, progress["rows"], eval_net, tc.patience)
        progress.update(epoch=epoch + 1, step=0, sums=dict.fromkeys(("total", *LOSS_PARTS), 0.0),
                        train_seconds=time.perf_counter() - t_start)
        save(progress)
    train_s = time.perf_counter() - t_start
    rows = progress["rows"]
    if best["state"] is None:
        raise TrainingError(
            f"every validation loss was NaN or infinite over {len(rows)} epochs (train losses: "
            f"{[round(r['train_total'], 4) for r in rows]}) — the learning rate may be too high (train.lr "
            f"{tc.lr:g}: try 10× lower), or an input band holds non-finite values; nothing was written")
    ctx.barrier()
    ctx.close()  # the rest (calibration, files) is rank 0's alone
    best_row = next(r for r in rows if r["epoch"] == best["epoch"])
    result = TrainResult(paths.checkpoint, len(rows), 1.0, best_row["val_auc"], best_row["val_ap"], train_s,
                         progress["seen"] / max(train_s, 1e-9), best["epoch"], bool(best["stopped"]))
    if not ctx.main:
        return result
    net.load_state_dict(best["state"])
    _, (val_logits, val_labels, val_weights) = _validate(net, val_dl, criterion, device)
    temperature = fit_temperature(val_logits, val_labels, weights=val_weights) if tc.calibrate else 1.0
    meta = CheckpointMeta(
        model=cfg.model.model_dump(), bands=train_ds.bands, band_stats=train_ds.stats, num_zones=train_ds.num_zones,
        temperature=temperature, epoch=best_row["epoch"], val_auc=best_row["val_auc"], val_ap=best_row["val_ap"],
        config_yaml=config_to_yaml(cfg),
    )
    save_checkpoint(paths.checkpoint, net, meta)
    _write_log(paths.train_log, rows)
    plot_learning_curves(rows, paths.learning_curves)
    log.info("train: best epoch %d on val %s%s, temperature %.3f, %.1f s (%.1f chips/s) → %s", best_row["epoch"],
             best["monitor"], " (stopped early)" if best["stopped"] else "", temperature, train_s,
             result.chips_per_s, paths.checkpoint)
    return TrainResult(paths.checkpoint, len(rows), temperature, best_row["val_auc"], best_row["val_ap"], train_s,
                       result.chips_per_s, best["epoch"], bool(best["stopped"]))


def _track_best(best: dict, rows: list[dict], net: torch.nn.Module, patience: int | None) -> None:
    """Update the best epoch on the monitored metric (NaN never kept), with the early-stop count.

    A NaN AP/AUC with a finite loss (a validation split without a positive or a negative pixel)
    warns once and moves the monitor to the validation loss for the rest of the run."""
    row = rows[-1]
    if best["monitor"] != "loss" and math.isnan(row[_COLUMN[best["monitor"]]]) and math.isfinite(row["val_total"]):
        log.warning("train: validation %s is undefined at epoch %d: the validation chips' valid pixels hold no "
                    "lost pixel (or only lost pixels) — the best epoch and early stopping use the validation loss "
                    "instead (train.monitor %s → loss); tile with more chips (chips.max_chips, chips.val_fraction) "
                    "or another chips.seed for a validation split with both classes",
                    best["monitor"].upper(), row["epoch"], best["monitor"])
        best["monitor"] = "loss"
        # re-rank the epochs so far on the loss (all had the same undefined metric)
        best["value"], best["epoch"], best["bad_epochs"] = None, 0, 0
        for r in rows[:-1]:
            _consider(best, r, None)
    _consider(best, row, net)
    if patience is not None and best["bad_epochs"] >= patience:
        best["stopped"] = True
        log.info("train: no improvement of val %s for %d epochs (train.patience): stopping after epoch %d "
                 "(best: epoch %d)", best["monitor"], best["bad_epochs"], row["epoch"], best["epoch"])


def _consider(best: dict, row: dict, net: torch.nn.Module | None) -> None:
    value = row[_COLUMN[best["monitor"]]]
    finite = math.isfinite(value) and math.isfinite(row["val_total"])
    better = finite and (best["value"] is None
                         or (value > best["value"] if _HIGHER[best["monitor"]] else value < best["value"]))
    if better:
        best["value"], best["epoch"], best["bad_epochs"] = float(value), int(row["epoch"]), 0
        if net is not None:
            best["state"] = tstate.cpu_state_dict(net)
    else:
        best["bad_epochs"] += 1


def _validate_everywhere(net, loader, criterion, device, ctx: DistContext) -> dict:
    """Validation metrics on every rank. Under DDP rank 0 validates the whole split; the other ranks
    join the loss's all-reduce of zone sums with empty (all-invalid) batches, so rank 0's loss is the
    one-process loss exactly, then receive rank 0's metrics."""
    if not ctx.distributed:
        return _validate(net, loader, criterion, device)[0]
    if ctx.main:
        metrics = _validate(net, loader, criterion, device)[0]
    else:
        criterion.eval()
        with torch.no_grad():
            for _, label, valid, eco, zone in (_to(b, device) for b in loader):
                zero = torch.zeros_like(label)
                criterion(zero, zero, zero, eco * 0, zone)
        metrics = None
    return ctx.broadcast(metrics)


@torch.no_grad()
def _validate(model, loader, criterion, device, memory_format=torch.channels_last
              ) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """Validation loss, AUC and AP over valid pixels, plus those pixels' logits and labels."""
    model.eval()
    criterion.eval()  # no EMA updates from validation batches
    total, n, scores, labels, weights = 0.0, 0, [], [], []
    for image, label, valid, eco, zone in (_to(b, device) for b in loader):
        logits = model(image.contiguous(memory_format=memory_format)).float()
        total += float(criterion(logits, label, valid, eco, zone).total) * image.shape[0]
        n += image.shape[0]
        m = valid.bool()
        scores.append(logits[m].cpu().numpy())
        labels.append(label[m].cpu().numpy())
        weights.append(valid[m].float().cpu().numpy())  # the chips' sampling weights (1 unless subsampled)
    s, y, w = np.concatenate(scores), np.concatenate(labels), np.concatenate(weights)
    both = 0 < y.sum() < y.size
    metrics = {"val_total": total / max(n, 1),
               "val_auc": float(roc_auc_score(y, s, sample_weight=w)) if both else float("nan"),
               "val_ap": float(average_precision_score(y, s, sample_weight=w)) if both else float("nan")}
    return metrics, (torch.from_numpy(s), torch.from_numpy(y), torch.from_numpy(w))


def _write_log(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=train_log_columns(LOSS_PARTS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
