"""The segmentation model and its checkpoint (weights + everything needed to predict)."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from geo_risk.artifacts import CheckpointMeta
from geo_risk.config import ModelConfig
from geo_risk_errors import CheckpointError, ConfigError
from tiles.atomic import atomic_file


def build_model(cfg: ModelConfig, in_channels: int) -> torch.nn.Module:
    """A segmentation-models-pytorch network with one output logit per pixel.

    ``encoder_weights`` is None by default: nothing is downloaded unless the config asks for
    pretrained weights (e.g. "imagenet", which needs network access the first time).
    """
    try:
        cls = getattr(smp, cfg.arch)
        return cls(encoder_name=cfg.encoder, encoder_weights=cfg.encoder_weights, in_channels=in_channels, classes=1)
    except (KeyError, ValueError) as e:
        raise ConfigError(
            f"model.encoder: cannot build {cfg.arch} with encoder '{cfg.encoder}' ({e}) — pick an encoder listed by "
            "segmentation_models_pytorch.encoders.get_encoder_names()") from e


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
