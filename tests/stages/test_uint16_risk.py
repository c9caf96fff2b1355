"""``predict.probability_dtype: uint16``: risk.tif and uncertainty.tif as scaled integers that GDAL
(and every later stage) reads as the same probabilities as the float32 files, within the quantum."""

import shutil

import numpy as np
import pytest
import rasterio

from geo_risk.export import UINT16_NODATA, UINT16_STEPS, true_values
from geo_risk.paths import RunPaths
from tests.conftest import synthetic_config

QUANTUM = 0.5 / UINT16_STEPS + 1e-7  # rounding error of the stored value, plus float32's


@pytest.fixture(scope="module")
def both(synthetic_run, tmp_path_factory):
    """The trained synthetic run predicted twice, float32 and uint16, into two copies of its folder."""
    from geo_risk.predict import run_predict

    src = RunPaths(synthetic_run.cfg.run_dir)
    runs = {}
    for dtype in ("float32", "uint16"):
        dst = tmp_path_factory.mktemp(f"risk-{dtype}") / "run"
        dst.mkdir()
        shutil.copytree(src.root / "tiles", dst / "tiles")
        shutil.copy(src.checkpoint, RunPaths(dst).checkpoint)
        cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", dst,
                               predict={"probability_dtype": dtype, "tta": 1})
        run_predict(cfg)
        runs[dtype] = (cfg, RunPaths(dst))
    return runs


@pytest.mark.parametrize("name", ["probability", "uncertainty"])
def test_uint16_file_reads_as_the_float_values_within_the_quantum(both, name):
    with rasterio.open(getattr(both["float32"][1], name)) as f, rasterio.open(getattr(both["uint16"][1], name)) as q:
        assert q.dtypes[0] == "uint16" and f.dtypes[0] == "float32"
        assert q.nodata == UINT16_NODATA
        assert q.scales[0] == pytest.approx(1 / UINT16_STEPS) and q.offsets[0] == 0.0
        assert q.units[0] == "probability" and q.descriptions[0] == f.descriptions[0]
        raw, exact, back = q.read(1), f.read(1), true_values(q)
    np.testing.assert_array_equal(np.isnan(exact), raw == UINT16_NODATA)
    np.testing.assert_array_equal(np.isnan(exact), np.isnan(back))
    ok = np.isfinite(exact)
    assert ok.sum() > 1000
    err = np.abs(back[ok] - exact[ok])
    assert err.max() <= QUANTUM
    assert 0.0 <= back[ok].min() and back[ok].max() <= 1.0


def test_uint16_risk_is_a_valid_cog_and_smaller(both):
    from rio_cogeo.cogeo import cog_validate

    f, q = both["float32"][1].probability, both["uint16"][1].probability
    valid, errors, _ = cog_validate(str(q))
    assert valid, errors
    assert q.stat().st_size < f.stat().st_size


def test_decide_and_evaluate_read_uint16_risk_as_probabilities(both):
    """The same plan and the same scores from either file (pixels whose p lies within a quantum of a
    threshold of the rule may differ; the synthetic map has none or a handful)."""
    from geo_risk.decide import run_decide
    from geo_risk.evaluate import run_evaluate

    out = {}
    for dtype, (cfg, paths) in both.items():
        run_decide(cfg)
        run_evaluate(cfg)
        with rasterio.open(paths.decision) as src:
            out[dtype] = src.read(1)
        import json
        out[dtype + "_metrics"] = json.loads(paths.metrics.read_text())
    differ = (out["float32"] != out["uint16"]).mean()
    assert differ < 1e-3
    mf, mq = out["float32_metrics"]["model"], out["uint16_metrics"]["model"]
    assert mq["auc"] == pytest.approx(mf["auc"], abs=1e-3)
    assert mq["ap"] == pytest.approx(mf["ap"], abs=1e-3)


def test_review_map_reads_uint16_risk_as_probabilities(both):
    from geo_risk.review.rasters import read_raster

    f = read_raster(both["float32"][1].probability, "risk")
    q = read_raster(both["uint16"][1].probability, "risk")
    np.testing.assert_array_equal(f.valid(), q.valid())
    ok = f.valid()
    assert np.abs(np.asarray(q.array)[ok] - np.asarray(f.array)[ok]).max() <= QUANTUM
