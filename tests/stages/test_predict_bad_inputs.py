"""predict's bad inputs: a forecast period without a valid pixel is one clear error, and nothing is written."""

import shutil

import numpy as np
import pytest
import xarray as xr

from geo_risk.paths import RunPaths
from geo_risk_errors import InputDataError
from tests.conftest import synthetic_config


def test_forecast_without_a_valid_pixel_is_refused(synthetic_run, tmp_path):
    from geo_risk.predict import run_predict

    src = RunPaths(synthetic_run.cfg.run_dir)
    run = RunPaths(tmp_path / "run")
    run.root.mkdir()
    shutil.copytree(src.root / "tiles", run.root / "tiles")
    shutil.copy(src.checkpoint, run.checkpoint)
    stack = xr.open_zarr(run.stack)
    periods = [str(p) for p in stack.period.values]
    valid = stack["valid"].load()
    valid[periods.index("forecast")] = 0  # e.g. forest codes that never occur in the forecast's start year
    assert valid.sum() > 0  # the training period still has pixels
    valid.to_dataset(name="valid").drop_vars([c for c in valid.coords if c not in valid.dims]).to_zarr(
        run.stack, mode="r+")
    cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", run.root, predict={"tta": 1})
    with pytest.raises(InputDataError, match=r"forecast period of .*stack.zarr has no valid pixel.*geo-risk tile"):
        run_predict(cfg)
    assert not run.probability.exists() and not run.uncertainty.exists() and not run.zone_risk.exists()
    assert not list(run.root.glob(".predict-scratch-*"))  # the scratch logits are removed
    assert np.asarray(xr.open_zarr(run.stack)["valid"].sel(period="forecast")).sum() == 0
