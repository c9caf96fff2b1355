import pytest
import torch

from geo_risk.config import ModelConfig
from geo_risk.model import build_model, load_checkpoint, save_checkpoint
from geo_risk_errors import CheckpointError


def test_zone_offsets_shift_only_their_zone():
    torch.manual_seed(0)
    model = build_model(ModelConfig(zone_offsets=True), in_channels=3, num_zones=4).eval()
    x = torch.randn(1, 3, 32, 32)
    zone = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    zone[..., :16, :] = 2
    with torch.no_grad():
        base = model(x, zone)
        model.offset[2] = 1.5
        model.offset[0] = 9.0  # zone 0 means "no zone": never offset
        shifted = model(x, zone)
    diff = shifted - base
    torch.testing.assert_close(diff[..., :16, :], torch.full_like(diff[..., :16, :], 1.5))
    torch.testing.assert_close(diff[..., 16:, :], torch.zeros_like(diff[..., 16:, :]))


def test_checkpoint_round_trip(tmp_path):
    model = build_model(ModelConfig(zone_offsets=True), in_channels=2, num_zones=3)
    meta = {"model": ModelConfig(zone_offsets=True).model_dump(), "bands": ["a", "b"], "num_zones": 3}
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
