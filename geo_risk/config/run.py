"""A whole run's config: its name, folders, grid, layers, periods and every stage's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from geo_risk.config.base import _Strict
from geo_risk.config.layers import GridConfig, LayersConfig
from geo_risk.config.periods import PeriodsConfig
from geo_risk.config.stages import (ChipsConfig, DaskConfig, DecisionConfig, EvaluateConfig, LossConfig, MapConfig,
                                    ModelConfig, PredictConfig, TrainConfig)


class RunConfig(_Strict):
    name: str
    data_dir: Path
    output_dir: Path
    grid: GridConfig
    layers: LayersConfig
    periods: PeriodsConfig
    chips: ChipsConfig = ChipsConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    predict: PredictConfig = PredictConfig()
    decision: DecisionConfig = DecisionConfig()
    map: MapConfig = MapConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    dask: DaskConfig = DaskConfig()
    attribution: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError("name must be a non-empty folder-safe string")
        return v

    def data_path(self, path: Path) -> Path:
        """Resolve a data path given in the config against ``data_dir``."""
        return path if path.is_absolute() else self.data_dir / path

    @property
    def run_dir(self) -> Path:
        return self.output_dir
