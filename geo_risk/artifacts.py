"""The files stages hand each other: one typed definition per artefact, with its writer and reader.

| artefact            | written by | read by                     | defined here as                   |
|---------------------|------------|-----------------------------|-----------------------------------|
| ``model.pt`` meta   | train      | predict, scripts            | :class:`CheckpointMeta` (versioned) |
| ``train_log.csv``   | train      | plots, users                | :func:`train_log_columns`          |
| ``risk.tif`` tags   | predict    | evaluate                    | :class:`RiskTags`                  |
| ``zone_risk.csv``   | predict    | evaluate, map               | :data:`ZONE_TABLE_COLUMNS`         |
| ``metrics.json``    | evaluate   | cli, users                  | :class:`Metrics` (versioned)       |

The layer stack and chip store (Zarr) are defined in :mod:`tiles.store`, band names in
:mod:`tiles.bands`. A file written by an older version is recognised and refused with the command
that rebuilds it, never half-read.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from geo_risk_errors import CheckpointError, InputDataError
from tiles.atomic import atomic_file

#: version of the checkpoint metadata; bump when a field changes meaning or is removed
CHECKPOINT_FORMAT = 1
#: version of metrics.json
METRICS_FORMAT = 1


# ---------------------------------------------------------------- model.pt
@dataclass(frozen=True)
class CheckpointMeta:
    """Everything predict needs besides the weights: the model, its inputs and its calibration."""

    model: dict[str, Any]  # geo_risk.config.ModelConfig, dumped
    bands: list[str]
    band_stats: dict[str, dict[str, Any]]
    num_zones: int
    temperature: float
    epoch: int
    val_auc: float
    val_ap: float
    config_yaml: str
    format: int = CHECKPOINT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, meta: Any, path: Path) -> CheckpointMeta:
        """Check the format version and the fields; a clear CheckpointError otherwise."""
        if not isinstance(meta, dict):
            raise CheckpointError(f"checkpoint {path} holds no metadata — retrain with `geo-risk train CONFIG`")
        version = meta.get("format")
        if version != CHECKPOINT_FORMAT:
            written = "an older geo-risk (no format version)" if version is None else f"checkpoint format {version}"
            raise CheckpointError(
                f"checkpoint {path} was written by {written}; this geo-risk reads format {CHECKPOINT_FORMAT} — "
                "retrain with `geo-risk train CONFIG`")
        names = {f.name for f in fields(cls)}
        missing = names - set(meta)
        if missing:
            raise CheckpointError(f"checkpoint {path} lacks {sorted(missing)} — retrain with `geo-risk train CONFIG`")
        return cls(**{k: meta[k] for k in names})


# ---------------------------------------------------------------- train_log.csv
def train_log_columns(loss_parts: tuple[str, ...]) -> list[str]:
    """Columns of ``train_log.csv``: epoch, train total and each loss part, validation loss, AUC, AP."""
    return ["epoch", "train_total", *(f"train_{p}" for p in loss_parts), "val_total", "val_auc", "val_ap"]


# ---------------------------------------------------------------- risk.tif
@dataclass(frozen=True)
class RiskTags:
    """GDAL metadata tags of ``risk.tif`` that later stages read back."""

    description: str
    model: str
    run: str
    zone_fairness_lambda: float
    units: str = "probability"

    def to_tags(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str], path: Path) -> RiskTags:
        try:
            return cls(description=tags["description"], model=tags["model"], run=tags["run"],
                       zone_fairness_lambda=float(tags["zone_fairness_lambda"]), units=tags.get("units", "probability"))
        except (KeyError, ValueError) as e:
            raise InputDataError(f"{path} lacks the geo-risk tag {e} — it was not written by `geo-risk predict`; "
                                 "run `geo-risk predict CONFIG` again") from None


# ---------------------------------------------------------------- zone_risk.csv
#: per counted zone: pixels, mean risk of the model and of the map (after the fairness projection), offset
ZONE_TABLE_COLUMNS = ["zone_id", "name", "pixels", "mean_risk_model", "mean_risk_map", "logit_offset"]


def write_zone_table(path: Path, table: pd.DataFrame) -> None:
    """Write ``zone_risk.csv`` atomically, columns in the documented order."""
    with atomic_file(path) as tmp:
        table[ZONE_TABLE_COLUMNS].to_csv(tmp, index=False, float_format="%.6g")


def read_zone_table(path: Path) -> pd.DataFrame:
    """Read ``zone_risk.csv``; a clear error when it is missing a column."""
    try:
        table = pd.read_csv(path, dtype={"name": str}, keep_default_na=False, na_values={"name": []})
    except (OSError, pd.errors.ParserError) as e:
        raise InputDataError(f"{path} is unreadable ({e}) — run `geo-risk predict CONFIG` again") from e
    missing = [c for c in ZONE_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{path} lacks the columns {missing} — run `geo-risk predict CONFIG` again")
    return table[ZONE_TABLE_COLUMNS]


# ---------------------------------------------------------------- metrics.json
@dataclass(frozen=True)
class Scores:
    """How well one score ranks the observed loss."""

    auc: float
    ap: float
    eco_weighted_recall_at_observed_rate: float


@dataclass(frozen=True)
class ZoneMetrics:
    """Spread of zone-mean risk over the zones counted (``loss.min_zone_pixels``), before and after the projection."""

    count: int
    min_pixels: int
    mean_risk_std: float
    mean_risk_range: float
    projection_lambda_fair: float = 0.0
    mean_risk_std_before_projection: float | None = None


@dataclass(frozen=True)
class Metrics:
    """Content of ``metrics.json``: the forecast scored over the valid pixels of its period."""

    period: str
    pixels: int
    observed_loss_rate: float
    model: Scores
    baseline_distance_to_edge: Scores
    zones: ZoneMetrics
    format: int = METRICS_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Atomic JSON write; NaN becomes null so the file stays standard JSON."""
        d = asdict(self)
        d.update(d.pop("extra"))
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(_json_clean(d), indent=2))

    @classmethod
    def read(cls, path: Path) -> Metrics:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputDataError(f"{path} is unreadable ({e}) — run `geo-risk evaluate CONFIG` again") from e
        if d.get("format") != METRICS_FORMAT:
            raise InputDataError(f"{path} has metrics format {d.get('format')}, this geo-risk reads "
                                 f"{METRICS_FORMAT} — run `geo-risk evaluate CONFIG` again")
        known = {f.name for f in fields(cls)}

        def num(v):
            return float("nan") if v is None else v

        def scores(b):
            return Scores(**{k: num(v) for k, v in b.items()})

        return cls(period=d["period"], pixels=d["pixels"], observed_loss_rate=d["observed_loss_rate"],
                   model=scores(d["model"]), baseline_distance_to_edge=scores(d["baseline_distance_to_edge"]),
                   zones=ZoneMetrics(**{k: (num(v) if k in ("mean_risk_std", "mean_risk_range") else v)
                                        for k, v in d["zones"].items()}),
                   format=d["format"], extra={k: v for k, v in d.items() if k not in known})


def _json_clean(o):
    if isinstance(o, dict):
        return {k: _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
