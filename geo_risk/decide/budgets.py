"""The Bayes rule under budgets: "at most B hectares (or B cost units) may receive action a".

Pure functions of a probability array, cost arrays and budgets. With ``x[i, a] ∈ {0, 1}``, one
action per pixel, expected costs ``R[a, i]`` (:func:`geo_risk.decide.rules.expected_costs`) and
budget weights ``w[a, i]`` (the hectares of pixel i, or what action a costs there)::

    minimise   Σ_i Σ_a R[a, i]·x[i, a]
    subject to Σ_i w[a, i]·x[i, a] ≤ B_a      for every budgeted action a.

Lagrangian relaxation: with a price λ_a ≥ 0 per unit of budget a, each pixel takes
``argmin_a R[a, i] + λ_a·w[a, i]`` — a pixel-local rule. For one budget the right price is found
by sorting: pixel i gains ``s_i = min_{b≠a} R[b, i] − R[a, i]`` from action a, ``s_i / w[a, i]``
per unit of budget, and the budget goes to the pixels with the largest ratio until it is spent;
λ_a is the ratio of the first pixel that no longer fits (the shadow price: what one more unit of
budget would save). With several budgets each price is set that way in turn, the others held
fixed, until none moves (coordinate ascent on the concave dual). Every plan comes with the dual
bound ``g(λ) = Σ_i min_a (R + λ·w)[a, i] − Σ_a λ_a·B_a``, a lower bound on the cost of any plan
that keeps the budgets, so ``gap = cost − g(λ)`` bounds how far the plan is from the optimum.
docs/decisions.md has the maths and the optimality tests (brute force and scipy's linprog).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geo_risk.decide.errors import BudgetError, DecisionWarning
from geo_risk.decide.rules import NODATA, check_cost, check_probability, expected_costs

_REL = 1e-12  # relative slack when comparing amounts of budget (sums of floats)
_MAX_PRICE = 1e290  # prices stay finite, so that price × weight is never ∞ × 0


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` units of budget may go to ``action``; a pixel receiving it uses ``weight``.

    ``weight`` is a number (e.g. the pixel area in ha) or an array of the probability's shape
    (e.g. what the action costs at each pixel). ``name`` names the budget in messages (the config
    key), ``unit`` its unit ("ha", "cost units").
    """

    action: int
    limit: float
    weight: float | np.ndarray = 1.0
    unit: str = "ha"
    name: str = ""

    def label(self) -> str:
        return self.name or f"budget of action {self.action}"


@dataclass(frozen=True)
class BudgetOutcome:
    """How a budget was used: ``binding`` when it limits the plan (shadow price > 0)."""

    action: int
    unit: str
    limit: float
    used: float
    use_without_budgets: float  # what the rule without any budget would use
    shadow_price: float  # expected cost saved by one more unit of budget, at the margin
    binding: bool
    name: str = ""


@dataclass(frozen=True)
class Plan:
    """Actions (uint8, 255 where p is NaN), their expected cost (float64, NaN there), the budgets'
    outcomes, the total expected cost, the dual bound and how the prices were found."""

    actions: np.ndarray
    expected_cost: np.ndarray
    budgets: tuple[BudgetOutcome, ...] = ()
    total: float = 0.0
    dual_bound: float = 0.0
    iterations: int = 0
    converged: bool = True
    prices: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def gap(self) -> float:
        """Total expected cost minus the dual bound: ≥ 0, and how much any plan could still save."""
        return self.total - self.dual_bound

    def binding(self) -> list[BudgetOutcome]:
        return [b for b in self.budgets if b.binding]


