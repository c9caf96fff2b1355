"""Provenance tags for every raster geo-risk writes: what made it, from what, with which settings.

A verifier holding only ``risk.tif`` can tell the software version, the exact config (its hash;
the run folder's ``config.yaml`` hashes to it), the checkpoint (hash of ``model.pt``), the loss
weights, the calibration temperature and the period; ``decision.tif`` adds the cost matrix and
budgets. Tags are GDAL metadata (``gdalinfo`` shows them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from geo_risk import __version__
from geo_risk.config import RunConfig, config_to_yaml


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the resolved config as written to the run folder's ``config.yaml``."""
    return hashlib.sha256(config_to_yaml(cfg).encode()).hexdigest()


def provenance_tags(cfg: RunConfig, checkpoint: Path | None = None, temperature: float | None = None,
                    period: str | None = None) -> dict[str, str]:
    """The ``geo_risk_*`` tags shared by the run's rasters."""
    tags = {
        "geo_risk_version": __version__,
        "geo_risk_run": cfg.name,
        "geo_risk_config_sha256": config_hash(cfg),
        "geo_risk_loss_weights": f"lambda_eco={cfg.loss.lambda_eco:g},lambda_fair={cfg.loss.lambda_fair:g}",
        "geo_risk_model": f"{cfg.model.arch}/{cfg.model.encoder}",
    }
    if checkpoint is not None and Path(checkpoint).is_file():
        tags["geo_risk_checkpoint_sha256"] = sha256_file(checkpoint)
    if temperature is not None:
        tags["geo_risk_temperature"] = f"{temperature:.6g}"
    if period is not None:
        tags["geo_risk_period"] = period
    return tags
