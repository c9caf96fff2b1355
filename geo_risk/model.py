"""The segmentation model and its checkpoint (weights + everything needed to predict)."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from geo_risk.config import ModelConfig
from geo_risk_errors import CheckpointError
from tiles.atomic import atomic_file


class RiskModel(torch.nn.Module):
    """A segmentation network giving one logit per pixel, plus optional per-zone logit offsets.

    With ``zone_offsets`` the model learns one additive logit per community zone (zone 0, "no
    zone", stays at 0). The fairness term can then equalise zone-mean risk by moving these
    offsets instead of flattening the risk inside every zone; the offsets are plain numbers a
    reviewer can read (``meta["zone_offsets"]`` in the checkpoint).
    """

    def __init__(self, net: torch.nn.Module, num_zones: int, zone_offsets: bool):
        super().__init__()
        self.net = net
        self.offset = torch.nn.Parameter(torch.zeros(num_zones)) if zone_offsets else None

    def forward(self, image: torch.Tensor, zone: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.net(image)
        if self.offset is None or zone is None:
            return logits
        zone = zone.reshape(logits.shape).long()
        return logits + torch.where(zone > 0, self.offset[zone.clamp(min=0)], 0.0).to(logits.dtype)


def build_model(cfg: ModelConfig, in_channels: int, num_zones: int = 1) -> RiskModel:
    """A segmentation-models-pytorch network (``cfg.arch``/``cfg.encoder``) wrapped in :class:`RiskModel`.

    ``encoder_weights`` is None by default: nothing is downloaded unless the config asks for
    pretrained weights (e.g. "imagenet", which needs network access the first time).
    """
    try:
        cls = getattr(smp, cfg.arch)
        net = cls(encoder_name=cfg.encoder, encoder_weights=cfg.encoder_weights, in_channels=in_channels, classes=1)
        return RiskModel(net, num_zones, cfg.zone_offsets)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"model: cannot build {cfg.arch} with encoder '{cfg.encoder}' ({e}) — "
                              "pick an encoder listed by segmentation_models_pytorch.encoders.get_encoder_names()") from e


def save_checkpoint(path: Path, model: torch.nn.Module, meta: dict) -> None:
    """Write weights and metadata atomically (temporary file + rename)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint safely (``weights_only``) and rebuild its model in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found — run `geo-risk train CONFIG` first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        meta = ckpt["meta"]
        model = build_model(ModelConfig(**meta["model"]), len(meta["bands"]), int(meta["num_zones"]))
        model.load_state_dict(ckpt["state_dict"])
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or does not match its model ({e}) — "
                              "retrain with `geo-risk train CONFIG`") from e
    return model.eval(), meta
