"""``model.pt``'s metadata and ``train_log.csv``'s columns (written by train, read by predict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from geo_risk_errors import CheckpointError

#: version of the checkpoint metadata; bump when a field changes meaning or is removed
CHECKPOINT_FORMAT = 1


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
