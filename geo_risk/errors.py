"""Re-export of the one exception hierarchy (defined in :mod:`geo_risk_errors`, below every package)."""

from geo_risk_errors import (  # noqa: F401
    CheckpointError,
    ChipStoreError,
    ConfigError,
    CRSMissingError,
    GeoRiskError,
    InputDataError,
    LossInputError,
    MissingInputError,
    NoOverlapError,
)
