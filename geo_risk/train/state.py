"""``train_state.pt``: everything a killed training run needs to continue exactly (docs/training.md).

Written atomically (temporary file + rename) by rank 0 at the end of every epoch and, with
``train.checkpoint_every_steps``, every N optimiser steps; read back with ``weights_only=True``,
so every field is a tensor, a number, a string, or a list/dict of them (RNG states included).

The data order needs no stored generator: the sampler's permutation of epoch e is a function of
(train.seed, e), and chip j's augmentation of (train.seed, e, j) (:class:`geo_risk.data.ChipDataset`);
the state records the epoch and how many batches of it were done, and the sampler skips those.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geo_risk.config import RunConfig, config_to_yaml
from geo_risk_errors import CheckpointError
from tiles.atomic import atomic_file

#: version of train_state.pt; bump when a field changes meaning or is removed
TRAIN_STATE_FORMAT = 1
STATE_FILE = "train_state.pt"
#: train.* keys that change neither the data, the model nor the optimisation: a resume may change them
RESUMABLE_KEYS = ("device", "num_threads", "num_workers", "checkpoint_every_steps", "calibrate", "patience")


def state_path(run_dir: Path) -> Path:
    return Path(run_dir) / STATE_FILE


def training_config(cfg: RunConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the interrupted one: model, loss, chips, periods
    and train (less :data:`RESUMABLE_KEYS`)."""
    d = cfg.model_dump(mode="json")
    train = {k: v for k, v in d["train"].items() if k not in RESUMABLE_KEYS}
    return {"model": d["model"], "loss": d["loss"], "train": train, "chips": d["chips"], "periods": d["periods"]}


def config_hash(cfg: RunConfig) -> str:
    return hashlib.sha256(json.dumps(training_config(cfg), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- RNG states as tensors and lists
def rng_state(device: torch.device) -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss], "numpy": [name, torch.from_numpy(keys.astype(np.int64)),
                                                                  int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def cpu_state_dict(module_or_state) -> dict[str, torch.Tensor]:
    sd = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


# ---------------------------------------------------------------- save / load
def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically: a kill during the write leaves the previous state intact."""
    with atomic_file(path) as tmp:
        torch.save({"format": TRAIN_STATE_FORMAT, **state}, tmp)


def load_state(path: Path, cfg: RunConfig, bands: list[str], world: int = 1) -> dict[str, Any]:
    """Read ``path`` safely; refuse a state of another format, config or band set, naming the fix."""
    fix = (f"run `geo-risk train CONFIG` without --resume to start over (it overwrites {path.name}), or remove "
           f"{path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"training state {path} is unreadable ({type(e).__name__}: {e}) — {fix}") from e
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        got = state.get("format") if isinstance(state, dict) else None
        raise CheckpointError(f"training state {path} has format {got}; this geo-risk reads format "
                              f"{TRAIN_STATE_FORMAT} — {fix}")
    if state["config_hash"] != config_hash(cfg):
        old, new = json.loads(state["training_config"]), training_config(cfg)
        diff = sorted(f"{sec}.{k}" for sec in new for k in set(new[sec]) | set(old.get(sec, {}))
                      if old.get(sec, {}).get(k) != new[sec].get(k))
        raise CheckpointError(
            f"training state {path} was written with another config (differs in {', '.join(diff) or 'its layout'}; "
            f"--resume needs the same model, loss, chips, periods and train settings, except "
            f"{', '.join('train.' + k for k in RESUMABLE_KEYS)}) — resume with the config it was written with, or "
            f"{fix}")
    if int(state.get("world", 1)) != world:
        raise CheckpointError(
            f"training state {path} was written by {state.get('world', 1)} process(es) but this run has {world} — "
            f"each process's share of an epoch and the schedule's length depend on it: resume with the same "
            f"torchrun --nproc_per_node (or none for 1), or {fix}")
    if list(state["bands"]) != list(bands):
        raise CheckpointError(
            f"training state {path} was written for the bands {list(state['bands'])} but the chip store holds "
            f"{list(bands)} — the chips were re-tiled since; {fix}")
    return state


def new_state_fields(cfg: RunConfig, bands: list[str], world: int = 1) -> dict[str, Any]:
    """The identity fields of a state: config hash, the training config, the resolved YAML, the bands
    and the number of processes."""
    return {"config_hash": config_hash(cfg), "training_config": json.dumps(training_config(cfg), sort_keys=True),
            "config_yaml": config_to_yaml(cfg), "bands": list(bands), "world": int(world)}
