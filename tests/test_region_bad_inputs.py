"""Bad inputs of issue 8 that no other test covered (the audit's table is in docs/your-region.md):
forest that never occurs at a period's start, named by the layer, the file and the years — not advice to
lower chips.min_valid_fraction — through run_tile and the CLI (exit 2, nothing written)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from geo_risk.tiling import run_tile
from tests.conftest import synthetic_config
from tiles.errors import ForestChangeError


@pytest.fixture
def no_forest_in_2010(synthetic_region, tmp_path):
    """The synthetic region with every pixel of code 3 (lost 2010–15) and 5 (forest in 2020) turned into
    code 2 (lost 2005–10): no pixel is forest in 2010, the forecast period's start."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_region.parent, data, ignore=shutil.ignore_patterns("run"))
    path = data / "forest_change.tif"
    with rasterio.open(path) as src:
        profile, codes = src.profile, src.read(1)
    assert {3, 5} <= set(np.unique(codes))
    codes[np.isin(codes, [3, 5])] = 2
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes, 1)
    return data / synthetic_region.name


def test_forest_that_never_occurs_at_a_period_start_is_named(no_forest_in_2010, tmp_path):
    cfg = synthetic_config(no_forest_in_2010, tmp_path / "run")
    with pytest.raises(ForestChangeError) as e:
        run_tile(cfg)
    msg = str(e.value)
    assert "period 'forecast' (2010→2015)" in msg and "is forest in 2010" in msg
    assert "forest_change.tif" in msg and "layers.forest_change" in msg
    assert "'2010': 0" in msg  # the forest pixels per year say where it is missing
    assert "min_valid_fraction" not in msg
    assert not (tmp_path / "run").exists()


def test_forest_that_never_occurs_exits_2_through_the_cli(no_forest_in_2010, tmp_path):
    out = subprocess.run([sys.executable, "-m", "geo_risk", "tile", str(no_forest_in_2010), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr
    assert "is forest in 2010" in out.stderr and "Traceback" not in out.stderr
    run = tmp_path / "run"
    assert not run.exists() or list(run.rglob("*")) == []
