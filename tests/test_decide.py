"""The decision rules without budgets (geo_risk/decide/rules.py, costs.py) and the decision config,
checked against hand-computed values; bad input refused with the key and the fix."""

import numpy as np
import pytest

from geo_risk.decide import (CostMatrixError, DecisionInputError, DecisionLayerError, action_intervals, decide,
                             dominated_actions, expected_costs, multiplier, pixel_costs, probability_from_density,
                             rule_text, two_action_threshold)
from geo_risk_errors import ConfigError, InputDataError

COST = np.array([[0.0, 100.0], [10.0, 10.0]])  # none: 0 if forest stays, 100 if lost; patrol: 10 always
THREE = np.array([[0.0, 100.0], [2.0, 60.0], [10.0, 25.0]])  # none / monitor / patrol (the demo's)


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


def test_three_action_intervals_by_hand():
    # none→monitor where 100p = 2 + 58p: p = 2/42; monitor→patrol where 2 + 58p = 10 + 15p: p = 8/43
    (a0, lo0, hi0), (a1, lo1, hi1), (a2, lo2, hi2) = action_intervals(THREE)
    assert (a0, a1, a2) == (0, 1, 2) and lo0 == 0 and hi2 == 1
    assert hi0 == lo1 == pytest.approx(2 / 42) and hi1 == lo2 == pytest.approx(8 / 43)
    assert rule_text(THREE, ["none", "monitor", "patrol"]) == (
        "none where p < 0.0476, monitor where 0.0476 < p < 0.186, patrol where p > 0.186")
    p = np.array([0.04, 0.05, 0.18, 0.19])
    np.testing.assert_array_equal(decide(p, THREE)[0], [0, 1, 1, 2])


def test_nan_probability_is_nodata():
    a, c = decide(np.array([np.nan, 0.5]), COST)
    assert a[0] == 255 and np.isnan(c[0]) and a[1] == 1


@pytest.mark.parametrize("cost,match", [
    (np.ones((2, 3)), r"\(actions × 2\) matrix.*got shape \(2, 3\)"),
    (np.ones(2), r"\(actions × 2\) matrix"),
    ([["0", "a lot"], [10, 10]], "must hold numbers"),
    ([[0, np.nan], [10, 10]], r"decision.cost\[0\]\[1\] is nan: every cost must be a finite number"),
    ([[0, 100], [np.inf, 10]], r"decision.cost\[1\]\[0\] is inf"),
    ([[0, 100], [-10, 10]], r"decision.cost\[1\]\[0\] is -10: costs must be ≥ 0"),
])
def test_bad_cost_matrix_is_refused(cost, match):
    """Today's silent failures: NaN costs gave 'total expected cost 0', ∞ patrolled everywhere."""
    with pytest.raises(CostMatrixError, match=match) as e:
        decide(np.array([0.5]), cost)
    assert isinstance(e.value, InputDataError)


def test_bad_per_pixel_costs_name_the_pixels():
    c = np.broadcast_to(COST[:, :, None], (2, 2, 3)).copy()
    c[1, 0, 2] = np.nan
    with pytest.raises(CostMatrixError, match="1 pixel.*NaN or infinite.*damage_scale"):
        expected_costs(np.array([0.1, 0.2, 0.3]), c)
    with pytest.raises(CostMatrixError, match=r"per pixel: actions × 2 × \(4,\)"):
        expected_costs(np.zeros(4), c)


@pytest.mark.parametrize("prob,match", [(np.array([0.5, 1.2]), "outside"), (np.array([np.inf]), "infinite"),
                                        (np.array(["x"]), "numbers")])
def test_bad_probability_is_refused(prob, match):
    with pytest.raises(DecisionInputError, match=match):
        decide(prob, COST)


def test_dominated_actions():
    # "monitor" costs 50 if the forest stays and 60 if it is lost: patrol (10, 10) is always cheaper
    assert dominated_actions([[0, 100], [50, 60], [10, 10]]) == [1]
    assert dominated_actions(THREE) == []
    assert dominated_actions([[0, 10], [10, 10]]) == [1]  # patrol only ties at p = 1: never strictly better
    # per pixel: monitor is dominated at pixel 0 but chosen at some p at pixel 1 → not dominated overall
    c = np.stack([np.array([[0, 100], [50, 60], [10, 10]]), THREE], axis=-1).astype(float)
    assert dominated_actions(c) == []


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


# ------------------------------------------------------------------ spatially varying costs
def test_pixel_costs_by_hand():
    """C_i[a, stays] = k_a·t_i, C_i[a, lost] = k_a·t_i + d_a·v_i with k = C[:, 0], d = C[:, 1] − C[:, 0]."""
    t, v = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    c = pixel_costs(THREE, t, v)
    assert c.shape == (3, 2, 2)
    np.testing.assert_allclose(c[..., 0], THREE)  # multipliers 1: the config's matrix
    np.testing.assert_allclose(c[..., 1], [[0, 300], [4, 4 + 58 * 3], [20, 20 + 15 * 3]])
    assert pixel_costs(THREE) is not None and pixel_costs(THREE).shape == (3, 2)
    # at pixel 1 a loss is worth three times as much: monitoring pays from p = 4 / (300 − 174) on
    p = np.array([0.03, 0.03])
    np.testing.assert_array_equal(decide(p, c)[0], [0, 0])
    np.testing.assert_array_equal(decide(np.array([0.04, 0.04]), c)[0], [0, 1])


