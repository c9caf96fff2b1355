"""The dask scheduler of the tile stage (tiles/scheduler.py): threads, synchronous, a LocalCluster of worker
processes and the address of a running distributed scheduler give the same stack, chip store and chip index;
a bad address is one clear error (exit 2 through the CLI)."""

from __future__ import annotations

import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geo_risk.config import DaskConfig
from geo_risk.tiling import run_tile
from tests.conftest import synthetic_config
from tiles.errors import SchedulerError
from tiles.scheduler import check_workers_see, use_scheduler

distributed = pytest.importorskip("distributed", reason="distributed is a dependency of geo-risk (pyproject.toml)")


def _tiled(region, run_dir, scheduler: str, **dask_cfg):
    cfg = synthetic_config(region, run_dir, dask={"scheduler": scheduler, **dask_cfg})
    result = run_tile(cfg)
    stack = xr.open_zarr(result.stack, consolidated=True).load()
    chips = xr.open_zarr(result.chips, consolidated=True).load()
    index = pd.read_parquet(result.chips / "index.parquet")
    return result, stack, chips, index


@pytest.fixture(scope="module")
def threads_tiles(synthetic_region, tmp_path_factory):
    return _tiled(synthetic_region, tmp_path_factory.mktemp("sched") / "threads", "threads")


@pytest.fixture(scope="module")
def address_cluster():
    """A distributed scheduler and one worker process, started here; the test passes its address."""
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, scheduler_port=0,
                                       dashboard_address=None, memory_limit="2GiB")
    try:
        yield cluster
    finally:
        cluster.close()


def _same(a, b):
    ra, sa, ca, ia = a
    rb, sb, cb, ib = b
    assert (ra.num_train, ra.num_val, ra.num_buffer, ra.bands) == (rb.num_train, rb.num_val, rb.num_buffer, rb.bands)
    xr.testing.assert_identical(sa, sb)
    xr.testing.assert_identical(ca, cb)
    pd.testing.assert_frame_equal(ia, ib)


def test_threads_tiling_is_not_trivial(threads_tiles):
    result, stack, chips, index = threads_tiles
    assert result.num_train > 0 and result.num_val > 0
    assert int(stack["valid"].sum()) > 0 and int(stack["label"].sum()) > 0
    assert len(index) == chips.sizes["chip"] > 0


@pytest.mark.parametrize("scheduler", ["synchronous", "local_cluster"])
def test_each_local_scheduler_gives_the_same_tiles(scheduler, synthetic_region, tmp_path, threads_tiles, caplog):
    caplog.set_level("INFO", logger="tiles.scheduler")
    got = _tiled(synthetic_region, tmp_path / scheduler, scheduler, workers=2, memory_limit="2GiB")
    _same(got, threads_tiles)
    if scheduler == "local_cluster":
        assert "LocalCluster of 2 worker process(es)" in caplog.text
        assert "dask dashboard: " in caplog.text  # the link, or that the dashboard needs bokeh


def test_a_running_scheduler_given_by_address_gives_the_same_tiles(synthetic_region, tmp_path, threads_tiles,
                                                                   address_cluster):
    with distributed.Client(address_cluster.scheduler_address) as watcher:
        before = sum(len(v) for v in watcher.run(lambda dask_worker: list(dask_worker.data)).values())
        done_before = len(watcher.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.transition_log)))
        got = _tiled(synthetic_region, tmp_path / "address", address_cluster.scheduler_address)
        done_after = len(watcher.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.transition_log)))
    _same(got, threads_tiles)
    assert before == 0
    assert done_after > done_before + 100  # the tile stage's tasks went through that scheduler


def test_every_compute_inside_goes_to_the_scheduler(address_cluster):
    """No ``scheduler=`` left in tiles/ overrides the context: a compute inside it runs on the cluster."""
    cfg = DaskConfig(scheduler=address_cluster.scheduler_address)
    x = da.arange(1000, chunks=100)
    with use_scheduler(cfg) as client:
        assert isinstance(client, distributed.Client)
        assert dask.base.get_scheduler() == client.get
        total = x.sum().compute()
        keys_seen = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.task_prefixes])
        assert int(total) == 499500
        assert any("sum" in k for k in keys_seen)
    assert dask.base.get_scheduler() != client.get  # closed and restored on the way out
    assert client.status == "closed"


def test_local_schedulers_are_set_inside_and_restored_after():
    outside = dask.config.get("scheduler", None)
    for name in ("threads", "synchronous"):
        with use_scheduler(DaskConfig(scheduler=name)) as client:
            assert client is None
            assert dask.config.get("scheduler") == name
        assert dask.config.get("scheduler", None) == outside


def test_a_bad_address_is_one_clear_error():
    with pytest.raises(SchedulerError) as e:
        with use_scheduler(DaskConfig(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)):
            pass
    msg = str(e.value)
    assert "dask.scheduler" in msg and "tcp://127.0.0.1:9" in msg and "--scheduler threads" in msg


@pytest.mark.parametrize("value", ["thread", "127.0.0.1:8786", "tcp://host", "tcp://host:0", "http://host:8786"])
def test_a_malformed_scheduler_is_refused_by_the_config(value):
    from geo_risk_errors import ConfigError
    from pydantic import ValidationError

    with pytest.raises((ValidationError, ConfigError)) as e:
        DaskConfig(scheduler=value)
    assert "tcp://host:port" in str(e.value) or "port must be" in str(e.value)


def test_cli_bad_address_exits_2_naming_the_key(synthetic_region, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "geo_risk", "tile", str(synthetic_region), "--out", str(tmp_path / "run"),
         "--scheduler", "tcp://127.0.0.1:9", "--set", "dask.connect_timeout_s=1"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "dask.scheduler" in out.stderr and "tcp://127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "tiles").exists()


def test_cli_malformed_scheduler_names_the_option(synthetic_region, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "geo_risk", "tile", str(synthetic_region), "--out", str(tmp_path / "run"),
         "--scheduler", "local-cluster"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "--scheduler local-cluster" in out.stderr and "local_cluster" in out.stderr


def test_workers_that_do_not_see_the_run_folder_are_refused(address_cluster, tmp_path, monkeypatch):
    with use_scheduler(DaskConfig(scheduler=address_cluster.scheduler_address)) as client:
        check_workers_see(client, tmp_path / "run", [])  # same machine: they see it
        (tmp_path / "input.tif").write_bytes(b"x" * 10)
        check_workers_see(client, tmp_path / "run", [tmp_path / "input.tif"])
        # a worker on another machine: it does not find the marker, nor the input's size
        monkeypatch.setattr(client, "run", lambda fn, *args: {"tcp://10.9.9.9:40000": (None, [None])})
        with pytest.raises(SchedulerError, match="same paths") as e:
            check_workers_see(client, tmp_path / "run", [tmp_path / "input.tif"])
        assert "tcp://10.9.9.9:40000" in str(e.value) and "input.tif" in str(e.value)
    assert [p.name for p in (tmp_path / "run").iterdir()] == []  # the marker is removed
