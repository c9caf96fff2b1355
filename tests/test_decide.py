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
