import pytest
import torch

from geo_risk.config import ModelConfig
from geo_risk.model import build_model, load_checkpoint, save_checkpoint
from geo_risk_errors import CheckpointError


def test_checkpoint_round_trip(tmp_path):
    model = build_model(ModelConfig(), in_channels=2)
    meta = {"model": ModelConfig().model_dump(), "bands": ["a", "b"], "num_zones": 3}
    save_checkpoint(tmp_path / "m.pt", model, meta)
    loaded, got = load_checkpoint(tmp_path / "m.pt")
    assert got["bands"] == ["a", "b"] and not loaded.training
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_corrupt_checkpoint_says_retrain(tmp_path):
    bad = tmp_path / "m.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="retrain"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="geo-risk train"):
        load_checkpoint(tmp_path / "missing.pt")


def test_unknown_encoder_is_a_config_error():
    from geo_risk_errors import ConfigError

    with pytest.raises(ConfigError, match="model.encoder.*resnet1800"):
        build_model(ModelConfig(encoder="resnet1800"), in_channels=3)
