import numpy as np
import pytest

from geo_risk.decide import decide, expected_costs, two_action_threshold
from geo_risk_errors import InputDataError

COST = np.array([[0.0, 100.0], [10.0, 10.0]])  # none: 0 if forest stays, 100 if lost; patrol: 10 always


@pytest.mark.parametrize(
    "p,action,cost",
    [(0.0, 0, 0.0), (0.05, 0, 5.0), (0.1, 0, 10.0), (0.11, 1, 10.0), (0.5, 1, 10.0), (1.0, 1, 10.0)],
)
def test_hand_computed_decisions(p, action, cost):
    a, c = decide(np.array([p]), COST)
    assert a[0] == action and c[0] == pytest.approx(cost)


def test_two_action_rule_equals_threshold():
    t = two_action_threshold(COST)
    assert t == pytest.approx((10 - 0) / ((10 - 0) + (100 - 10)))  # = 0.1
    p = np.linspace(0, 1, 1001)
    a, _ = decide(p, COST)
    np.testing.assert_array_equal(a == 1, p > t + 1e-12)


def test_three_actions_and_expected_cost_table():
    cost = np.array([[0, 100], [10, 40], [30, 30]])
    r = expected_costs(np.array([0.5]), cost)
    np.testing.assert_allclose(r[:, 0], [50, 25, 30])
    a, c = decide(np.array([0.0, 0.5, 0.9]), cost)
    np.testing.assert_array_equal(a, [0, 1, 2])
    np.testing.assert_allclose(c, [0, 25, 30])


def test_nan_probability_is_nodata():
    a, c = decide(np.array([np.nan, 0.5]), COST)
    assert a[0] == 255 and np.isnan(c[0]) and a[1] == 1


def test_bad_cost_matrix():
    with pytest.raises(InputDataError, match="actions × 2"):
        decide(np.array([0.5]), np.ones((2, 3)))


@pytest.mark.parametrize("cost,rule", [
    (COST, "patrol where p > 0.1"),
    ([[10, 10], [0, 100]], "patrol where p < 0.1"),  # patrolling pays only where loss is unlikely
    ([[0, 0], [5, 5]], "none everywhere"),
    ([[5, 5], [0, 0]], "patrol everywhere"),
])
def test_two_action_rule_matches_decide(cost, rule):
    from geo_risk.decide import two_action_rule

    text = two_action_rule(cost, ["none", "patrol"])
    assert text.startswith(rule), text
    p = np.linspace(0, 1, 101)
    a, _ = decide(p, np.array(cost, dtype=float))
    if "where p" in text:
        t = two_action_threshold(np.array(cost, dtype=float))
        far = np.abs(p - t) > 1e-9
        expected = p > t if ">" in text else p < t
        np.testing.assert_array_equal((a == 1)[far], expected[far])
    else:
        assert (a == (1 if rule.startswith("patrol") else 0)).all()


def _risk_run(tmp_path, demo_config):
    import rasterio
    from affine import Affine

    from geo_risk.config import load_config

    cfg = load_config(demo_config, {"output_dir": str(tmp_path)})
    prob = np.array([[0.05, 0.5], [np.nan, 0.2]], dtype=np.float32).repeat(32, 0).repeat(32, 1)
    with rasterio.open(tmp_path / "risk.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="float32",
                       crs="EPSG:3395", transform=Affine(30, 0, 0, 0, -30, 0), nodata=np.nan) as dst:
        dst.write(prob, 1)
    return cfg


def test_run_decide_writes_both_and_logs_the_threshold(tmp_path, demo_config, caplog):
    import logging

    import rasterio

    from geo_risk.decide import run_decide

    cfg = _risk_run(tmp_path, demo_config)
    with caplog.at_level(logging.INFO, logger="geo_risk.decide"):
        result = run_decide(cfg)
    assert "decide: patrol where p > 0.1" in caplog.text
    with rasterio.open(result.decision) as d, rasterio.open(result.expected_cost) as c:
        assert d.read(1)[0, 0] == 0 and d.read(1)[0, 40] == 1 and d.read(1)[40, 0] == 255
        assert c.read(1)[0, 40] == pytest.approx(10.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision.tif", "expected_cost.tif", "risk.tif"]


def test_run_decide_failure_on_second_output_replaces_neither(tmp_path, demo_config, monkeypatch):
    import geo_risk.decide

    cfg = _risk_run(tmp_path, demo_config)
    (tmp_path / "decision.tif").write_text("old decision")
    real = geo_risk.decide.write_cog
    calls = []

    def fail_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(geo_risk.decide, "write_cog", fail_second)
    with pytest.raises(OSError, match="No space"):
        geo_risk.decide.run_decide(cfg)
    assert (tmp_path / "decision.tif").read_text() == "old decision"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision.tif", "risk.tif"]
