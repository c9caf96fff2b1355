"""Thread policy of the trainer (docs/training.md, "Threads").

PyTorch's OpenMP threads spin while they wait for work: with another process keeping one of two
cores busy, a training step took 7.6 s instead of 0.58 s (demo U-Net, batch 8 of 128²). With
``OMP_WAIT_POLICY=PASSIVE`` they sleep instead (1.1–1.2 s under the same load, no cost when the
machine is idle). OpenMP reads the variable once, when torch loads its runtime, so
:mod:`geo_risk` sets it (``os.environ.setdefault``: a user's explicit value wins) before anything
imports torch; :func:`check_wait_policy` says so when torch was imported first.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_wait_policy() -> None:
    """Log once how the OpenMP threads wait; warn when they may spin (policy unset or ACTIVE)."""
    import geo_risk

    policy = None if geo_risk.OMP_POLICY_TOO_LATE else os.environ.get("OMP_WAIT_POLICY")
    if policy is None or policy.upper() != "PASSIVE":
        log.warning("OMP_WAIT_POLICY is %s: PyTorch's threads spin while waiting, and a step can take 10× "
                    "longer while another program keeps a core busy — set OMP_WAIT_POLICY=PASSIVE before "
                    "starting Python (geo-risk sets it unless torch was imported first or you set another value)",
                    policy or "unset when torch loaded")


def configure(num_threads: int | None, num_workers: int | None, device: torch.device, world: int = 1) -> tuple[int, int]:
    """Set torch's intra-op threads and choose DataLoader workers; returns (threads, workers).

    Threads: ``train.num_threads``, else the available cores shared among the ``world`` processes
    of this machine. Workers: ``train.num_workers``, else 0 on the CPU (chips are read in a few
    milliseconds; a worker process would only take cores from the model) and on machines of ≤ 2
    cores, else min(4, cores / (2 · world)) so reading overlaps GPU compute.
    """
    cores = available_cores()
    threads = num_threads or max(1, cores // max(1, world))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if num_workers is None:
        num_workers = 0 if device.type == "cpu" or cores <= 2 else max(1, min(4, cores // (2 * max(1, world))))
    return threads, num_workers


def worker_init(_worker_id: int) -> None:
    """In a DataLoader worker: one thread for torch and for Blosc, so reads never compete with compute."""
    torch.set_num_threads(1)
    try:
        from numcodecs import blosc

        blosc.set_nthreads(1)
    except Exception:  # noqa: BLE001 - an optional codec: nothing to cap
        pass
