"""Budgets (geo_risk/decide/budgets.py): hand-computed cases, bad budgets, and optimality on small
random cases against brute force (every assignment) and the linear programme (scipy's linprog)."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from geo_risk.decide import Budget, BudgetError, DecisionWarning, decide, expected_costs, solve

THREE = np.array([[0.0, 100.0], [2.0, 60.0], [10.0, 25.0]])  # none / monitor / patrol


def test_budget_goes_to_the_largest_savings_and_reports_the_shadow_price():
    """Two action, patrol (10) vs none (100·p): saving 100p − 10; one pixel of budget goes to p = 0.9."""
    cost = np.array([[0.0, 100.0], [10.0, 10.0]])
    p = np.array([0.3, 0.9, 0.05, 0.5, np.nan])
    plan = solve(p, cost, [Budget(1, limit=2.0, weight=1.0)])  # two pixels of patrol
    np.testing.assert_array_equal(plan.actions, [0, 1, 0, 1, 255])
    (b,) = plan.budgets
    assert b.binding and b.used == 2 and b.use_without_budgets == 3  # the rule without the budget patrols p > 0.1
    assert b.shadow_price == pytest.approx(100 * 0.3 - 10)  # the first pixel left out saves 20
    np.testing.assert_allclose(plan.expected_cost[:4], [30, 10, 5, 10])
    assert np.isnan(plan.expected_cost[4]) and plan.total == pytest.approx(55)
    assert plan.dual_bound == pytest.approx(plan.total) and plan.gap == pytest.approx(0)


def test_saving_is_against_the_best_alternative_not_against_none():
    """With monitor free of budget, patrol's saving is over monitor where monitor is better."""
    p = np.array([0.1, 0.3, 0.6])
    # R: none 10/30/60, monitor 7.8/19.4/36.8, patrol 11.5/14.5/19 → savings over the best other: −/4.9/17.8
    plan = solve(p, THREE, [Budget(2, limit=1.0, weight=1.0)])
    np.testing.assert_array_equal(plan.actions, [1, 1, 2])
    assert plan.budgets[0].shadow_price == pytest.approx(19.4 - 14.5)


def test_budget_that_does_not_bind():
    p = np.array([0.3, 0.9, 0.05])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 2.5 of 3 pixels: no warning, the budget just does not bind
        plan = solve(p, THREE, [Budget(2, limit=2.5, weight=1.0)])
    (b,) = plan.budgets
    assert not b.binding and b.shadow_price == 0 and b.used == 2 == b.use_without_budgets
    np.testing.assert_array_equal(plan.actions, decide(p, THREE)[0])


def test_budget_larger_than_the_forest_warns():
    with pytest.warns(DecisionWarning,
                      match=r"budget of patrol: 500 ha .*would use \(0\.27 ha — the whole forest\).*never bind"):
        solve(np.array([0.3, 0.9, 0.05]), THREE, [Budget(2, limit=500, weight=0.09, name="budget of patrol")])


def test_zero_budget_forbids_the_action_and_nan_pixels_use_none():
    p = np.array([0.9, np.nan, 0.95])
    plan = solve(p, THREE, [Budget(2, limit=0.0, weight=0.09)])
    np.testing.assert_array_equal(plan.actions, [1, 255, 1])
    assert plan.budgets[0].used == 0 and plan.budgets[0].binding


def test_cost_unit_budget_with_free_pixels():
    """Weights per pixel (what patrol costs there): a pixel where patrol costs nothing uses no budget."""
    p = np.array([0.9, 0.9, 0.9])
    cost = np.broadcast_to(THREE[:, :, None], (3, 2, 3)).copy()
    cost[2, :, 0] -= 10  # patrol is free at pixel 0 (a ranger post): cost (0, 15)
    plan = solve(p, cost, [Budget(2, limit=10.0, weight=cost[2, 0])])
    np.testing.assert_array_equal(plan.actions, [2, 2, 1])  # pixel 0 for free, then one pixel of 10 units
    assert plan.budgets[0].used == 10 and plan.budgets[0].unit == "ha"


@pytest.mark.parametrize("budgets,match", [
    ([Budget(2, limit=-1.0)], "is -1 ha: a budget is ≥ 0"),
    ([Budget(2, limit=float("nan"))], "give a finite number"),
    ([Budget(2, limit="lots")], "must be a number"),
    ([Budget(5, limit=1.0)], "action 5 is not one of the 3 actions"),
    ([Budget(2, limit=1.0), Budget(2, limit=2.0)], "one budget per action"),
    ([Budget(a, limit=1.0) for a in range(3)], "leave at least one action"),
    ([Budget(2, limit=1.0, weight=np.ones(5))], "do not match"),
    ([Budget(2, limit=1.0, weight=-1.0)], "finite and ≥ 0"),
])
def test_bad_budgets_are_refused(budgets, match):
    with pytest.raises(BudgetError, match=match):
        solve(np.array([0.2, 0.5]), THREE, budgets)