def _weights(budgets: Sequence[Budget], n_actions: int, valid: np.ndarray) -> np.ndarray:
    """W[a, i]: budget units pixel i uses when it receives action a (0 for unbudgeted actions)."""
    W = np.zeros((n_actions, int(valid.sum())))
    seen: dict[int, str] = {}
    for b in budgets:
        if not (isinstance(b.action, (int, np.integer)) and 0 <= b.action < n_actions):
            raise BudgetError(f"{b.label()}: action {b.action!r} is not one of the {n_actions} actions "
                              f"(0 … {n_actions - 1}) — name an action of decision.actions")
        if b.action in seen:
            raise BudgetError(f"{b.label()} and {seen[b.action]} both limit action {b.action}: give one budget "
                              "per action")
        seen[b.action] = b.label()
        try:
            limit = float(b.limit)
        except (TypeError, ValueError):
            raise BudgetError(f"{b.label()}: the limit must be a number of {b.unit}, got {b.limit!r}") from None
        if not np.isfinite(limit):
            raise BudgetError(f"{b.label()} is {limit}: give a finite number of {b.unit}, or remove the budget "
                              "to leave the action unlimited")
        if limit < 0:
            raise BudgetError(f"{b.label()} is {limit:g} {b.unit}: a budget is ≥ 0 — 0 forbids the action, "
                              "no budget leaves it unlimited")
        w = np.asarray(b.weight, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(W.shape[1], float(w))
        elif w.shape == valid.shape:
            w = w[valid]
        else:
            raise BudgetError(f"{b.label()}: weights of shape {w.shape} do not match the probability's "
                              f"{valid.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise BudgetError(f"{b.label()}: what a pixel uses of the budget must be finite and ≥ 0 "
                              f"({b.unit} per pixel)")
        W[b.action] = w
    if len(seen) == n_actions:
        raise BudgetError("every action has a budget, so some pixels may have no action left: leave at least one "
                          "action (e.g. 'none') without a budget")
    return W


def _price(saving: np.ndarray, w: np.ndarray, limit: float) -> float:
    """The price λ ≥ 0 at which the pixels with ``saving − λ·w > 0`` fit in ``limit``: 0 if every
    pixel that gains fits, else the saving per unit of the first pixel (by decreasing ratio) that
    does not."""
    gain = saving > 0
    if not gain.any() or w[gain].sum() <= limit * (1 + _REL):
        return 0.0
    s, ws = saving[gain], w[gain]
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.where(ws > 0, s / np.where(ws > 0, ws, 1), np.inf)
    ratio = np.minimum(ratio, _MAX_PRICE)  # a pixel of (almost) no weight: a huge but finite price
    if np.ptp(ws) == 0:  # one weight for all (hectares): the m best fit, λ is the (m+1)-th ratio
        m = min(int(np.floor(limit / ws[0] * (1 + _REL))), ratio.size - 1)
        return float(np.partition(ratio, ratio.size - m - 1)[ratio.size - m - 1])
    order = np.argsort(-ratio, kind="stable")
    fits = int(np.searchsorted(np.cumsum(ws[order]), limit * (1 + _REL), side="right"))
    return float(ratio[order[fits]])


def _usage(W: np.ndarray, act: np.ndarray, a: int) -> float:
    return float(W[a][act == a].sum())


def _repair(R: np.ndarray, W: np.ndarray, act: np.ndarray, budgets: Sequence[Budget], free: np.ndarray) -> None:
    """Move the pixels of an overspent budget with the least saving per unit to the best
    unbudgeted action until the budget holds (in place)."""
    best_free = free[R[free].argmin(axis=0)]
    for b in budgets:
        a = b.action
        over = _usage(W, act, a) - b.limit
        if over <= b.limit * _REL:
            continue
        members = np.flatnonzero(act == a)
        w = W[a, members]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = (R[best_free[members], members] - R[a, members]) / w
        order = np.argsort(ratio, kind="stable")
        k = int(np.searchsorted(np.cumsum(w[order]), over * (1 - _REL), side="left")) + 1
        drop = members[order[:k]]
        act[drop] = best_free[drop]


def _fill(R: np.ndarray, W: np.ndarray, act: np.ndarray, budgets: Sequence[Budget], rounds: int = 50) -> None:
    """Spend what is left of each budget on the pixels with the largest saving per unit that still
    fit (in place); a pixel moved off another budgeted action frees that budget."""
    n = act.size
    for _ in range(rounds):
        moved = False
        for b in budgets:
            a = b.action
            slack = b.limit - _usage(W, act, a)
            if slack <= 0:
                continue
            cur = R[act, np.arange(n)]
            s = cur - R[a]
            cand = np.flatnonzero((act != a) & (s > 0) & (W[a] <= slack * (1 + _REL)))
            if cand.size == 0:
                continue
            w = W[a, cand]
            with np.errstate(divide="ignore", over="ignore"):
                ratio = np.where(w > 0, s[cand] / np.where(w > 0, w, 1), np.inf)
            order = np.argsort(-ratio, kind="stable")
            k = int(np.searchsorted(np.cumsum(w[order]), slack * (1 + _REL), side="right"))
            if k:
                act[cand[order[:k]]] = a
                moved = True
        if not moved:
            return


def _total(R: np.ndarray, act: np.ndarray) -> float:
    return float(R[act, np.arange(act.size)].sum())


def _dual(R: np.ndarray, W: np.ndarray, lam: np.ndarray, budgets: Sequence[Budget]) -> float:
    """g(λ) = Σ_i min_a (R + λ·W)[a, i] − Σ_a λ_a·B_a: no plan that keeps the budgets costs less."""
    return float((R + lam[:, None] * W).min(axis=0).sum() - sum(lam[b.action] * float(b.limit) for b in budgets))


def _tol(R: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.abs(R).sum()))


