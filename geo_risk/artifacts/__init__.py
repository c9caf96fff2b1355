"""The files stages hand each other: one typed definition per artefact, with its writer and reader.

| artefact            | written by | read by                     | defined as (module)                               |
|---------------------|------------|-----------------------------|---------------------------------------------------|
| ``model.pt`` meta   | train      | predict, scripts            | :class:`CheckpointMeta`, versioned (``checkpoint``) |
| ``train_log.csv``   | train      | plots, users                | :func:`train_log_columns` (``checkpoint``)        |
| ``risk.tif`` tags   | predict    | evaluate                    | :class:`RiskTags` (``risk``)                      |
| ``zone_risk.csv``   | predict    | evaluate, map               | :data:`ZONE_TABLE_COLUMNS` (``risk``)             |
| ``metrics.json``    | evaluate   | cli, users, report          | :class:`Metrics`, versioned (``metrics``)         |

The layer stack and chip store (Zarr) are defined in :mod:`tiles.store`, band names in
:mod:`tiles.bands`. A file written by an older version is recognised and refused with the command
that rebuilds it, never half-read.
"""

from geo_risk.artifacts.checkpoint import CHECKPOINT_FORMAT, CheckpointMeta, train_log_columns
from geo_risk.artifacts.metrics import (
    METRICS_FORMAT,
    BaselineFit,
    BaselineMargin,
    BaselinesRun,
    CellErrors,
    Coverage,
    DecisionRule,
    DecisionValue,
    FairnessAudit,
    GapSummary,
    Interval,
    Metrics,
    ReliabilityCurve,
    ScoreCard,
    Scores,
    ValidationErrors,
    Vt0007Map,
    Vt0007Metrics,
    ZoneAudit,
    ZoneMetrics,
)
from geo_risk.artifacts.risk import ZONE_TABLE_COLUMNS, RiskTags, read_zone_table, write_zone_table

__all__ = [
    "CHECKPOINT_FORMAT", "METRICS_FORMAT", "ZONE_TABLE_COLUMNS",
    "BaselineFit", "BaselineMargin", "BaselinesRun", "CellErrors", "CheckpointMeta", "Coverage",
    "DecisionRule", "DecisionValue", "FairnessAudit", "GapSummary", "Interval", "Metrics",
    "ReliabilityCurve", "RiskTags", "ScoreCard", "Scores", "ValidationErrors", "Vt0007Map",
    "Vt0007Metrics", "ZoneAudit", "ZoneMetrics",
    "read_zone_table", "train_log_columns", "write_zone_table",
]