def test_multiplier_by_hand():
    eco, dist, zone, ras = np.array([0.0, 0.5, 1.0]), np.array([0.0, 1000.0, 5000.0]), np.array([1, 2, 3]), \
        np.array([1.0, 2.0, 1.0])
    m = multiplier(3, eco=eco, eco_factor=2.0, distance_m=dist, per_km=0.2, zone=zone, zone_factors={3: 0.5},
                   raster=ras)
    np.testing.assert_allclose(m, [1 * 1 * 1 * 1, 2 * 1.2 * 1 * 2, 3 * 2 * 0.5 * 1])
    assert multiplier(3) is None
    with pytest.raises(DecisionLayerError, match="eco layer.*1 forest pixel.*no value"):
        multiplier(3, eco=np.array([0.1, np.nan, 0.2]), eco_factor=1.0, names={"eco": "the eco layer"})
    with pytest.raises(DecisionLayerError, match="negative"):
        multiplier(3, raster=np.array([1.0, -1.0, 1.0]))


# ------------------------------------------------------------------ a VT0007 allocation as the probability
def test_decisions_on_a_vt0007_allocation():
    """The rules take any probability array: VT0007's adjusted density (ha/pixel/yr) over the
    period is one, and a budget then goes to the pixels of the highest allocated density."""
    from geo_risk.decide import Budget, solve
    from geo_risk.evaluate import vt0007 as vt

    rng = np.random.default_rng(0)
    forest = np.ones((20, 20), dtype=bool)
    forest[:2] = False
    classes = rng.integers(1, 31, (20, 20))
    loss = (rng.random((20, 20)) < classes / 40) & forest
    density = vt.class_density(classes, loss, forest, years=5, pixel_area_ha=0.09)
    alloc = vt.allocate(classes, density, 0.5, forest, years=5)
    p = probability_from_density(alloc.density_ha_per_pixel_yr, pixel_area_ha=0.09, years=5)
    assert np.isnan(p[~forest]).all() and (p[forest] >= 0).all() and (p[forest] <= 1).all()
    assert np.nansum(p) * 0.09 == pytest.approx(0.5 * 5)  # the allocated hectares over the period
    plan = solve(p, THREE, [Budget(2, limit=0.9, weight=0.09)])  # 10 pixels of patrol
    patrolled = plan.actions == 2
    # patrol's saving over the best alternative grows with p: the 10 pixels of highest density
    assert patrolled.sum() == 10 and p[patrolled].min() >= p[forest & ~patrolled].max()
    with pytest.raises(DecisionInputError, match="must be > 0"):
        probability_from_density(alloc.density_ha_per_pixel_yr, 0.0, 5)


# ------------------------------------------------------------------ the config
@pytest.mark.parametrize("decision,match", [
    ({"cost": [[0, float("nan")], [2, 60], [10, 25]]}, r"cost\[0\]\[1\] \(none, lost\) is nan: every cost must be"),
    ({"cost": [[0, 100], [2, float("inf")], [10, 25]]}, r"cost\[1\]\[1\] \(monitor, lost\) is inf"),
    ({"cost": [[0, 100], [-2, 60], [10, 25]]}, r"cost\[1\]\[0\] \(monitor, stays_forest\) is -2: costs must be ≥ 0"),
    ({"cost": [[0, 100], [2, "lots"], [10, 25]]}, "decision.cost.1.1: Input should be a valid number"),
    ({"cost": [[0, 100], [10, 25]]}, "cost must be a 3×2 matrix"),
    ({"budgets": [{"action": "patrol", "max_ha": -5}]}, "budget of 'patrol': max_ha is -5 — a budget is ≥ 0"),
    ({"budgets": [{"action": "patrol", "max_ha": float("nan")}]}, "max_ha is nan — give a finite number"),
    ({"budgets": [{"action": "patrl", "max_ha": 5}]}, "action 'patrl' is not one of actions"),
    ({"budgets": [{"action": "patrol", "max_ha": 5, "max_cost": 3}]}, "give one of max_ha"),
    ({"budgets": [{"action": "patrol", "max_ha": 5}, {"action": "patrol", "max_cost": 5}]}, "one budget per action"),
    ({"budgets": [{"action": a, "max_ha": 5} for a in ("none", "monitor", "patrol")]}, "leave at least one action"),
    ({"damage_scale": {"per_km": 0.2}}, "per_km needs distance_band"),
    ({"action_cost_scale": {"distance_band": "altitude", "per_km": 1}}, "distance band in metres"),
    ({"damage_scale": {"zones": {"Basse-Terre": -1}}}, "a zone's factor is a finite number ≥ 0"),
    ({"uncertainty_k": -1}, "decision.uncertainty_k: Input should be greater than or equal to 0"),
    ({"actions": ["none", "none", "patrol"]}, "every action needs its own name"),
])
def test_bad_decision_config_names_the_key(demo_config, tmp_path, decision, match):
    """Written into a YAML file (NaN as YAML's .nan, ∞ as .inf): the message names the key."""
    import yaml

    from geo_risk.config import load_config

    raw = yaml.safe_load(demo_config.read_text())
    raw["data_dir"] = str((demo_config.parent / raw["data_dir"]).resolve())
    raw["decision"].update(decision)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match) as e:
        load_config(bad)
    assert "bad.yaml" in str(e.value)


def test_budget_given_on_the_command_line_is_named(demo_config):
    from geo_risk.config import load_config

    with pytest.raises(ConfigError, match=r"--set decision.budgets=.*max_ha is -5"):
        load_config(demo_config, {"decision": {"budgets": [{"action": "patrol", "max_ha": -5}]}})


def test_demo_config_is_a_plan(demo_config):
    from geo_risk.config import load_config

    d = load_config(demo_config).decision
    assert d.actions == ["none", "monitor", "patrol"] and d.uncertainty_k == 0
    assert [(b.action, b.max_ha) for b in d.budgets] == [("patrol", 2000), ("monitor", 20000)]
    assert dominated_actions(d.cost) == []
