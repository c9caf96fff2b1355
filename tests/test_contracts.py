"""The hand-offs between stages (geo_risk/artifacts.py, tiles/store.py): written, read back, and
refused with the fix when they come from another version or lack a part."""

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import zarr

from geo_risk.artifacts import (METRICS_FORMAT, ZONE_TABLE_COLUMNS, Metrics, RiskTags, Scores, ZoneMetrics, read_zone_table,
                                train_log_columns, write_zone_table)
from geo_risk.paths import RunPaths
from geo_risk_errors import ChipStoreError, InputDataError, TrainingError
from losses import LOSS_PARTS
from tests.conftest import synthetic_config
from tiles.store import STORE_FORMAT


def _drop_format(store, value=None):
    g = zarr.open_group(str(store), mode="r+")
    if value is None:
        del g.attrs["store_format"]
    else:
        g.attrs["store_format"] = value
    zarr.consolidate_metadata(str(store))


@pytest.mark.parametrize("value,phrase", [(None, "older geo-risk"), (1, "store format 1")])
def test_stores_of_another_version_are_refused_with_the_fix(synthetic_run, tmp_path, value, phrase):
    from geo_risk.data import ChipDataset
    from tiles import open_store

    paths = RunPaths(synthetic_run.cfg.run_dir)
    stack, chips = tmp_path / "stack.zarr", tmp_path / "chips.zarr"
    shutil.copytree(paths.stack, stack)
    shutil.copytree(paths.chips, chips)
    assert open_store(stack, "layer stack").attrs["store_format"] == STORE_FORMAT  # as written by this version
    _drop_format(stack, value)
    _drop_format(chips, value)
    with pytest.raises(ChipStoreError, match=rf"layer stack .*stack.zarr.*{phrase}.*geo-risk tile"):
        open_store(stack, "layer stack")
    with pytest.raises(ChipStoreError, match=rf"chip store .*chips.zarr.*{phrase}.*geo-risk tile"):
        ChipDataset(chips, "train")


def test_all_nan_validation_is_a_training_error_and_writes_no_checkpoint(synthetic_region, synthetic_run, tmp_path,
                                                                         monkeypatch):
    import geo_risk.train.loop as train

    cfg = synthetic_config(synthetic_region, tmp_path / "run")
    shutil.copytree(RunPaths(synthetic_run.cfg.run_dir).tiles, RunPaths(cfg.run_dir).tiles)
    real = train._validate

    def nan_validate(*a, **k):
        metrics, logits = real(*a, **k)
        return {**metrics, "val_total": float("nan")}, logits

    monkeypatch.setattr(train, "_validate", nan_validate)
    with pytest.raises(TrainingError, match=r"every validation loss was NaN.*train.lr"):
        train.run_train(cfg)
    assert not RunPaths(cfg.run_dir).checkpoint.exists()


def test_train_log_columns_follow_the_loss_parts():
    assert train_log_columns(LOSS_PARTS) == ["epoch", "train_total", "train_accuracy", "train_eco",
                                             "train_fairness", "val_total", "val_auc", "val_ap"]


def test_metrics_round_trip_keeps_nan_as_null(tmp_path):
    m = Metrics(period="2010-2015", pixels=10, observed_loss_rate=0.1,
                model=Scores(0.9, 0.3, float("nan")), baseline_distance_to_edge=Scores(0.8, 0.2, 0.1),
                zones=ZoneMetrics(count=0, min_pixels=50, mean_risk_std=float("nan"), mean_risk_range=float("nan")))
    m.write(tmp_path / "metrics.json")
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and '"eco_weighted_recall_at_observed_rate": null' in text
    back = Metrics.read(tmp_path / "metrics.json")
    assert back.model.auc == 0.9 and math.isnan(back.model.eco_weighted_recall_at_observed_rate)
    assert back.zones.count == 0 and math.isnan(back.zones.mean_risk_std) and back.format == METRICS_FORMAT
    (tmp_path / "old.json").write_text(text.replace(f'"format": {METRICS_FORMAT}', '"format": 0'))
    with pytest.raises(InputDataError, match="metrics format 0.*geo-risk evaluate"):
        Metrics.read(tmp_path / "old.json")


def test_risk_tags_round_trip_and_a_foreign_raster_is_named(tmp_path):
    tags = RiskTags(description="p", model="resnet18", run="demo", zone_fairness_lambda=20.0)
    assert RiskTags.from_tags(tags.to_tags(), tmp_path / "risk.tif") == tags
    with pytest.raises(InputDataError, match=r"risk.tif lacks the geo-risk tag 'zone_fairness_lambda'"):
        RiskTags.from_tags({"description": "p", "model": "m", "run": "r"}, tmp_path / "risk.tif")


def test_zone_table_round_trip_and_missing_columns(tmp_path):
    t = pd.DataFrame({"zone_id": [1, 2], "name": ["A", ""], "pixels": [60, 70], "mean_risk_model": [0.1, 0.2],
                      "mean_risk_map": [0.15, 0.15], "logit_offset": [0.4, -0.3]})
    write_zone_table(tmp_path / "zone_risk.csv", t[ZONE_TABLE_COLUMNS[::-1]])  # any column order in
    back = read_zone_table(tmp_path / "zone_risk.csv")
    assert list(back.columns) == ZONE_TABLE_COLUMNS and back.name.tolist() == ["A", ""]
    np.testing.assert_allclose(back.logit_offset, [0.4, -0.3])
    t.drop(columns="logit_offset").to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(InputDataError, match=r"lacks the columns \['logit_offset'\].*geo-risk predict"):
        read_zone_table(tmp_path / "old.csv")