def _polish(R: np.ndarray, W: np.ndarray, budgets: Sequence[Budget], lam: np.ndarray, act: np.ndarray,
            free: np.ndarray, max_pixels: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Several budgets: coordinate ascent can stop on a ridge of the dual, and pixels tied between
    actions at the prices must be shared out exactly. Solve the linear programme (scipy's HiGHS)
    over the pixels whose best and second-best priced actions are within δ, the others fixed, take
    its budget prices, and widen δ until the prices certify the programme's optimum over all
    pixels (dual bound = its cost) or the working set outgrows ``max_pixels``. Keeps the better
    of the plan given and the polished one."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n_actions, n = R.shape
    best_act, best_cost, best_lam = act, _total(R, act), lam
    tol = _tol(R)
    scale = max(1.0, float(np.abs(R).max()))
    for delta in scale * np.array([1e-9, 1e-6, 1e-4, 1e-2, 1e-1, 1.0, 10.0]):
        L = R + lam[:, None] * W
        two = np.partition(L, 1, axis=0)[:2] if n_actions > 2 else np.sort(L, axis=0)
        work = np.flatnonzero(two[1] - two[0] <= delta)
        if work.size > max_pixels:
            break
        if work.size == 0:
            continue
        base = L.argmin(axis=0)
        fixed = np.ones(n, dtype=bool)
        fixed[work] = False
        cap = np.array([float(b.limit) - W[b.action][fixed & (base == b.action)].sum() for b in budgets])
        if (cap < -tol).any():
            continue
        m = work.size
        cols = np.arange(m * n_actions)
        a_eq = coo_matrix((np.ones(m * n_actions), (np.repeat(np.arange(m), n_actions), cols)),
                          shape=(m, m * n_actions))
        rows = np.concatenate([np.full(m, k) for k in range(len(budgets))])
        idx = np.concatenate([np.arange(m) * n_actions + b.action for b in budgets])
        vals = np.concatenate([W[b.action, work] for b in budgets])
        a_ub = coo_matrix((vals, (rows, idx)), shape=(len(budgets), m * n_actions))
        res = linprog(R[:, work].T.ravel(), A_ub=a_ub, b_ub=np.maximum(cap, 0), A_eq=a_eq, b_eq=np.ones(m),
                      bounds=(0, 1), method="highs")
        if res.status != 0:
            continue
        new_lam = np.zeros(n_actions)
        for k, b in enumerate(budgets):
            new_lam[b.action] = max(0.0, -float(res.ineqlin.marginals[k]))
        x = res.x.reshape(m, n_actions)
        trial = base.copy()
        trial[work] = x.argmax(axis=1)
        frac = work[x.max(axis=1) < 1 - 1e-9]
        trial[frac] = free[R[free][:, frac].argmin(axis=0)]  # the few shared pixels: the best free action
        _repair(R, W, trial, budgets, free)
        _fill(R, W, trial, budgets)
        cost = _total(R, trial)
        if cost < best_cost - tol:
            best_act, best_cost, best_lam = trial, cost, new_lam
        lp_cost = float(R[base[fixed], np.flatnonzero(fixed)].sum() + res.fun)
        lam = new_lam
        if lp_cost - _dual(R, W, new_lam, budgets) <= tol:  # the programme's optimum over all pixels
            best_lam = new_lam
            break
    return best_act, best_lam


def _prices_and_plan(R: np.ndarray, W: np.ndarray, budgets: Sequence[Budget], free: np.ndarray,
                     max_iter: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Actions, prices, iterations and convergence on the pixels the budgets concern."""
    lam = np.zeros(R.shape[0])
    iterations, converged = 0, False
    for iterations in range(1, max_iter + 1):
        before = lam.copy()
        for b in budgets:
            a = b.action
            others = [R[k] + lam[k] * W[k] if lam[k] else R[k] for k in range(R.shape[0]) if k != a]
            best_other = functools.reduce(np.minimum, others[1:], others[0])  # rows: faster than min(axis=0)
            lam[a] = _price(best_other - R[a], W[a], float(b.limit))
        if len(budgets) == 1 or np.allclose(lam, before, rtol=1e-12, atol=1e-15):
            converged = True
            break
    act = (R + lam[:, None] * W).argmin(axis=0)
    _repair(R, W, act, budgets, free)
    _fill(R, W, act, budgets)
    if len(budgets) > 1 and _total(R, act) - _dual(R, W, lam, budgets) > _tol(R):
        act, lam = _polish(R, W, budgets, lam, act, free)
    return act, lam, iterations, converged


def solve(prob: np.ndarray, cost: np.ndarray, budgets: Sequence[Budget] = (), *, max_iter: int = 200) -> Plan:
    """The plan of minimum expected cost that keeps every budget (see the module's docstring).

    ``prob``: P(lost) per pixel, NaN where there is no value (those pixels get action 255 and use
    no budget). ``cost``: ``(actions, 2)`` or ``(actions, 2, *prob.shape)``. ``budgets``: at most
    one per action, and at least one action left without a budget. Warns
    (:class:`~geo_risk.decide.errors.DecisionWarning`) about a budget that can never bind.

    Only pixels whose best action without budgets is a budgeted one are concerned: with prices
    λ ≥ 0 an unbudgeted best action stays best, so the others keep it and the prices are found
    over the rest.
    """
    p = check_probability(prob)
    c = check_cost(cost, p.shape)
    valid = ~np.isnan(p)
    everywhere = bool(valid.all())
    cv = c if c.ndim == 2 or everywhere else c[:, :, valid]
    R = expected_costs(p if everywhere else p[valid], cv).reshape(c.shape[0], -1)  # (A, n)
    n_actions, n = R.shape
    unconstrained = R.argmin(axis=0)
    act, lam = unconstrained, np.zeros(n_actions)
    iterations, converged, dual_rest = 0, True, 0.0
    outcomes: tuple[BudgetOutcome, ...] = ()
    if budgets:
        W = _weights(budgets, n_actions, valid)
        budgeted = np.array([b.action for b in budgets], dtype=np.int64)
        free = np.setdiff1d(np.arange(n_actions), budgeted)
        for b in budgets:
            if b.limit > 0 and W[b.action].sum() <= b.limit:
                whole = " — the whole forest" if b.unit == "ha" else ""
                warnings.warn(f"{b.label()}: {b.limit:,.6g} {b.unit} is at least what giving the action to every "
                              f"pixel would use ({W[b.action].sum():,.6g} {b.unit}{whole}): it can never bind — "
                              "lower it to plan within a limit, or remove it", DecisionWarning, stacklevel=2)
        concerned = np.flatnonzero(np.isin(unconstrained, budgeted))
        act = unconstrained.copy()
        if concerned.size:
            sub, lam, iterations, converged = _prices_and_plan(R[:, concerned], W[:, concerned], budgets, free,
                                                               max_iter)
            act[concerned] = sub
            dual_rest = _dual(R[:, concerned], W[:, concerned], lam, budgets)
        others = np.ones(n, dtype=bool)
        others[concerned] = False
        dual_rest += float(R[unconstrained[others], np.flatnonzero(others)].sum())
        outcomes = tuple(
            BudgetOutcome(action=b.action, unit=b.unit, limit=float(b.limit), used=_usage(W, act, b.action),
                          use_without_budgets=_usage(W, unconstrained, b.action), shadow_price=float(lam[b.action]),
                          binding=bool(lam[b.action] > 0), name=b.name)
            for b in budgets)
    best = R[act, np.arange(n)]
    actions = np.full(p.shape, NODATA, dtype=np.uint8)
    actions[valid] = act
    expected = np.full(p.shape, np.nan)
    expected[valid] = best
    total = float(best.sum())
    return Plan(actions=actions, expected_cost=expected, budgets=outcomes, total=total,
                dual_bound=dual_rest if budgets else total, iterations=iterations, converged=converged,
                prices=lam)
