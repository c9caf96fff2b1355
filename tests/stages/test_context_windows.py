"""``layers.context_windows_px``: the share of forest and of past loss around each pixel as input bands."""

import numpy as np
import pytest

from geo_risk_errors import ConfigError
from tests.conftest import synthetic_config


def brute_share(mask: np.ndarray, side: int, r: int, c: int) -> float:
    h = side // 2
    return float(np.pad(mask.astype(float), h)[r:r + side, c:c + side].mean())


@pytest.fixture(scope="module")
def ctx_stack(synthetic_region):
    from geo_risk.tiling import stack_spec
    from tiles import build_stack

    cfg = synthetic_config(synthetic_region, layers={"context_windows_px": [3, 9]})
    return build_stack(stack_spec(cfg))[0].compute()


def test_bands_follow_the_forest_bands_in_window_order(ctx_stack, synthetic_stack):
    bands = list(ctx_stack.band.values)
    assert bands[:8] == ["forest", "past_loss", "dist_edge_m", "dist_past_loss_m", "forest_share_3px",
                         "past_loss_share_3px", "forest_share_9px", "past_loss_share_9px"]
    assert bands[8:] == list(synthetic_stack[0].band.values)[4:]  # the rest as without windows
    for b in bands[8:]:
        np.testing.assert_array_equal(ctx_stack["features"].sel(band=b).values,
                                      synthetic_stack[0]["features"].sel(band=b).values)


@pytest.mark.parametrize("period", ["train", "forecast"])
def test_shares_are_window_means_of_that_periods_forest_and_past_loss(ctx_stack, period):
    f = ctx_stack["features"].sel(period=period)
    forest, past = f.sel(band="forest").values > 0.5, f.sel(band="past_loss").values > 0.5
    h, w = forest.shape
    for side in (3, 9):
        fs, ps = f.sel(band=f"forest_share_{side}px").values, f.sel(band=f"past_loss_share_{side}px").values
        assert 0 <= fs.min() and fs.max() <= 1 and 0 < ps.max()
        for r, c in [(0, 0), (h // 2, w // 3), (h - 1, w - 2), (h // 3, w // 2), (5, w - 1)]:
            assert fs[r, c] == pytest.approx(brute_share(forest, side, r, c), abs=1e-6)
            assert ps[r, c] == pytest.approx(brute_share(past, side, r, c), abs=1e-6)


@pytest.mark.parametrize("windows, says", [([4], "odd number"), ([1], "odd number"), ([3, 3], "each window once")])
def test_even_small_or_repeated_windows_are_config_errors(synthetic_region, windows, says):
    with pytest.raises(ConfigError, match=says) as e:
        synthetic_config(synthetic_region, layers={"context_windows_px": windows})
    assert "context_windows_px" in str(e.value)
