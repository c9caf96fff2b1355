"""Stage 4 — decide: read risk.tif (and the layers the costs need), write the plan.

Outputs, renamed into place together (``tiles.atomic.atomic_files``): ``decision.tif`` (uint8
action index, colour table, 255 off forest), ``expected_cost.tif`` (float32 expected cost of that
action under risk.tif's probability) and ``decision_summary.json`` (hectares and expected cost per
action, the budgets and which bind, the cost against no action and against the rule without
budgets). The rules themselves are pure functions (``rules``, ``budgets``, ``costs``).
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import geo_risk.decide as package  # the COG writer is looked up on the package: tests replace it there
from geo_risk.config import DecisionConfig, RunConfig
from geo_risk.decide.budgets import Budget, Plan, solve
from geo_risk.decide.costs import pixel_costs
from geo_risk.decide.errors import DecisionInputError, DecisionWarning
from geo_risk.decide.layers import CostLayers, on_grid, pixel_area_ha, read_raster
from geo_risk.decide.rules import NODATA, dominated_actions, expected_costs, rule_text, two_action_rule
from geo_risk.paths import RunPaths
from geo_risk.provenance import provenance_tags
from geo_risk_errors import InputDataError
from tiles.atomic import atomic_files

log = logging.getLogger("geo_risk.decide")

#: colours of actions 0, 1, 2… (grey: do nothing, amber: watch, red: patrol, purple: stronger)
PALETTE = [(200, 200, 200, 255), (230, 85, 13, 255), (165, 15, 21, 255), (84, 39, 143, 255)]
PALETTE_3 = [(200, 200, 200, 255), (253, 174, 97, 255), (165, 15, 21, 255)]  # none / monitor / patrol
SUMMARY_NAME = "decision_summary.json"
UNCERTAINTY_NAME = "uncertainty.tif"
SUMMARY_FORMAT = 1


@dataclass(frozen=True)
class ActionRow:
    action: str
    pixels: int
    area_ha: float
    expected_cost: float


@dataclass(frozen=True)
class BudgetRow:
    action: str
    unit: str  # "ha" or "cost units"
    limit: float
    used: float
    use_without_budgets: float  # what the rule without any budget would use
    binding: bool
    shadow_price: float  # expected cost one more unit of budget would save


@dataclass(frozen=True)
class DecisionSummary:
    """``decision_summary.json``: what the plan does and what it costs (all costs in cost units)."""

    run: str
    actions: list[ActionRow]
    budgets: list[BudgetRow]
    forest_ha: float
    pixel_area_ha: float
    expected_cost: float  # of the plan, under risk.tif's p
    no_action_cost: float  # every pixel the first action
    unconstrained_cost: float  # the Bayes rule without budgets (same p and uncertainty rule)
    saved_vs_no_action: float
    rule_without_budgets: str  # the config's matrix as intervals of p (before per-pixel scaling)
    cost_matrix: list[list[float]]
    damage_scale: dict
    action_cost_scale: dict
    uncertainty_k: float  # 0: actions chosen on p; > 0: on min(1, p + k·σ)
    risk_neutral_cost: float | None  # with uncertainty_k > 0: the plan chosen on p alone
    dual_bound: float  # no plan keeping the budgets has a lower expected cost (on the chosen probability)
    warnings: list[str] = field(default_factory=list)
    format: int = SUMMARY_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False, default=str)

    @classmethod
    def read(cls, path: Path) -> DecisionSummary:
        d = json.loads(Path(path).read_text())
        if d.get("format") != SUMMARY_FORMAT:
            raise InputDataError(f"{path} has format {d.get('format')}, this geo-risk reads {SUMMARY_FORMAT} — run "
                                 "`geo-risk decide CONFIG` again")
        d["actions"] = [ActionRow(**r) for r in d["actions"]]
        d["budgets"] = [BudgetRow(**r) for r in d["budgets"]]
        return cls(**d)

    def table(self) -> str:
        """The summary as the text table the stage logs."""
        w = max(8, *(len(r.action) for r in self.actions))
        lines = [f"{'action':<{w}} {'pixels':>10} {'ha':>10} {'expected cost':>14}"]
        lines += [f"{r.action:<{w}} {r.pixels:>10,} {r.area_ha:>10,.0f} {r.expected_cost:>14,.0f}"
                  for r in self.actions]
        lines.append(f"{'total':<{w}} {sum(r.pixels for r in self.actions):>10,} {self.forest_ha:>10,.0f} "
                     f"{self.expected_cost:>14,.0f}")
        pct = 100 * self.saved_vs_no_action / self.no_action_cost if self.no_action_cost else 0.0
        lines.append(f"no action ({self.actions[0].action} everywhere): {self.no_action_cost:,.0f}; this plan saves "
                     f"{self.saved_vs_no_action:,.0f} ({pct:.1f} %)")
        lines.append(f"without budgets ({self.rule_without_budgets}): {self.unconstrained_cost:,.0f}")
        for b in self.budgets:
            state = (f"binds — shadow price {b.shadow_price:,.4g} per {'ha' if b.unit == 'ha' else 'cost unit'}"
                     if b.binding else "does not bind")
            lines.append(f"budget {b.action}: {b.used:,.0f} of {b.limit:,.0f} {b.unit} used (without budgets: "
                         f"{b.use_without_budgets:,.0f}); {state}")
        if self.uncertainty_k:
            lines.append(f"cautious rule on p + {self.uncertainty_k:g}·σ: expected cost {self.expected_cost:,.0f} vs "
                         f"{self.risk_neutral_cost:,.0f} choosing on p alone")
        return "\n".join(lines)


@dataclass(frozen=True)
class DecideResult:
    decision: Path
    expected_cost: Path
    area_ha: dict[str, float]
    total_expected_cost: float
    summary_path: Path | None = None
    summary: DecisionSummary | None = None


def config_budgets(dc: DecisionConfig, pixel_area_ha: float, cost: np.ndarray) -> list[Budget]:
    """The config's budgets for :func:`~geo_risk.decide.budgets.solve`: ``max_ha`` weighs each pixel by
    its area, ``max_cost`` by what the action costs there (``cost[a, stays_forest]``, per pixel when
    ``cost`` is ``(actions, 2, n)``)."""
    out = []
    for b in dc.budgets:
        a = dc.actions.index(b.action)
        if b.max_ha is not None:
            out.append(Budget(a, b.max_ha, pixel_area_ha, "ha", f"budget of {b.action} (max_ha)"))
        else:
            out.append(Budget(a, b.max_cost, np.asarray(cost)[a, 0], "cost units", f"budget of {b.action} (max_cost)"))
    return out


def _tags(cfg: RunConfig, k_applied: float, plan: Plan) -> dict[str, str]:
    dc = cfg.decision
    fc = cfg.periods.forecast
    return {
        **provenance_tags(cfg, RunPaths(cfg.run_dir).checkpoint, period=f"{fc.start_year}-{fc.end_year}"),
        "run": cfg.name,
        "actions": json.dumps(dc.actions),
        "categories": ", ".join(f"{i}={a}" for i, a in enumerate(dc.actions)),
        "states": json.dumps(dc.states),
        "cost_matrix": json.dumps(dc.cost),
        "budgets": json.dumps([b.model_dump(exclude_none=True) for b in dc.budgets]),
        "binding_budgets": json.dumps([dc.actions[b.action] for b in plan.binding()]),
        "damage_scale": json.dumps(dc.damage_scale.model_dump(mode="json", exclude_defaults=True)),
        "action_cost_scale": json.dumps(dc.action_cost_scale.model_dump(mode="json", exclude_defaults=True)),
        "uncertainty_k": f"{k_applied:g}",
    }


def run_decide(cfg: RunConfig) -> DecideResult:
    """Read ``risk.tif``; write ``decision.tif``, ``expected_cost.tif`` and ``decision_summary.json``."""
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    dc = cfg.decision
    if not paths.probability.is_file():
        raise InputDataError(f"{paths.probability} not found — run `geo-risk predict CONFIG` first")
    prob, grid = read_raster(paths.probability, "risk.tif")
    valid = np.isfinite(prob)
    if not valid.any():
        raise DecisionInputError(f"{paths.probability} has no pixel with a probability — run `geo-risk predict "
                                 "CONFIG` again and check that the forecast period has forest")
    p = prob[valid]
    if (p < 0).any() or (p > 1).any():
        raise DecisionInputError(f"{paths.probability} holds values outside [0, 1] — it is not a probability map; "
                                 "run `geo-risk predict CONFIG` again")
    notes: list[str] = []

    k = dc.uncertainty_k
    q = p
    unc_path = paths.root / UNCERTAINTY_NAME  # what predict writes beside risk.tif
    if k > 0:
        if unc_path.is_file():
            sigma = on_grid(unc_path, "uncertainty.tif", grid, paths.probability)[valid]
            missing = ~np.isfinite(sigma)
            if missing.any():
                notes.append(f"uncertainty.tif has no value at {int(missing.sum()):,} pixels with a probability: "
                             "σ = 0 there")
            q = np.clip(p + k * np.nan_to_num(sigma, nan=0.0).clip(min=0), 0.0, 1.0)
        else:
            notes.append(f"decision.uncertainty_k is {k:g} but {unc_path} is missing: actions are chosen on p "
                         "alone — run `geo-risk predict CONFIG` (it writes uncertainty.tif) to use it")
            k = 0.0

    layers = CostLayers(cfg, paths, grid, valid)
    cost = pixel_costs(np.array(dc.cost, dtype=np.float64),
                       layers.multiplier(dc.action_cost_scale, "decision.action_cost_scale"),
                       layers.multiplier(dc.damage_scale, "decision.damage_scale"))
    pixel_ha = pixel_area_ha(grid)
    if not math.isfinite(pixel_ha) and any(b.max_ha is not None for b in dc.budgets):
        raise DecisionInputError(f"decision.budgets: max_ha needs a grid in metres, and {paths.probability} is not "
                                 "on a projected grid, so its pixels have no area in ha — use max_cost")
    budgets = config_budgets(dc, pixel_ha, cost)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DecisionWarning)
        plan = solve(q, cost, budgets)
        risk_neutral = solve(p, cost, budgets) if k > 0 else None
        for a in dominated_actions(cost):
            warnings.warn(f"action {dc.actions[a]!r} is never the cheapest for any probability (its costs "
                          f"{dc.cost[a]} are dominated by the other actions'): it is never chosen — change its costs "
                          "or remove it", DecisionWarning, stacklevel=1)
    for w in caught:
        notes.append(str(w.message).replace(" (max_ha)", "").replace(" (max_cost)", ""))
    for note in notes:
        log.warning("decide: %s", note)

    act = plan.actions  # over the decided pixels
    r_p = expected_costs(p, cost)
    idx = np.arange(p.size)
    chosen = r_p[act, idx]
    unconstrained = expected_costs(q, cost).argmin(axis=0) if k > 0 else r_p.argmin(axis=0)
    total, none, free = float(chosen.sum()), float(r_p[0].sum()), float(r_p[unconstrained, idx].sum())

    decision = np.full(prob.shape, NODATA, dtype=np.uint8)
    decision[valid] = act
    expected = np.full(prob.shape, np.nan, dtype=np.float32)
    expected[valid] = chosen
    n = len(dc.actions)
    ha = pixel_ha if math.isfinite(pixel_ha) else 0.0
    rows = [ActionRow(a, int((act == i).sum()), round(float((act == i).sum() * ha), 6), float(chosen[act == i].sum()))
            for i, a in enumerate(dc.actions)]
    summary = DecisionSummary(
        run=cfg.name, actions=rows,
        budgets=[BudgetRow(dc.actions[o.action], o.unit, o.limit, o.used, o.use_without_budgets, o.binding,
                           o.shadow_price) for o in plan.budgets],
        forest_ha=float(p.size * ha), pixel_area_ha=ha, expected_cost=total, no_action_cost=none,
        unconstrained_cost=free, saved_vs_no_action=none - total,
        rule_without_budgets=rule_text(dc.cost, dc.actions) + (
            "" if dc.damage_scale.is_identity and dc.action_cost_scale.is_identity
            else " at the config's matrix; the per-pixel costs move these thresholds"),
        cost_matrix=[list(r) for r in dc.cost],
        damage_scale=dc.damage_scale.model_dump(mode="json", exclude_defaults=True),
        action_cost_scale=dc.action_cost_scale.model_dump(mode="json", exclude_defaults=True),
        uncertainty_k=k,
        risk_neutral_cost=(float(r_p[risk_neutral.actions, idx].sum()) if risk_neutral is not None else None),
        dual_bound=plan.dual_bound, warnings=notes)

    palette = PALETTE_3 if n == 3 else PALETTE
    colormap = {i: palette[i % len(palette)] for i in range(n)}
    tags = _tags(cfg, k, plan)
    summary_path = paths.root / SUMMARY_NAME
    with atomic_files([paths.decision, paths.expected_cost, summary_path]) as (t_decision, t_cost, t_summary):
        package.write_cog(t_decision, decision, grid.crs, grid.transform, nodata=NODATA, colormap=colormap,
                          tags={**tags, "description": "action of minimum expected cost (see categories)",
                                "units": "action index"},
                          overview_resampling="nearest", atomic=False)
        package.write_cog(t_cost, expected, grid.crs, grid.transform, nodata=np.nan,
                          tags={**tags, "description": "expected cost of the chosen action under risk.tif",
                                "units": "cost units"},
                          overview_resampling="average", atomic=False)
        t_summary.write_text(summary.to_json())

    if n == 2:
        log.info("decide: %s", two_action_rule(dc.cost, dc.actions))
    log.info("decide: %d pixels in %.1f s\n%s", p.size, time.perf_counter() - t0, summary.table())
    return DecideResult(paths.decision, paths.expected_cost, {r.action: r.area_ha for r in rows}, total,
                        summary_path, summary)
