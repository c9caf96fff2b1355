"""Run configuration: YAML in, validated pydantic models out.

Every model forbids unknown keys, so a typo fails loudly with the key named. Paths in a config
file are relative to that file's folder (data) or to the working directory (``output_dir``).

The models live in ``base.py`` (the strict base), ``layers.py`` (grid and input layers),
``periods.py``, ``stages.py`` (each stage's settings) and ``run.py`` (the whole run); reading and
writing a config in ``load.py``. Import them from here: ``from geo_risk.config import RunConfig``.
"""

from __future__ import annotations

from geo_risk.config.base import _refuse_old_keys, _Strict
from geo_risk.config.layers import (CodesForestChange, EcoPolygons, EcoRaster, EcoWeightConfig, ForestChangeConfig,
                                    ForestMask, GridConfig, HansenForestChange, LayersConfig, LossMask,
                                    LossMasksForestChange, MaskFile, MissingConfig, ProdesForestChange, RasterLayer,
                                    VectorLayer, YearlyMasksForestChange, ZonesConfig)
from geo_risk.config.load import DEFAULT_CONFIG, config_to_yaml, default_config, load_config
from geo_risk.config.periods import PeriodConfig, PeriodsConfig
from geo_risk.config.run import RunConfig
from geo_risk.config.stages import (SCHEDULER_ADDRESS, BudgetConfig, ChipsConfig, CostScaleConfig, DaskConfig,
                                    DecisionConfig, EvaluateConfig, LossConfig, MapConfig, ModelConfig, PredictConfig,
                                    TrainConfig)

__all__ = [
    "DEFAULT_CONFIG", "SCHEDULER_ADDRESS", "BudgetConfig", "ChipsConfig", "CodesForestChange", "CostScaleConfig",
    "DaskConfig", "DecisionConfig", "EcoPolygons", "EcoRaster", "EcoWeightConfig", "EvaluateConfig",
    "ForestChangeConfig", "ForestMask", "GridConfig", "HansenForestChange", "LayersConfig", "LossConfig", "LossMask",
    "LossMasksForestChange", "MapConfig", "MaskFile", "MissingConfig", "ModelConfig", "PeriodConfig",
    "PeriodsConfig", "PredictConfig", "ProdesForestChange", "RasterLayer", "RunConfig", "TrainConfig",
    "VectorLayer", "YearlyMasksForestChange", "ZonesConfig", "_Strict", "_refuse_old_keys", "config_to_yaml",
    "default_config", "load_config",
]
