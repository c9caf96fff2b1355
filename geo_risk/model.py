"""The segmentation model and its checkpoint (weights + everything needed to predict)."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from geo_risk.artifacts import CheckpointMeta
from geo_risk.config import ModelConfig
from geo_risk_errors import CheckpointError, ConfigError
from tiles.atomic import atomic_file


def architectures() -> list[str]:
    """The segmentation-models-pytorch architecture classes ``model.arch`` accepts."""
    base = smp.base.SegmentationModel
    return sorted(n for n in dir(smp) if isinstance(getattr(smp, n), type) and issubclass(getattr(smp, n), base)
                  and getattr(smp, n) is not base)


def build_model(cfg: ModelConfig, in_channels: int) -> torch.nn.Module:
    """A segmentation-models-pytorch network with one output logit per pixel.

    ``model.arch`` names any smp architecture class (Unet, UnetPlusPlus, FPN, DeepLabV3Plus, …) and
    ``model.encoder`` any smp encoder; an unknown one is a ConfigError listing the valid names.
    ``encoder_weights`` is None by default: nothing is downloaded unless the config asks for
    pretrained weights (e.g. "imagenet", which needs network access the first time).
    """
    archs = architectures()
    if cfg.arch not in archs:
        raise ConfigError(f"model.arch: unknown architecture '{cfg.arch}' — use one of {', '.join(archs)} "
                          "(segmentation_models_pytorch's architectures)")
    encoders = smp.encoders.get_encoder_names()
    if cfg.encoder not in encoders and not cfg.encoder.startswith("tu-"):
        raise ConfigError(f"model.encoder: unknown encoder '{cfg.encoder}' — use one of {', '.join(encoders)} "
                          "(segmentation_models_pytorch.encoders.get_encoder_names(); timm encoders as 'tu-NAME')")
    try:
        net = getattr(smp, cfg.arch)(encoder_name=cfg.encoder, encoder_weights=cfg.encoder_weights,
                                     in_channels=in_channels, classes=SKIP_WIDTH if cfg.input_skip else 1)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ConfigError(
            f"model: cannot build {cfg.arch} with encoder '{cfg.encoder}' and encoder_weights "
            f"{cfg.encoder_weights!r} ({e}) — pick another model.encoder (not every encoder suits every "
            "architecture, e.g. DPT needs a timm ViT) or encoder_weights: null") from e
    return InputSkip(net, in_channels) if cfg.input_skip else net


#: channels of the network's full-resolution output that meet the input bands in :class:`InputSkip`
SKIP_WIDTH = 16


class InputSkip(torch.nn.Module):
    """An smp network (``classes=SKIP_WIDTH``) whose full-resolution output is concatenated with the
    input bands and reduced to one logit by conv 3×3 → BatchNorm → ReLU → conv 1×1 (``model.input_skip``)."""

    def __init__(self, net: torch.nn.Module, in_channels: int, width: int = SKIP_WIDTH):
        super().__init__()
        self.net = net
        self.head = torch.nn.Sequential(
            torch.nn.Conv2d(width + in_channels, width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(width),
            torch.nn.ReLU(inplace=True), torch.nn.Conv2d(width, 1, 1))

    @property
    def encoder(self) -> torch.nn.Module:
        return self.net.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.net(x), x], dim=1))


def input_multiple(model: torch.nn.Module) -> int:
    """The side a model's input must be a multiple of (its encoder's output stride, 32 for a depth-5
    resnet U-Net; 16 for DeepLabV3Plus; 8 for DeepLabV3 and PSPNet)."""
    return int(getattr(getattr(model, "encoder", None), "output_stride", 32) or 32)


def save_checkpoint(path: Path, model: torch.nn.Module, meta: CheckpointMeta) -> None:
    """Write weights and metadata atomically (temporary file + rename)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        torch.save({"state_dict": state, "meta": meta.to_dict()}, tmp)


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, CheckpointMeta]:
    """Load a checkpoint safely (``weights_only``), check its format and rebuild its model in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found — run `geo-risk train CONFIG` first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        meta = CheckpointMeta.from_dict(ckpt.get("meta") if isinstance(ckpt, dict) else None, path)
        model = build_model(ModelConfig(**meta.model), len(meta.bands))
        model.load_state_dict(ckpt["state_dict"])
    except (CheckpointError, ConfigError):
        raise
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or does not match its model ({e}) — "
                              "retrain with `geo-risk train CONFIG`") from e
    return model.eval(), meta
