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
import rasterio

import geo_risk.decide as package  # the COG writer is looked up on the package: tests replace it there
from geo_risk.config import CostScaleConfig, DecisionConfig, RunConfig
from geo_risk.decide.budgets import Budget, Plan, solve
from geo_risk.decide.costs import multiplier, pixel_costs
from geo_risk.decide.errors import DecisionInputError, DecisionLayerError, DecisionWarning
from geo_risk.decide.rules import NODATA, dominated_actions, expected_costs, rule_text, two_action_rule
from geo_risk.export import true_values
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


@dataclass(frozen=True)
class _Grid:
    crs: object
    transform: object
    shape: tuple[int, int]

    def same(self, other: _Grid) -> bool:
        return (self.shape == other.shape and self.crs == other.crs
                and self.transform.almost_equals(other.transform, precision=1e-6 * abs(self.transform.a)))

    def describe(self) -> str:
        t = self.transform
        h, w = self.shape
        return (f"{w}×{h} px of {abs(t.a):g}×{abs(t.e):g}, origin ({t.c:g}, {t.f:g}), "
                f"{self.crs.to_string() if self.crs else 'no CRS'}")

    def warp_hint(self) -> str:
        t = self.transform
        h, w = self.shape
        xmin, ymax = t.c, t.f
        xmax, ymin = xmin + w * t.a, ymax + h * t.e
        srs = self.crs.to_string() if self.crs else "?"
        return f"gdalwarp -t_srs {srs} -te {xmin:g} {ymin:g} {xmax:g} {ymax:g} -ts {w} {h} -r bilinear IN.tif OUT.tif"


def _read_raster(path: Path, what: str) -> tuple[np.ndarray, _Grid]:
    with rasterio.open(path) as src:  # true values: nodata → NaN, scale/offset applied (uint16 risk.tif)
        data = true_values(src)
        grid = _Grid(src.crs, src.transform, (src.height, src.width))
    return data, grid


def _on_grid(path: Path, what: str, risk_grid: _Grid, risk_path: Path) -> np.ndarray:
    """Read a raster that must lie on risk.tif's grid, or say how to put it there."""
    if not Path(path).is_file():
        raise DecisionLayerError(f"{what}: {path} not found — give an existing raster on the grid of {risk_path}")
    try:
        data, grid = _read_raster(path, what)
    except rasterio.errors.RasterioError as e:
        raise DecisionLayerError(f"{what}: cannot read {path} ({e}) — give a GeoTIFF on the grid of {risk_path}") \
            from None
    if not grid.same(risk_grid):
        raise DecisionLayerError(
            f"{what}: {path} is on another grid ({grid.describe()}) than {risk_path.name} ({risk_grid.describe()}) — "
            f"resample it onto the run's grid, e.g. `{risk_grid.warp_hint()}`")
    return data


