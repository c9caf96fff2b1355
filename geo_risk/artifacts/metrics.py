"""``metrics.json`` (written by evaluate, read by the CLI summary, the map and people): one typed
block per part of the evaluation, versioned by :data:`METRICS_FORMAT`."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from geo_risk_errors import InputDataError
from tiles.atomic import atomic_file

#: version of metrics.json (2: all forest pixels scored, typed evaluation blocks)
METRICS_FORMAT = 2


# ---------------------------------------------------------------- metrics.json
# Format 2: every score is computed over all forest pixels of the period inside the outline (the
# population a verifier uses); pixels the map leaves without a value are scored as its lowest risk
# and counted in ``coverage``. New typed blocks: coverage, scorecards, reliability, vt0007,
# fairness, decision_value (geo_risk/evaluate/, docs/evaluation.md).
@dataclass(frozen=True)
class Scores:
    """How well one score ranks the observed loss."""

    auc: float
    ap: float
    eco_weighted_recall_at_observed_rate: float


@dataclass(frozen=True)
class ZoneMetrics:
    """Spread of zone-mean risk over the zones counted (``loss.min_zone_pixels``), before and after the projection.

    Over the pixels the map gives a value, like ``zone_risk.csv``; the per-zone audit over all
    forest pixels is :class:`FairnessAudit`."""

    count: int
    min_pixels: int
    mean_risk_std: float
    mean_risk_range: float
    projection_lambda_fair: float = 0.0
    mean_risk_std_before_projection: float | None = None


@dataclass(frozen=True)
class Coverage:
    """The population scored and how much of it the map covers."""

    forest_pixels: int  # forest at the period's start, inside the outline: every score's population
    scored_pixels: int  # of which the map gives a value
    missing_pixels: int  # of which it gives none: scored as its lowest risk (probability 0)
    missing_lost_pixels: int  # observed losses among the missing pixels
    pixel_area_ha: float
    forest_ha: float
    # forest pixels of the period whose input layer was missing and filled by the tile stage, per layer
    # (the stack's ``coverage`` attribute; empty for stacks that drop such pixels instead)
    filled_inputs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreCard:
    """One probability map scored over the population: ranking, calibration and land-change metrics."""

    name: str
    auc: float
    ap: float
    brier: float
    ece: float  # expected calibration error, equal-width bins
    fom_at_observed_quantity: float  # figure of merit (Pontius et al. 2008), top-k pixels, k = observed losses
    eco_weighted_recall_at_observed_rate: float
    mean_probability: float  # compare with the observed loss rate
    is_probability: bool = True  # False for a score that only ranks (Brier/ECE/mean are NaN)


@dataclass(frozen=True)
class ReliabilityCurve:
    """Observed loss rate against mean predicted probability in bins (equal-count bins)."""

    name: str
    mean_predicted: list[float]
    observed_rate: list[float]
    count: list[int]


@dataclass(frozen=True)
class ValidationErrors:
    """VT0007 validation errors over a grid of cells (hectares over the period) — the one definition
    shared by the computed form (:class:`geo_risk.evaluate.vt0007.Validation`, which adds the cell
    table) and the serialised one (:class:`CellErrors`, which adds the allocation's figures)."""

    medae_ha: float
    medae_pct_cell: float
    mae_ha: float
    rmse_ha: float
    wrmse_ha: float
    r2: float
    n_cells: int
    n_dropped: int
    observed_total_ha: float
    predicted_total_ha: float


@dataclass(frozen=True)
class CellErrors(ValidationErrors):
    """VT0007 validation errors of one map in one test, as metrics.json holds them: the
    :class:`ValidationErrors` and the quantity adjustment that produced the prediction."""

    adjustment_ratio: float
    n_capped: int
    n_missing: int  # forest pixels the map left without a value, scored as class 1

    @classmethod
    def of(cls, validation: ValidationErrors, *, adjustment_ratio: float, n_capped: int,
           n_missing: int) -> "CellErrors":
        """The serialised form of a computed validation (its cell table left out)."""
        shared = {f.name: getattr(validation, f.name) for f in fields(ValidationErrors)}
        return cls(**shared, adjustment_ratio=adjustment_ratio, n_capped=n_capped, n_missing=n_missing)

    @classmethod
    def empty(cls, n_missing: int = 0) -> "CellErrors":
        """No validation (no calibration-period map): NaN errors, no cells."""
        nan = float("nan")
        return cls(medae_ha=nan, medae_pct_cell=nan, mae_ha=nan, rmse_ha=nan, wrmse_ha=nan, r2=nan, n_cells=0,
                   n_dropped=0, observed_total_ha=nan, predicted_total_ha=nan, adjustment_ratio=nan, n_capped=0,
                   n_missing=n_missing)


@dataclass(frozen=True)
class Vt0007Map:
    """One map's VT0007 tests; ``fit`` is None when its calibration-period map is unavailable."""

    name: str
    prediction: CellErrors
    fit: CellErrors | None = None
    passes_fit: bool | None = None  # lower MedAE than the benchmark in the fit test
    passes_prediction: bool | None = None
    passes: bool | None = None  # both: the map may replace the benchmark; None when undetermined
    note: str = ""


@dataclass(frozen=True)
class Vt0007Metrics:
    """VT0007 benchmark, allocation and validation (docs/vt0007.md)."""

    calibration_period: str
    confirmation_period: str
    threshold_m: float | None = None  # distance to the edge holding 99.5 % of calibration-period loss
    cells: str = ""  # "square 31623 m" or the polygon layer
    cell_size_m: float | None = None
    min_forest_fraction: float = 0.0
    benchmark: Vt0007Map | None = None
    models: list[Vt0007Map] = field(default_factory=list)
    density_map: str = ""  # which map density.tif allocates
    expected_ha_per_yr: float | None = None
    expected_source: str = ""  # "config" (evaluate.expected_ha_per_yr) or "observed" (confirmation period)
    allocated_ha_per_yr: float | None = None
    shortfall_ha_per_yr: float | None = None
    skipped: str = ""  # why VT0007 was not run (empty when it was)
    class_method: str = ""  # how the models' probabilities became the 30 classes: equal_area or geometric
    modeling_regions: str = ""  # what the classes are crossed with (UDef-ARP's administrative divisions), or "none"


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap percentile interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class ZoneAudit:
    """One zone over all its forest pixels of the forecast period."""

    zone_id: int
    name: str
    forest_pixels: int
    counted: bool  # at least loss.min_zone_pixels forest pixels
    observed_loss_rate: Interval
    mean_risk_model: Interval  # before the zone-fairness projection
    mean_risk_map: Interval  # risk.tif
    fnr: Interval  # share of the zone's lost pixels the decision leaves unflagged
    fpr: Interval  # share of the zone's kept forest the decision flags
    flagged_ha: float


@dataclass(frozen=True)
class GapSummary:
    """How unequal one per-zone quantity is over the counted zones."""

    metric: str
    max_minus_min: float
    max_over_min: float
    variance: float


@dataclass(frozen=True)
class FairnessAudit:
    """Per-zone audit of the map and the decision; intervals from a spatial block bootstrap."""

    flagged_actions: list[str]
    min_zone_pixels: int
    bootstrap_replicates: int
    bootstrap_block_px: int
    confidence: float
    zones: list[ZoneAudit]
    summaries: list[GapSummary]


@dataclass(frozen=True)
class DecisionRule:
    """One way to choose actions, costed over the population."""

    name: str
    flagged_ha: float  # area given an action other than the first
    expected_cost: float  # Σ R_i(a_i) under the map's probabilities
    realised_cost: float  # Σ C[a_i, y_i] under the observed loss
    realised_vs_threshold: float | None  # realised cost / the 0.5-threshold rule's
    within_budgets: bool | None = None  # keeps the config's decision.budgets (None: the config has none)


@dataclass(frozen=True)
class DecisionValue:
    """Expected and realised cost of the decision map against simpler rules."""

    actions: list[str]
    cost: list[list[float]]
    rules: list[DecisionRule]
    target_ratio: float = 0.7
    target_met: bool | None = None  # the decision map's realised cost ≤ target × the 0.5-threshold rule's
    note: str = ""  # e.g. per-pixel cost scales the table does not apply


@dataclass(frozen=True)
class BaselineFit:
    """One baseline evaluate fitted (docs/baselines.md)."""

    name: str  # as in evaluate.baselines
    label: str  # its name in the scorecards, VT0007 and decision-value tables
    bands: list[str]  # covariates used
    iterations: int  # solver iterations (GLM) or boosting rounds kept (GBM)
    fit_seconds: float


@dataclass(frozen=True)
class BaselinesRun:
    """The baselines fitted on the training period's chips and scored on the same pixels as the map."""

    train_pixels: int
    train_positives: int
    val_pixels: int  # GBM early stopping
    max_pixels: int  # evaluate.baseline_max_pixels
    seed: int
    fitted: list[BaselineFit]
    seconds: float  # everything the baselines add to evaluate: sampling, fitting, both periods' maps
    score_seconds: float  # of which mapping them over the calibration and forecast periods


@dataclass(frozen=True)
class BaselineMargin:
    """The map's margin over the best baseline (GLM/GBM of evaluate.baselines) — issue 9's bar reads it."""

    model: str  # the scorecard compared: the map (risk.tif)
    best_auc_baseline: str
    auc_difference: float  # model AUC − best baseline AUC (bar: ≥ 0.02)
    best_ap_baseline: str
    ap_ratio: float  # model AP / best baseline AP (bar: ≥ 1.25)
    # VT0007 prediction test, MedAE / the distance-to-edge benchmark's (bar: ≤ 0.6); NaN when not validated
    medae_ratio_vs_benchmark: float = float("nan")
    best_medae_baseline: str = ""
    best_baseline_medae_ratio_vs_benchmark: float = float("nan")


@dataclass(frozen=True)
class Metrics:
    """Content of ``metrics.json``: the forecast scored over all forest pixels of its period."""

    period: str
    pixels: int  # the population: forest pixels of the period inside the outline
    observed_loss_rate: float
    model: Scores
    baseline_distance_to_edge: Scores
    zones: ZoneMetrics
    format: int = METRICS_FORMAT
    coverage: Coverage | None = None
    scorecards: list[ScoreCard] = field(default_factory=list)
    reliability: list[ReliabilityCurve] = field(default_factory=list)
    vt0007: Vt0007Metrics | None = None
    fairness: FairnessAudit | None = None
    decision_value: DecisionValue | None = None
    baselines: BaselinesRun | None = None
    margin_over_baselines: BaselineMargin | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path, atomic: bool = True) -> None:
        """JSON write (atomic unless ``path`` is already temporary); NaN becomes null (standard JSON)."""
        d = asdict(self)
        d.update(d.pop("extra"))
        with atomic_file(path) if atomic else nullcontext(Path(path)) as tmp:
            tmp.write_text(json.dumps(_json_clean(d), indent=2))

    @classmethod
    def read(cls, path: Path) -> Metrics:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputDataError(f"{path} is unreadable ({e}) — run `geo-risk evaluate CONFIG` again") from e
        if not isinstance(d, dict) or d.get("format") != METRICS_FORMAT:
            got = d.get("format") if isinstance(d, dict) else None
            raise InputDataError(f"{path} has metrics format {got}, this geo-risk reads "
                                 f"{METRICS_FORMAT} — run `geo-risk evaluate CONFIG` again")
        known = {f.name for f in fields(cls)} - {"extra"}
        try:
            m = _decode(cls, {k: v for k, v in d.items() if k in known})
        except (KeyError, TypeError, ValueError) as e:
            raise InputDataError(f"{path} does not hold geo-risk metrics ({e}) — run `geo-risk evaluate CONFIG` "
                                 "again") from e
        return replace(m, extra={k: v for k, v in d.items() if k not in known})


def _decode(tp, v):
    """Rebuild a value of type ``tp`` (dataclass, list[…], X | None, float, int, …) from JSON."""
    if v is None:  # null: NaN for a plain float, None for an optional field
        return float("nan") if tp is float else None
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _decode(inner[0], v) if len(inner) == 1 else v
    if origin is list:
        (item,) = get_args(tp)
        return [_decode(item, x) for x in v]
    if origin is dict:
        return dict(v)
    if is_dataclass(tp):
        hints = get_type_hints(tp)
        return tp(**{f.name: _decode(hints[f.name], v[f.name]) for f in fields(tp) if f.name in v})
    if tp is float:
        return float(v)
    return v


def _json_clean(o):
    if isinstance(o, dict):
        return {k: _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