# ------------------------------------------------------------------ optimality on small random cases
def _lp(R: np.ndarray, W: np.ndarray, budgets) -> float:
    """The linear programme: x[i, a] ∈ [0, 1], Σ_a x[i, a] = 1, Σ_i W[a, i]·x[i, a] ≤ B_a."""
    n_actions, n = R.shape
    a_eq = np.kron(np.eye(n), np.ones(n_actions))
    a_ub = np.zeros((len(budgets), n * n_actions))
    for k, b in enumerate(budgets):
        a_ub[k, np.arange(n) * n_actions + b.action] = W[b.action]
    res = linprog(R.T.ravel(), A_ub=a_ub, b_ub=[b.limit for b in budgets], A_eq=a_eq, b_eq=np.ones(n),
                  bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(res.fun)


def _brute_force(R: np.ndarray, W: np.ndarray, budgets) -> float:
    n_actions, n = R.shape
    best = np.inf
    for combo in itertools.product(range(n_actions), repeat=n):
        a = np.array(combo)
        if all(W[b.action][a == b.action].sum() <= b.limit + 1e-9 for b in budgets):
            best = min(best, R[a, np.arange(n)].sum())
    return best


@st.composite
def cases(draw, max_pixels: int, uniform: bool):
    n = draw(st.integers(1, max_pixels))
    n_actions = draw(st.integers(2, 4))
    p = np.array(draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0]) | st.floats(0, 1),
                               min_size=n, max_size=n)))
    cost = np.array(draw(st.lists(st.lists(st.integers(0, 30) | st.floats(0, 30), min_size=2, max_size=2),
                                  min_size=n_actions, max_size=n_actions)), dtype=float)
    actions = draw(st.lists(st.integers(0, n_actions - 1), min_size=1, max_size=n_actions - 1, unique=True))
    budgets, W = [], np.zeros((n_actions, n))
    for a in actions:
        if uniform:  # hectares: every pixel 0.09 ha
            w = 0.09
            limit = draw(st.integers(0, n)) * 0.09
        else:  # cost units: weights differ per pixel
            # (no subnormal weights: HiGHS reads them as 0, which makes the programme another one)
            w = np.array(draw(st.lists(st.just(0.0) | st.floats(1e-3, 5), min_size=n, max_size=n)))
            limit = draw(st.floats(0, 3 * n))
        budgets.append(Budget(a, limit, w))
        W[a] = w
    return p, cost, budgets, W


def _feasible(plan, W, budgets) -> bool:
    return all(W[b.action][plan.actions == b.action].sum() <= b.limit * (1 + 1e-9) + 1e-12 for b in budgets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_pixels=6, uniform=True))
def test_hectare_budgets_match_brute_force(case):
    """Hectare budgets (one weight per pixel): the plan is the best of every assignment — the
    programme is a transportation problem, so its optimum is whole pixels."""
    p, cost, budgets, W = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        plan = solve(p, cost, budgets)
    R = expected_costs(p, cost)
    assert _feasible(plan, W, budgets)
    assert plan.total == pytest.approx(_brute_force(R, W, budgets), rel=1e-9, abs=1e-9)
    assert plan.dual_bound <= plan.total + 1e-9


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_pixels=25, uniform=True))
def test_hectare_budgets_match_the_linear_programme(case):
    p, cost, budgets, W = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        plan = solve(p, cost, budgets)
    lp = _lp(expected_costs(p, cost), W, budgets)
    assert _feasible(plan, W, budgets)
    assert plan.total == pytest.approx(lp, rel=1e-9, abs=1e-7)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_pixels=25, uniform=False))
def test_cost_budgets_are_within_one_pixel_per_budget_of_the_linear_programme(case):
    """Weights per pixel: the programme's optimum may share K pixels between actions (K budgets);
    the plan keeps whole pixels, so it may cost up to K pixels' savings more, never less — and its
    dual bound never exceeds the programme's optimum."""
    p, cost, budgets, W = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        plan = solve(p, cost, budgets)
    R = expected_costs(p, cost)
    lp = _lp(R, W, budgets)
    assert _feasible(plan, W, budgets)
    tol = 1e-7 * max(1.0, abs(lp))
    assert plan.dual_bound <= lp + tol
    assert lp - tol <= plan.total <= lp + len(budgets) * float((R.max(0) - R.min(0)).max()) + tol


def test_no_budget_is_the_bayes_rule():
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    p[::7] = np.nan
    plan = solve(p, THREE)
    a, c = decide(p, THREE)
    np.testing.assert_array_equal(plan.actions, a)
    np.testing.assert_allclose(plan.expected_cost, c, rtol=1e-6)
    assert plan.budgets == () and plan.gap == pytest.approx(0)
