"""DistributedDataParallel under torchrun (docs/training.md, "Several GPUs or processes").

``torchrun --nproc_per_node=N -m geo_risk train CONFIG`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set; :func:`setup` joins them (NCCL on CUDA, Gloo on the CPU). Rank 0
alone writes files and logs at INFO; validation runs on rank 0 (:func:`geo_risk.train.loop._validate`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from geo_risk_errors import ConfigError

log = logging.getLogger(__name__)
_warned: list[bool] = []


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``train.device`` as a torch device: auto → CUDA when visible; 'cuda' without a GPU warns and falls back."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        if not _warned:  # once per process: predict asks for its device twice
            log.warning("train.device is 'cuda' but no GPU is visible: using the CPU")
            _warned.append(True)
        name = "cpu"
    if name == "cuda":
        return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return torch.device(name)


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the ranks (the train loss logged for an epoch)."""
        if not self.distributed:
            return values
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.world).tolist()))

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup(device_name: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1, else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, 0, pick_device(device_name))
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    except (KeyError, ValueError) as e:
        raise ConfigError(f"WORLD_SIZE is {world} but RANK/LOCAL_RANK are missing or invalid ({e}) — start several "
                          "processes with `torchrun --nproc_per_node=N -m geo_risk train CONFIG`") from None
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=30),
                                **({"device_id": device} if device.type == "cuda" else {}))
    if rank != 0:  # rank 0 alone logs progress and writes files
        logging.getLogger("geo_risk").setLevel(logging.WARNING)
    log.info("train: DDP rank %d of %d on %s (%s)", rank, world, device, backend)
    return DistContext(rank, world, local_rank, device)
