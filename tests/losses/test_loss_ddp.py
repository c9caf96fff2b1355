"""Fairness under DDP: 2 CPU processes (gloo) must optimise the single-process global term.

What is compared, per rank r holding half of the batch:
* value: every rank's fairness value equals the single-process value on the full batch;
* gradient: the autograd-aware all-reduce sums the (identical) upstream gradients of all
  ranks in backward, so rank r's logit gradient is WORLD × the single-process gradient on
  its slice. DDP then averages parameter gradients over ranks (÷ WORLD), which recovers
  exactly the single-process gradient. The test asserts grad_r / WORLD == full_grad[slice].
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geo_risk_errors import LossInputError
from losses import CompositeLoss, ZoneFairnessLoss

WORLD, K, MZP = 2, 6, 11
KINDS = ["variance", "range", "fnr_parity"]


def make_batch():
    g = torch.Generator().manual_seed(0)
    shape = (4, 1, 6, 6)
    z = torch.randn(shape, generator=g)
    y = torch.rand(shape, generator=g) < 0.5
    m = torch.rand(shape, generator=g) < 0.9
    e = torch.rand(shape, generator=g)
    zone = torch.zeros(shape, dtype=torch.long)  # uneven split of zones across the ranks:
    zone[0:2, :, :4] = 1  # rows 0-3 of samples 0-1: only on rank 0
    zone[0:2, :, 4:] = 2  # 24 px on rank 0, 12 on rank 1
    zone[2, :, :2] = 2
    zone[2:4, :, 2:] = 3  # only on rank 1
    zone[3, :, 0] = 4  # 6 px on rank 1 + 9 px on rank 0: qualifies only globally
    zone[0, :, 0] = 4
    zone[0, :, 1, :3] = 4
    zone[3, :, 1] = 5  # 6 px: never qualifies
    return z, y, m, e, zone


def run_all(z, y, m, e, zone, num_zones=K):
    """Fairness value and logit gradient for each kind, an EMA run and the composite parts."""
    out = {}
    for kind in KINDS:
        zz = z.clone().requires_grad_()
        val = ZoneFairnessLoss(kind, MZP, num_zones=num_zones)(zz, y, m, zone)
        val.backward()
        out[kind] = (val.detach(), zz.grad)
    ema = ZoneFairnessLoss("variance", MZP, ema_momentum=0.5, num_zones=num_zones)
    ema(z + 0.5, y, m, zone)
    out["ema"] = (ema(z, y, m, zone).detach(), ema.running.clone())
    out["composite"] = CompositeLoss(min_zone_pixels=MZP, num_zones=num_zones)(z, y, m, e, zone).parts["fairness"]
    return out


def worker(rank, port, outdir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        part = [t[2 * rank: 2 * rank + 2] for t in make_batch()]
        res = run_all(*part)
        try:
            ZoneFairnessLoss()(part[0], part[1], part[2], part[4])
            res["needs_num_zones"] = ""
        except LossInputError as err:
            res["needs_num_zones"] = str(err)
        torch.save(res, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_ddp_fairness_matches_single_process(tmp_path):
    z, y, m, e, zone = make_batch()
    ref = run_all(z, y, m, e, zone)
    # precondition: zone 4 qualifies globally but on neither rank alone
    for r in range(WORLD):
        assert int((m[2 * r: 2 * r + 2] & (zone[2 * r: 2 * r + 2] == 4)).sum()) < MZP
    assert int((m & (zone == 4)).sum()) >= MZP
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for r in range(WORLD):
        got = torch.load(tmp_path / f"rank{r}.pt")
        rows = slice(2 * r, 2 * r + 2)
        for kind in KINDS:
            val, grad = got[kind]
            assert ref[kind][0].item() > 0
            assert abs(val.item() - ref[kind][0].item()) <= 1e-6, kind
            torch.testing.assert_close(grad / WORLD, ref[kind][1][rows], rtol=1e-5, atol=1e-8)
        assert abs(got["ema"][0].item() - ref["ema"][0].item()) <= 1e-6
        torch.testing.assert_close(got["ema"][1], ref["ema"][1])  # identical running buffers
        assert abs(got["composite"].item() - ref["composite"].item()) <= 1e-6
        assert "num_zones is required under DDP" in got["needs_num_zones"]