class _Layers:
    """The layers the cost multipliers need, read once each and flattened over the decided pixels."""

    def __init__(self, cfg: RunConfig, paths: RunPaths, grid: _Grid, valid: np.ndarray):
        self.cfg, self.paths, self.grid, self.valid = cfg, paths, grid, valid
        self._stack = None
        self._names: dict[str, int] | None = None

    def stack(self, key: str):
        if self._stack is None:
            from tiles import open_store

            if not self.paths.stack.exists():
                raise DecisionLayerError(f"{key} needs the layer stack {self.paths.stack}, which is missing — run "
                                         "`geo-risk tile CONFIG` first, or remove the key")
            ds = open_store(self.paths.stack, "layer stack")
            h, w = self.grid.shape
            t = self.grid.transform
            xs, ys = t.c + (np.arange(w) + 0.5) * t.a, t.f + (np.arange(h) + 0.5) * t.e
            tol = 1e-6 * abs(t.a)
            if (ds.sizes.get("y"), ds.sizes.get("x")) != (h, w) or not (
                    np.allclose(ds["x"].values, xs, atol=tol) and np.allclose(ds["y"].values, ys, atol=tol)):
                raise DecisionLayerError(f"{key}: the layer stack {self.paths.stack} is on another grid than "
                                         f"{self.paths.probability} — run `geo-risk tile` and `geo-risk predict` "
                                         "again so both come from the same config")
            self._stack = ds
        return self._stack

    def eco(self, key: str) -> np.ndarray:
        return np.asarray(self.stack(key)["eco"].values, dtype=np.float64)[self.valid]

    def band(self, name: str, key: str) -> np.ndarray:
        ds = self.stack(key)
        bands = [str(b) for b in ds["band"].values]
        if name not in bands:
            raise DecisionLayerError(f"{key}: band {name!r} is not in the stack {self.paths.stack} — one of "
                                     f"{[b for b in bands if b.endswith('_m')]}")
        period = "forecast" if "forecast" in [str(p) for p in ds["period"].values] else ds["period"].values[-1]
        return np.asarray(ds["features"].sel(period=period, band=name).values, dtype=np.float64)[self.valid]

    def zone(self, key: str) -> np.ndarray:
        return np.asarray(self.stack(key)["zone"].values)[self.valid]

    def zone_ids(self, factors: dict, key: str) -> dict[int, float]:
        out = {}
        for k, v in factors.items():
            if isinstance(k, int) or (isinstance(k, str) and k.isdigit()):
                out[int(k)] = float(v)
                continue
            if self._names is None:
                import geopandas as gpd

                if not self.paths.zones.is_file():
                    raise DecisionLayerError(f"{key}: zone {k!r} is named but {self.paths.zones} is missing — run "
                                             "`geo-risk tile CONFIG` with layers.zones, or give zone ids")
                t = gpd.read_file(self.paths.zones, columns=["zone_id", "name"], ignore_geometry=True)
                self._names = {str(n): int(i) for i, n in zip(t.zone_id, t.name)}
            if k not in self._names:
                raise DecisionLayerError(f"{key}: no zone is named {k!r} in {self.paths.zones} — zones: "
                                         f"{sorted(self._names)}")
            out[self._names[k]] = float(v)
        return out

    def raster(self, path: Path, key: str) -> np.ndarray:
        return _on_grid(self.cfg.data_path(path), key, self.grid, self.paths.probability)[self.valid]

    def multiplier(self, sc: CostScaleConfig, key: str) -> np.ndarray | None:
        if sc.is_identity:
            return None
        n = int(self.valid.sum())
        return multiplier(
            n,
            eco=self.eco(f"{key}.eco_factor") if sc.eco_factor else None, eco_factor=sc.eco_factor,
            distance_m=self.band(sc.distance_band, f"{key}.distance_band") if sc.per_km else None, per_km=sc.per_km,
            zone=self.zone(f"{key}.zones") if sc.zones else None,
            zone_factors=self.zone_ids(dict(sc.zones), f"{key}.zones") if sc.zones else None,
            raster=self.raster(sc.raster, f"{key}.raster") if sc.raster else None,
            names={"eco": f"{key}.eco_factor (the stack's eco layer)",
                   "distance": f"{key}.distance_band ({sc.distance_band})",
                   "zone": f"{key}.zones", "raster": f"{key}.raster ({sc.raster})"})


def _pixel_area_ha(grid: _Grid) -> float:
    if grid.crs is None or not grid.crs.is_projected:
        return math.nan
    metres = grid.crs.linear_units_factor[1]
    return abs(grid.transform.a * grid.transform.e) * metres ** 2 / 10_000


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
    prob, grid = _read_raster(paths.probability, "risk.tif")
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
            sigma = _on_grid(unc_path, "uncertainty.tif", grid, paths.probability)[valid]
            missing = ~np.isfinite(sigma)
            if missing.any():
                notes.append(f"uncertainty.tif has no value at {int(missing.sum()):,} pixels with a probability: "
                             "σ = 0 there")
            q = np.clip(p + k * np.nan_to_num(sigma, nan=0.0).clip(min=0), 0.0, 1.0)
        else:
            notes.append(f"decision.uncertainty_k is {k:g} but {unc_path} is missing: actions are chosen on p "
                         "alone — run `geo-risk predict CONFIG` (it writes uncertainty.tif) to use it")
            k = 0.0

    layers = _Layers(cfg, paths, grid, valid)
    cost = pixel_costs(np.array(dc.cost, dtype=np.float64),
                       layers.multiplier(dc.action_cost_scale, "decision.action_cost_scale"),
                       layers.multiplier(dc.damage_scale, "decision.damage_scale"))
    pixel_ha = _pixel_area_ha(grid)
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
