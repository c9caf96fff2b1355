"""predict on the dask schedulers of tiles/scheduler.py: a LocalCluster's worker processes and a running
scheduler given by its address each load the checkpoint once and write the same risk.tif, pixel for
pixel, as the default threaded predict."""

import shutil

import distributed
import numpy as np
import pytest
import rasterio

from geo_risk.paths import RunPaths
from geo_risk.predict.blocks import ModelRef, resolve_model
from tests.conftest import synthetic_config


def _predict(synthetic_run, root, dask_cfg: dict):
    from geo_risk.predict import run_predict

    src = RunPaths(synthetic_run.cfg.run_dir)
    root.mkdir(parents=True)
    shutil.copytree(src.root / "tiles", root / "tiles")
    shutil.copy(src.checkpoint, RunPaths(root).checkpoint)
    # small blocks: the synthetic region (96 px) in 9 blocks, so the workers share them
    cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", root,
                           predict={"tta": 2, "block_px": 32, "halo_px": 32}, dask=dask_cfg)
    result = run_predict(cfg)
    with rasterio.open(result.risk) as r, rasterio.open(result.uncertainty) as u:
        return result, r.read(1), u.read(1)


@pytest.fixture(scope="module")
def threaded(synthetic_run, tmp_path_factory):
    return _predict(synthetic_run, tmp_path_factory.mktemp("pred-sched") / "threads", {"scheduler": "threads"})


def _same(a, b):
    (ra, pa, ua), (rb, pb, ub) = a, b
    assert ra.blocks == rb.blocks == 9
    assert np.isfinite(pa).sum() > 1000
    np.testing.assert_array_equal(np.isnan(pa), np.isnan(pb))
    np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-6)  # same network, same inputs, other processes
    np.testing.assert_allclose(ua, ub, rtol=0, atol=1e-6)


def test_local_cluster_predict_equals_threads(synthetic_run, tmp_path, threaded, caplog):
    caplog.set_level("INFO")
    got = _predict(synthetic_run, tmp_path / "lc", {"scheduler": "local_cluster", "workers": 2,
                                                     "memory_limit": "2GiB"})
    assert "LocalCluster of 2 worker process(es)" in caplog.text
    _same(threaded, got)


def test_address_predict_equals_threads(synthetic_run, tmp_path, threaded):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, scheduler_port=0,
                                       dashboard_address=None, memory_limit="2GiB")
    try:
        with distributed.Client(cluster) as client:
            got = _predict(synthetic_run, tmp_path / "addr", {"scheduler": cluster.scheduler_address})
            # the worker loaded the checkpoint once, for all its blocks (its process cache holds one network)
            loaded = client.run(lambda: len(__import__("geo_risk.predict.blocks", fromlist=["_MODELS"])._MODELS))
    finally:
        cluster.close()
    _same(threaded, got)
    assert list(loaded.values()) == [1]


def test_model_ref_loads_once_per_process(synthetic_run):
    ref = ModelRef(str(RunPaths(synthetic_run.cfg.run_dir).checkpoint.resolve()))
    a, b = resolve_model(ref), resolve_model(ref)
    assert a is b and not a.training
