"""Stage 2 — train: a segmentation model on the chip store with the composite loss, then calibrate.

A plain loop rather than a framework: every loss part is visible, and what a practitioner needs
is here and tested (docs/training.md):

- resume: ``train_state.pt`` (:mod:`geo_risk.train.state`) at every epoch end and optionally every
  N steps; ``geo-risk train --resume`` continues exactly where a killed run stopped;
- determinism: the same seed gives the same weights on the CPU;
- best epoch and early stopping on a validation metric (``train.monitor``, ``train.patience``);
- DistributedDataParallel under torchrun (:mod:`geo_risk.train.ddp`), AMP on CUDA;
- a thread policy that holds up on a busy machine (:mod:`geo_risk.train.threads`).

The loop is :mod:`geo_risk.train.loop`; import the stage from here: ``from geo_risk.train import run_train``.
"""

from __future__ import annotations

from geo_risk.train import ddp, state, threads
from geo_risk.train.ddp import pick_device
from geo_risk.train.loop import (EpochSampler, TrainResult, make_loss, run_train, seed_everything,
                                 set_deterministic)

__all__ = ["TrainResult", "run_train", "pick_device", "seed_everything", "make_loss", "set_deterministic",
           "EpochSampler", "ddp", "state", "threads"]
