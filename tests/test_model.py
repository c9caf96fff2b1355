import pytest
import torch

from geo_risk.artifacts import CHECKPOINT_FORMAT, CheckpointMeta
from geo_risk.config import ModelConfig
from geo_risk.model import build_model, load_checkpoint, save_checkpoint
from geo_risk_errors import CheckpointError


def _meta(**kw) -> CheckpointMeta:
    base = dict(model=ModelConfig().model_dump(), bands=["a", "b"], band_stats={}, num_zones=3, temperature=1.3,
                epoch=2, val_auc=0.8, val_ap=0.1, config_yaml="name: x\n")
    return CheckpointMeta(**{**base, **kw})


def test_checkpoint_round_trip(tmp_path):
    model = build_model(ModelConfig(), in_channels=2)
    save_checkpoint(tmp_path / "m.pt", model, _meta())
    loaded, got = load_checkpoint(tmp_path / "m.pt")
    assert got == _meta() and got.format == CHECKPOINT_FORMAT and not loaded.training
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

    with pytest.raises(ConfigError, match="model.encoder.*resnet1800.*resnet18, .*mobilenet_v2"):
        build_model(ModelConfig(encoder="resnet1800"), in_channels=3)


def test_unknown_architecture_is_a_config_error_naming_the_valid_ones():
    from geo_risk_errors import ConfigError

    with pytest.raises(ConfigError, match=r"model\.arch: unknown architecture 'UNet'.*DeepLabV3Plus, FPN.*Unet, "
                                          r"UnetPlusPlus"):
        build_model(ModelConfig(arch="UNet"), in_channels=3)
    with pytest.raises(ConfigError, match=r"model\.arch: unknown architecture 'SegmentationModel'"):
        build_model(ModelConfig(arch="SegmentationModel"), in_channels=3)


#: each architecture's input multiple (its encoder's output stride with resnet18); all divide predict's 32 px lattice
ARCHS = {"Unet": 32, "UnetPlusPlus": 32, "FPN": 32, "DeepLabV3Plus": 16}


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_builds_and_maps_a_chip_to_one_logit_per_pixel(arch, tmp_path):
    from geo_risk.model import input_multiple

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, encoder="resnet18"), in_channels=5).eval()
    assert type(model).__name__ == arch
    assert input_multiple(model) == ARCHS[arch] and 32 % input_multiple(model) == 0
    with torch.no_grad():
        for side in (128, 96):  # 96: on predict's 32 px lattice but not a power of two
            out = model(torch.randn(1, 5, side, side))
            assert out.shape == (1, 1, side, side) and torch.isfinite(out).all()
    # and it round-trips through a checkpoint (load_checkpoint rebuilds it from the meta's model dict)
    save_checkpoint(tmp_path / "m.pt", model, _meta(model=ModelConfig(arch=arch).model_dump(), bands=list("abcde")))
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert type(loaded).__name__ == arch and meta.model["arch"] == arch


def test_checkpoint_of_an_older_version_is_refused_with_the_fix(tmp_path):
    """A checkpoint whose metadata has no or another format version is named as such, not half-read."""
    model = build_model(ModelConfig(), in_channels=2)
    state = model.state_dict()
    old = _meta().to_dict()
    del old["format"]  # what geo-risk 0.1 wrote
    torch.save({"state_dict": state, "meta": old}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"older geo-risk.*reads format 1.*geo-risk train"):
        load_checkpoint(tmp_path / "old.pt")
    torch.save({"state_dict": state, "meta": {**old, "format": 99}}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="checkpoint format 99"):
        load_checkpoint(tmp_path / "new.pt")
    partial = {k: v for k, v in _meta().to_dict().items() if k != "temperature"}
    torch.save({"state_dict": state, "meta": partial}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"lacks \['temperature'\]"):
        load_checkpoint(tmp_path / "partial.pt")


def test_input_skip_sees_the_input_at_full_resolution_and_round_trips(tmp_path):
    """model.input_skip: one logit per pixel from the network's full-resolution output and the input
    bands; a one-pixel change of the input moves that pixel's logit through the skip even when the
    network's own output is held fixed (what a stride-2 first layer alone cannot guarantee)."""
    from geo_risk.model import InputSkip, input_multiple

    torch.manual_seed(0)
    cfg = ModelConfig(input_skip=True)
    model = build_model(cfg, in_channels=3).eval()
    assert isinstance(model, InputSkip) and input_multiple(model) == 32
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (1, 1, 64, 64) and torch.isfinite(out).all()
        inner = model.net(x)
        bumped = x.clone()
        bumped[0, :, 10, 11] += 5.0
        head_only = model.head(torch.cat([inner, bumped], dim=1)) - model.head(torch.cat([inner, x], dim=1))
    changed = head_only[0, 0].abs() > 1e-6
    assert changed[10, 11] and changed.sum() <= 9  # the pixel and at most its 3×3 neighbours
    save_checkpoint(tmp_path / "m.pt", model, _meta(model=cfg.model_dump(), bands=list("abc")))
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert isinstance(loaded, InputSkip) and meta.model["input_skip"] is True
    with torch.no_grad():
        assert torch.equal(loaded(x), out)
