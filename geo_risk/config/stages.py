"""The settings of each stage: chips, dask, model, loss, train, predict, decision (costs, budgets),
map and evaluate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from geo_risk.config.base import _Strict, _refuse_old_keys


class ChipsConfig(_Strict):
    size_px: int = Field(128, ge=32)
    stride_px: int = Field(64, ge=8)
    min_valid_fraction: float = Field(0.05, ge=0, le=1)
    block_size_px: int = Field(512, ge=32)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    buffer_px: int = Field(64, ge=0)
    max_chips: int | None = Field(None, ge=2)
    seed: int = 0
    # blocked test split: blocks drawn after validation's, kept buffer_px from train and validation chips
    test_fraction: float = Field(0.0, ge=0, lt=1)
    # positive-aware sampling: every chip with a loss pixel is kept, this share of the chips without
    # (seeded); their weight 1/negative_keep is recorded in the chip index and store for re-weighting
    negative_keep: float = Field(1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _held_out(self) -> ChipsConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction {self.val_fraction:g} + test_fraction {self.test_fraction:g} leave no "
                             "chip to train on — keep their sum below 1 (e.g. 0.2 + 0.1)")
        return self


#: the form of a distributed scheduler's address: tcp://host:port (or tls://); host a name, IPv4 or [IPv6]
SCHEDULER_ADDRESS = r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):[0-9]{1,5}$"


class DaskConfig(_Strict):
    """Where the tile stage's (and later predict's) dask work runs (tiles/scheduler.py, docs/your-region.md):
    ``threads`` (default, this process), ``synchronous`` (one thread, for debugging), ``local_cluster``
    (``workers`` processes on this machine, ``threads_per_worker`` threads each, ``memory_limit`` per worker)
    or the address of a running ``distributed`` scheduler, ``tcp://host:port`` — whose workers must see the
    data and run folders at the same paths."""

    scheduler: str = "threads"
    workers: int | None = Field(None, ge=1)  # local_cluster worker processes; null: one per core
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = "auto"  # per local_cluster worker: "auto" (the machine's memory / workers), "4GiB", "0" (none)
    connect_timeout_s: float = Field(10.0, gt=0)  # how long to try an address before giving up

    @field_validator("scheduler")
    @classmethod
    def _scheduler_form(cls, v: str) -> str:
        v = v.strip()
        if v in ("threads", "synchronous", "local_cluster") or re.match(SCHEDULER_ADDRESS, v):
            if "://" in v and not 0 < int(v.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"{v!r}: the port must be 1–65535 (a dask scheduler listens on 8786 by default)")
            return v
        raise ValueError(f"{v!r} is not a scheduler: give threads, synchronous, local_cluster, or the address of a "
                         "running distributed scheduler as tcp://host:port (e.g. tcp://10.0.0.5:8786)")

    @field_validator("memory_limit")
    @classmethod
    def _memory_form(cls, v: str) -> str:
        if v == "auto" or re.match(r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|[kMGT]B|B)?\s*$", v, re.IGNORECASE):
            return v
        raise ValueError(f"{v!r}: give auto, a size such as 4GiB or 2GB, or 0 for no limit")


class ModelConfig(_Strict):
    """A segmentation-models-pytorch network: ``arch`` any of its architecture classes (Unet,
    UnetPlusPlus, FPN, DeepLabV3Plus, …) and ``encoder`` any of its encoders
    (``smp.encoders.get_encoder_names()``); checked when the model is built (geo_risk/model.py)."""

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    # the input bands meet the decoder's last features again at full resolution (a 3×3 conv head on
    # both): smp's ResNet encoders halve the resolution in their first layer, so without it every
    # pixel-exact input (the forest edge, the first pixel beside a clearing) reaches the output only
    # through upsampled features (docs/model.md measures it)
    input_skip: bool = False


class LossConfig(_Strict):
    lambda_eco: float = Field(1.0, ge=0)
    lambda_fair: float = Field(1.0, ge=0)
    min_zone_pixels: int = Field(50, ge=1)
    fairness: Literal["variance", "range", "fnr_parity"] = "variance"
    eco_form: Literal["log", "linear"] = "log"
    pos_weight: float | None = Field(None, gt=0)
    focal_gamma: float | None = Field(None, ge=0)
    ema_momentum: float | None = Field(None, gt=0, lt=1)


class TrainConfig(_Strict):
    """The trainer (docs/training.md). ``batch_size`` is the global batch: under torchrun each of N
    processes takes batch_size / N. ``device`` is used by predict too."""

    epochs: int = Field(4, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    num_threads: int | None = Field(None, ge=1)  # torch threads; null: the cores this process may use
    num_workers: int | None = Field(None, ge=0)  # DataLoader workers; null: 0 on CPU, else min(4, cores / 2)
    channels_last: bool = True
    seed: int = 0
    # exponential moving average of the weights (Polyak): validation, the best epoch and the checkpoint
    # use the average, updated after every step with this decay; null: the raw weights
    ema_decay: float | None = Field(None, gt=0, lt=1)
    calibrate: bool = True
    monitor: Literal["ap", "auc", "loss"] = "ap"  # validation metric that picks the best epoch
    patience: int | None = Field(None, ge=1)  # stop after this many epochs without improvement; null: never
    checkpoint_every_steps: int | None = Field(None, ge=1)  # train_state.pt also every N steps (epoch ends: always)


class PredictConfig(_Strict):
    """Seamless block inference (geo_risk/predict/blocks.py): each block of ``block_px`` is predicted
    with ``halo_px`` of context around it (mirrored at the region's edges) and only its centre kept."""

    block_px: int = Field(1024, ge=32)
    halo_px: int = Field(128, ge=0)
    # test-time augmentation: 1 (none), 2, 4 or 8 of the square's flips/rotations; their spread of
    # the probability is written as uncertainty.tif
    tta: Literal[1, 2, 4, 8] = 4
    # zone-fairness projection: offsets fitted on all scored pixels, or this many drawn uniformly
    fit_sample_px: int = Field(2_000_000, ge=1000)
    # Zone-fairness projection of the map (geo_risk/fairness.py): weight of the variance of
    # zone-mean risk against the KL divergence from the model's map; 0 leaves the map as is.
    lambda_fair: float = Field(0.0, ge=0)
    # storage of risk.tif / uncertainty.tif: float32, or uint16 scaled by 1/65534 (scale/offset tags,
    # nodata 65535; GDAL and QGIS show true values) — half the size, absolute error ≤ 7.7e-6
    probability_dtype: Literal["float32", "uint16"] = "float32"

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        return _refuse_old_keys(data, ("window_px", "overlap_px", "batch_size"),
                                "replaced in geo-risk 0.2 by block_px (block size, default 1024) and halo_px (context "
                                "around each block, default 128) — prediction no longer blends overlapping windows")


class CostScaleConfig(_Strict):
    """A per-pixel cost multiplier (docs/decisions.md), 1 everywhere by default:
    ``(1 + eco_factor·eco) × (1 + per_km·distance_band/1000) × zones[zone] × raster``."""

    eco_factor: float = Field(0.0, ge=0, allow_inf_nan=False)  # eco: the stack's ecological weight in [0, 1]
    distance_band: str | None = None  # a distance band of the stack in metres, e.g. dist_roads_m
    per_km: float = Field(0.0, ge=0, allow_inf_nan=False)
    zones: dict[str | int, float] = Field(default_factory=dict)  # zone name or id → factor (other zones: 1)
    raster: Path | None = None  # any raster on the grid (relative to data_dir), multiplied in

    @model_validator(mode="after")
    def _consistent(self) -> CostScaleConfig:
        if self.per_km and not self.distance_band:
            raise ValueError("per_km needs distance_band, the stack band it applies to (e.g. dist_roads_m)")
        if self.distance_band and not self.distance_band.endswith("_m"):
            raise ValueError(f"distance_band {self.distance_band!r}: name a distance band in metres of the stack "
                             "(its name ends in _m, e.g. dist_roads_m)")
        for k, v in self.zones.items():
            if not (v >= 0 and v < float("inf")):
                raise ValueError(f"zones.{k}: {v} — a zone's factor is a finite number ≥ 0")
        return self

    @property
    def is_identity(self) -> bool:
        return not (self.eco_factor or self.per_km or self.zones or self.raster)


class BudgetConfig(_Strict):
    """At most ``max_ha`` hectares, or ``max_cost`` cost units (what the action costs, summed over
    the pixels that receive it), may receive ``action``."""

    action: str
    max_ha: float | None = None
    max_cost: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetConfig:
        given = {k: v for k, v in (("max_ha", self.max_ha), ("max_cost", self.max_cost)) if v is not None}
        if len(given) != 1:
            raise ValueError(f"budget of {self.action!r}: give one of max_ha (hectares) or max_cost (cost units)")
        (key, value), = given.items()
        if not (value < float("inf")):  # NaN and ∞
            raise ValueError(f"budget of {self.action!r}: {key} is {value} — give a finite number, or remove the "
                             "budget to leave the action unlimited")
        if value < 0:
            raise ValueError(f"budget of {self.action!r}: {key} is {value:g} — a budget is ≥ 0 (0 forbids the "
                             "action; remove the budget to leave it unlimited)")
        return self


class DecisionConfig(_Strict):
    """Cost matrix ``cost[a][s]``: cost of action a when the true state is s (docs/decisions.md).

    ``cost[a][stays_forest]`` is read as what action a costs and ``cost[a][lost] − cost[a][stays_forest]``
    as the damage of a loss it does not prevent; ``action_cost_scale`` and ``damage_scale`` scale
    them per pixel. ``budgets`` limit the area or cost of an action. ``uncertainty_k`` > 0 chooses
    actions on ``p + k·σ`` (σ from uncertainty.tif, when predict wrote it): a cautious rule.
    """

    actions: list[str] = ["none", "patrol"]
    states: list[str] = ["stays_forest", "lost"]
    cost: list[list[float]] = [[0.0, 100.0], [10.0, 10.0]]
    budgets: list[BudgetConfig] = Field(default_factory=list)
    damage_scale: CostScaleConfig = CostScaleConfig()
    action_cost_scale: CostScaleConfig = CostScaleConfig()
    uncertainty_k: float = Field(0.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _shape(self) -> DecisionConfig:
        if self.states != ["stays_forest", "lost"]:
            raise ValueError("states must be ['stays_forest', 'lost'] (the two states the model predicts)")
        if len(self.actions) < 2 or len(self.actions) > 254:
            raise ValueError("give between 2 and 254 actions")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"actions {self.actions}: every action needs its own name")
        if len(self.cost) != len(self.actions) or any(len(r) != len(self.states) for r in self.cost):
            raise ValueError(
                f"cost must be a {len(self.actions)}×{len(self.states)} matrix (one row per action, "
                "one column per state)"
            )
        for a, row in enumerate(self.cost):
            for s, v in enumerate(row):
                if not (v < float("inf")):  # NaN and ∞
                    raise ValueError(f"cost[{a}][{s}] ({self.actions[a]}, {self.states[s]}) is {v}: every cost must "
                                     "be a finite number ≥ 0 (cost units, e.g. 10)")
                if v < 0:
                    raise ValueError(f"cost[{a}][{s}] ({self.actions[a]}, {self.states[s]}) is {v:g}: costs must be "
                                     "≥ 0 — express a benefit as a higher cost of the other actions")
        named = [b.action for b in self.budgets]
        for name in named:
            if name not in self.actions:
                raise ValueError(f"budgets: action {name!r} is not one of actions {self.actions}")
        if len(set(named)) != len(named):
            raise ValueError("budgets: give at most one budget per action")
        if set(named) == set(self.actions):
            raise ValueError("budgets: every action has a budget, so some pixels could get no action — leave at "
                             f"least one action (e.g. {self.actions[0]!r}) without a budget")
        return self


class MapConfig(_Strict):
    """The review map ``map.html`` (geo_risk/review/, docs/review-map.md)."""

    max_size_px: int = Field(1600, ge=64)  # longest side of each raster image embedded in the page
    inspect_max_px: int = Field(800, ge=16)  # longest side of the click-to-inspect grid of pixel values
    inspect_max_mb: float = Field(2.0, gt=0)  # …and its size in the page: coarser cells where forest is dense
    # layers.distance_to layers drawn (roads, settlements…); null: all of them, []: none
    vectors: list[str] | None = None
    basemaps: bool = True  # offer OpenStreetMap and imagery tiles; off until picked, empty offline
    # another run folder (e.g. --set map.compare_run=runs/other): its risk and decision beside this
    # run's, for the split view; relative to the working directory, like output_dir
    compare_run: Path | None = None


class EvaluateConfig(_Strict):
    """The evaluate stage (docs/evaluation.md): VT0007 validation (docs/vt0007.md), calibration bins
    and the bootstrap of the per-zone audit."""

    # VT0007 allocation: expected deforestation in ha/yr for density.tif; null = the observed total
    # of the forecast (confirmation) period, as when validating
    expected_ha_per_yr: float | None = Field(None, gt=0)
    # VT0007 validation cells: square cells of this side (null = 100,000 ha, VT0007's median project
    # area, ≈ 31.6 km), or the polygons of cells_path (relative to data_dir) when given
    cell_size_m: float | None = Field(None, gt=0)
    cells_path: Path | None = None
    min_forest_fraction: float = Field(0.0, ge=0, le=1)  # cells with less forest (share of cell) are dropped
    vt0007_zones: bool = False  # cross the 30 classes with the zones (VT0007's administrative divisions)
    # a model's probabilities → VT0007's 30 classes: equal_area (riskmapjnr's default: each class holds
    # 1/30 of the forest) or geometric (UDef-ARP: p / max p cut at a geometric series) — docs/vt0007.md
    vt0007_classes: Literal["equal_area", "geometric"] = "equal_area"
    calibration_bins: int = Field(15, ge=2)  # equal-width bins of the expected calibration error
    bootstrap: int = Field(500, ge=0)  # replicates of the per-zone intervals (0: no intervals)
    bootstrap_block_px: int = Field(32, ge=1)  # spatial blocks resampled together (pixels are not independent)
    confidence: float = Field(0.9, gt=0, lt=1)
    seed: int = 0
    # baselines fitted on the training chips and scored beside the map (docs/baselines.md): any of
    # "distance_to_edge", "glm", "gbm"; [] skips them. Sample cap: training pixels (validation: a quarter)
    baselines: list[Literal["distance_to_edge", "glm", "gbm"]] = ["glm", "gbm"]
    baseline_max_pixels: int = Field(200_000, ge=2)

    @field_validator("baselines")
    @classmethod
    def _baselines(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"evaluate.baselines lists a baseline twice: {v}")
        return v
