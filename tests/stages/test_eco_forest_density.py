"""The forest-derived ecological weight (``layers.eco_weight: {source: forest_density}``): forest area
density in a square window, for regions without a biomass layer (Martinique)."""

import dask.array as da
import numpy as np
import pytest
import rasterio
from pydantic import ValidationError

from geo_risk_errors import ConfigError
from tests.conftest import ROOT, SHARED
from tiles.eco import eco_forest_density


def brute_density(mask: np.ndarray, side: int) -> np.ndarray:
    """Share of forest in the side × side window of every pixel, beyond the array counting as not forest."""
    h = side // 2
    padded = np.pad(mask.astype(np.float64), h)
    out = np.zeros(mask.shape)
    for dy in range(side):
        for dx in range(side):
            out += padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out / side**2


def test_density_is_the_window_share_across_chunk_boundaries():
    rng = np.random.default_rng(3)
    mask = (rng.random((70, 90)) < 0.6).astype(np.uint8)
    mask[20:50, 30:80] = 1
    dens, note = eco_forest_density(da.from_array(mask, chunks=(16, 23)), 150, 30, 2000)  # 5 px
    np.testing.assert_allclose(dens.compute(), brute_density(mask, 5), atol=1e-6)
    assert "150 m window (5 × 5 px) in 2000" in note
    # an even number of pixels is made odd, so the window is centred: 120 m of 30 m → 5 px, not 4
    dens4, _ = eco_forest_density(da.from_array(mask, chunks=32), 120, 30, 2000)
    np.testing.assert_allclose(dens4.compute(), brute_density(mask, 5), atol=1e-6)


def test_interior_weighs_one_and_a_strip_little():
    mask = np.zeros((60, 60), np.uint8)
    mask[5:55, 5:35] = 1  # a block
    mask[:, 45] = 1  # a strip one pixel wide
    dens = eco_forest_density(da.from_array(mask, chunks=30), 270, 30, 2000)[0].compute()  # 9 px
    assert dens[30, 20] == pytest.approx(1.0)
    assert dens[30, 45] == pytest.approx(1 / 9, abs=1e-6)
    assert dens[30, 5] == pytest.approx(5 / 9, abs=1e-6)  # on the block's edge: 5 of 9 columns are forest
    cubed, note = eco_forest_density(da.from_array(mask, chunks=30), 270, 30, 2000, power=3)
    np.testing.assert_allclose(cubed.compute(), dens**3, rtol=1e-5, atol=1e-7)
    assert "to the power 3" in note


@pytest.mark.parametrize("window_m, says", [(40, "under 3 pixels"), (3000, "wider than the grid")])
def test_window_outside_the_grid_scale_is_a_config_error(window_m, says):
    mask = da.ones((40, 50), dtype=np.uint8, chunks=20)
    with pytest.raises(ConfigError, match=says) as e:
        eco_forest_density(mask, window_m, 30, 2000)
    assert "layers.eco_weight.window_m" in str(e.value)


def test_config_takes_the_source_and_refuses_unknown_keys():
    from geo_risk.config import load_config

    cfg = load_config(ROOT / "configs" / "martinique.yaml",
                      {"layers": {"eco_weight": {"source": "forest_density", "window_m": 990}}})
    e = cfg.layers.eco_weight
    assert e.source == "forest_density" and e.window_m == 990 and e.as_input is False and e.power == 1
    for bad in ({"source": "forest_density", "window": 990}, {"source": "forest_density", "window_m": 0},
                {"source": "forest_density", "power": 0}):
        with pytest.raises((ConfigError, ValidationError)):
            load_config(ROOT / "configs" / "martinique.yaml", {"layers": {"eco_weight": bad}})


MARTINIQUE = SHARED / "martinique" / "forest-MTQ-2000-2010-2020.tif"


@pytest.mark.skipif(not MARTINIQUE.is_file(), reason="Martinique (../shared/data) not present")
def test_martinique_stack_eco_is_the_2000_forest_density():
    from geo_risk.config import load_config
    from geo_risk.tiling import stack_spec
    from tiles.stack import build_stack

    cfg = load_config(ROOT / "configs" / "martinique.yaml",
                      {"data_dir": str(SHARED / "martinique"),
                       "layers": {"eco_weight": {"source": "forest_density", "window_m": 990, "power": 1}}})
    stack, _ = build_stack(stack_spec(cfg))
    assert "33 × 33 px" in stack.attrs["eco_weight"] and "2000" in stack.attrs["eco_weight"]
    assert list(stack.band.values) == ["forest", "dist_edge_m"]  # as_input false: no band
    with rasterio.open(MARTINIQUE) as src:
        f2000 = src.read(1) == 1
    eco = stack["eco"]
    for r, c in [(1000, 900), (500, 1200), (1500, 600), (5, 5), (1068, 927)]:
        window = np.pad(f2000, 16)[r:r + 33, c:c + 33]
        assert float(eco[r, c]) == pytest.approx(window.mean(), abs=1e-5), (r, c)
