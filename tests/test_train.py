"""The trainer on the synthetic region (5 train, 6 val chips of 32 px): resume after SIGKILL,
determinism, best epoch and early stopping on a validation metric."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from geo_risk.paths import RunPaths
from tests.conftest import ROOT, synthetic_config

#: 2 epochs of 2 steps (batch 2 of 5 chips), a state every step: the kill falls mid epoch 2
RESUME_SETS = {"train": {"epochs": 2, "batch_size": 2, "checkpoint_every_steps": 1, "num_threads": 1}}
KILL_AT = (2, 1)  # (epoch, batches done in it) of the state after which the child SIGKILLs itself


def _fresh_run(synthetic_region, synthetic_run, run_dir: Path, **overrides):
    """A config with its own run folder holding a copy of the synthetic run's tiles."""
    cfg = synthetic_config(synthetic_region, run_dir, **overrides)
    shutil.copytree(RunPaths(synthetic_run.cfg.run_dir).tiles, RunPaths(cfg.run_dir).tiles)
    return cfg


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 100
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _cli(args: list[str], env_extra: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "geo_risk", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _sets(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _sets(v, f"{prefix}{k}.") if isinstance(v, dict) else ["--set", f"{prefix}{k}={json.dumps(v)}"]
    return out


# the child: train through the CLI, SIGKILL itself right after the state of KILL_AT is written
KILLER = """
import os, signal, sys
import geo_risk.train.state as tstate
real = tstate.save_state
def save_then_die(path, state):
    real(path, state)
    p = state["progress"]
    if (p["epoch"], p["step"]) == tuple(int(x) for x in os.environ["KILL_AT"].split(",")):
        os.kill(os.getpid(), signal.SIGKILL)
tstate.save_state = save_then_die
from geo_risk.cli import app
app(prog_name="geo-risk", args=sys.argv[1:])
"""


#: the same with the weights' moving average and the full-resolution input skip: both have state to resume
RESUME_EMA = {"train": {**RESUME_SETS["train"], "ema_decay": 0.9}, "model": {"input_skip": True}}


@pytest.mark.parametrize("sets", [RESUME_SETS, RESUME_EMA], ids=["plain", "ema_input_skip"])
def test_resume_after_sigkill_mid_epoch_gives_bit_identical_weights(synthetic_region, synthetic_run, tmp_path, sets):
    whole = _fresh_run(synthetic_region, synthetic_run, tmp_path / "whole")
    killed = _fresh_run(synthetic_region, synthetic_run, tmp_path / "killed")
    base = [str(synthetic_region), *_sets(sets)]

    done = _cli(["train", *base, "--out", str(whole.run_dir)])
    assert done.returncode == 0, done.stderr[-2000:]

    child = _cli(["train", *base, "--out", str(killed.run_dir)], {"KILL_AT": "%d,%d" % KILL_AT}, code=KILLER)
    assert child.returncode == -9, (child.returncode, child.stderr[-2000:])  # SIGKILLed
    paths = RunPaths(killed.run_dir)
    assert not paths.checkpoint.exists()  # it died before the end
    state = torch.load(paths.root / "train_state.pt", map_location="cpu", weights_only=True)
    assert (state["progress"]["epoch"], state["progress"]["step"]) == KILL_AT
    assert len(state["progress"]["rows"]) == 1  # epoch 1 done, epoch 2 one batch in

    resumed = _cli(["train", *base, "--out", str(killed.run_dir), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "epoch 2, step 1 of 2" in resumed.stderr
    _assert_same_weights(RunPaths(whole.run_dir).checkpoint, paths.checkpoint)
    # the log too: the interrupted epoch's loss sums were carried over
    assert (RunPaths(whole.run_dir).train_log.read_text() == paths.train_log.read_text())


def test_resume_of_another_config_or_band_set_is_refused(synthetic_region, synthetic_run, tmp_path):
    from geo_risk.train import run_train
    from geo_risk_errors import CheckpointError

    cfg = _fresh_run(synthetic_region, synthetic_run, tmp_path / "run")
    run_train(cfg)
    state_file = RunPaths(cfg.run_dir).root / "train_state.pt"
    assert state_file.is_file()
    other = synthetic_config(synthetic_region, cfg.run_dir, train={"lr": 0.003, "epochs": 1})
    with pytest.raises(CheckpointError, match=r"train_state\.pt was written with another config .*train\.lr.*"
                                              r"without --resume.*remove .*train_state\.pt"):
        run_train(other, resume=True)
    # settings that do not change the training may differ
    run_train(synthetic_config(synthetic_region, cfg.run_dir, train={"num_threads": 2, "patience": 3}), resume=True)

    state = torch.load(state_file, map_location="cpu", weights_only=True)
    torch.save({**state, "world": 2}, state_file)
    with pytest.raises(CheckpointError, match=r"written by 2 process\(es\) but this run has 1.*nproc_per_node"):
        run_train(cfg, resume=True)
    state["bands"] = [*state["bands"][:-1], "another_band"]
    torch.save(state, state_file)
    with pytest.raises(CheckpointError, match=r"train_state\.pt was written for the bands .*another_band.*"
                                              r"chip store holds .*without --resume"):
        run_train(cfg, resume=True)


def test_same_seed_gives_identical_weights_and_risk_map(synthetic_region, synthetic_run, tmp_path):
    from geo_risk.predict import run_predict
    from geo_risk.train import run_train

    runs = [_fresh_run(synthetic_region, synthetic_run, tmp_path / name) for name in ("a", "b")]
    for cfg in runs:
        run_train(cfg)
    a, b = (RunPaths(c.run_dir) for c in runs)
    _assert_same_weights(a.checkpoint, b.checkpoint)
    for cfg in runs:
        run_predict(cfg)
    with rasterio.open(a.probability) as ra, rasterio.open(b.probability) as rb:
        pa, pb = ra.read(1), rb.read(1)
    assert np.isfinite(pa).sum() > 1000
    np.testing.assert_array_equal(pa, pb)
    # another seed gives other weights (so the equality above is not vacuous)
    c = _fresh_run(synthetic_region, synthetic_run, tmp_path / "c", train={"seed": 1})
    run_train(c)
    wa, wc = _weights(a.checkpoint), _weights(RunPaths(c.run_dir).checkpoint)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_best_epoch_and_early_stopping_on_the_monitored_metric(synthetic_region, synthetic_run, tmp_path,
                                                               monkeypatch):
    import geo_risk.train.loop as train
    from geo_risk.model import load_checkpoint

    aps = iter([0.30, 0.50, 0.40, 0.45, 0.9])  # best at epoch 2; patience 2 stops after epoch 4
    real = train._validate

    def scripted(*a, **k):
        metrics, logits = real(*a, **k)
        return {**metrics, "val_ap": next(aps, metrics["val_ap"])}, logits

    monkeypatch.setattr(train, "_validate", scripted)
    cfg = _fresh_run(synthetic_region, synthetic_run, tmp_path / "run", train={"epochs": 5, "patience": 2})
    result = train.run_train(cfg)
    assert result.stopped_early and result.epochs == 4 and result.best_epoch == 2
    assert result.val_ap == 0.50
    rows = RunPaths(cfg.run_dir).train_log.read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    _, meta = load_checkpoint(RunPaths(cfg.run_dir).checkpoint)
    assert meta.epoch == 2 and meta.val_ap == 0.50


def test_track_best_on_loss_and_auc():
    from geo_risk.train.loop import _track_best

    for monitor, key, values, best_epoch in (("loss", "val_total", [0.5, 0.4, 0.45, 0.3], 4),
                                             ("auc", "val_auc", [0.6, 0.7, 0.65, 0.69], 2)):
        best = {"value": None, "epoch": 0, "bad_epochs": 0, "monitor": monitor, "state": None, "stopped": False}
        rows = []
        for epoch, v in enumerate(values, 1):
            rows.append({"epoch": epoch, "val_total": 0.5, "val_auc": 0.5, "val_ap": 0.1, key: v})
            _track_best(best, rows, None, None)
        assert best["epoch"] == best_epoch and best["value"] == max(values) if monitor == "auc" else min(values)
        assert not best["stopped"]


def test_validation_without_positive_pixel_warns_once_and_uses_the_loss(synthetic_region, synthetic_run, tmp_path,
                                                                         caplog):
    import zarr

    from geo_risk.train import run_train

    cfg = _fresh_run(synthetic_region, synthetic_run, tmp_path / "run", train={"epochs": 2})
    g = zarr.open_group(str(RunPaths(cfg.run_dir).chips), mode="r+")
    split = np.asarray(g["split"][:]).astype(str)
    label = g["label"][:]
    label[split == "val"] = 0
    g["label"][:] = label
    with caplog.at_level(logging.WARNING, logger="geo_risk.train"):
        result = run_train(cfg)
    warnings = [r.getMessage() for r in caplog.records if "undefined" in r.getMessage()]
    assert len(warnings) == 1 and "no lost pixel" in warnings[0] and "monitor ap → loss" in warnings[0]
    assert math.isnan(result.val_ap) and RunPaths(cfg.run_dir).checkpoint.is_file()
    rows = [r.split(",") for r in RunPaths(cfg.run_dir).train_log.read_text().strip().splitlines()]
    losses = [float(r[rows[0].index("val_total")]) for r in rows[1:]]
    assert result.best_epoch == 1 + int(np.argmin(losses))


def test_empty_training_split_names_the_chips_settings(synthetic_region, synthetic_run, tmp_path):
    import zarr

    from geo_risk.train import run_train
    from geo_risk_errors import ChipStoreError

    cfg = _fresh_run(synthetic_region, synthetic_run, tmp_path / "run")
    g = zarr.open_group(str(RunPaths(cfg.run_dir).chips), mode="r+")
    g["split"][:] = np.array(["val"] * g["split"].shape[0], dtype=g["split"].dtype)
    with pytest.raises(ChipStoreError, match=r"chips\.zarr holds no 'train' chips.*'val': 11.*chips\.max_chips"):
        run_train(cfg)
    assert not RunPaths(cfg.run_dir).checkpoint.exists()


def test_predict_refuses_a_checkpoint_of_another_band_set(synthetic_region, synthetic_run, tmp_path):
    from geo_risk.predict import run_predict
    from geo_risk_errors import CheckpointError

    cfg = synthetic_config(synthetic_region, tmp_path / "run")
    paths = RunPaths(cfg.run_dir)
    shutil.copytree(RunPaths(synthetic_run.cfg.run_dir).tiles, paths.tiles)
    ckpt = torch.load(RunPaths(synthetic_run.cfg.run_dir).checkpoint, map_location="cpu", weights_only=True)
    ckpt["meta"]["bands"] = list(reversed(ckpt["meta"]["bands"]))
    torch.save(ckpt, paths.checkpoint)
    with pytest.raises(CheckpointError, match=r"model\.pt was trained on bands .* but the stack .* retrain"):
        run_predict(cfg)
    assert not paths.probability.exists()


def test_cuda_without_a_gpu_warns_and_falls_back(synthetic_region, caplog, monkeypatch):
    from geo_risk.predict.stage import device_for
    from geo_risk.train import ddp

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(ddp, "_warned", [])
    with caplog.at_level(logging.WARNING, logger="geo_risk.train.ddp"):
        assert device_for(synthetic_config(synthetic_region, train={"device": "cuda"})) == torch.device("cpu")
    assert "no GPU is visible" in caplog.text
    assert device_for(synthetic_config(synthetic_region, train={"device": "cpu"})) == torch.device("cpu")
    assert ddp.pick_device("auto") == torch.device("cpu")
