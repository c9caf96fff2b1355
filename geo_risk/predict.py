"""Stage 3 — predict: blended sliding-window inference over the forecast-period stack."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm.auto import tqdm

from geo_risk.config import RunConfig
from geo_risk.export import write_cog
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths
from geo_risk_errors import CheckpointError
from tiles import open_store
from tiles.chips import normalise, window_starts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictResult:
    risk: Path
    windows: int
    seconds: float


def taper(size: int, overlap: int) -> np.ndarray:
    """Blending weight of a window: 1 inside, a linear ramp over ``overlap`` px at each edge."""
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def predict_probability(cfg: RunConfig, period: str = "forecast") -> tuple[np.ndarray, int]:
    """Calibrated probability of loss per pixel of ``period``; NaN where not valid."""
    paths = RunPaths(cfg.run_dir)
    model, meta = load_checkpoint(paths.checkpoint)
    stack = open_store(paths.stack, "layer stack")
    bands = [str(b) for b in stack.band.values]
    if bands != meta["bands"]:
        raise CheckpointError(f"checkpoint {paths.checkpoint} was trained on bands {meta['bands']} but the stack "
                              f"{paths.stack} holds {bands} — retrain with `geo-risk train`")
    g = zarr.open_group(str(paths.stack), mode="r")
    p_idx = [str(p) for p in stack.period.values].index(period)
    valid = np.asarray(g["valid"][p_idx]).astype(bool)
    h, w = valid.shape
    pc = cfg.predict
    size = min(pc.window_px, h, w)
    overlap = min(pc.overlap_px, size // 2)
    weight = taper(size, overlap)
    windows = [(r, c) for r in window_starts(h, size, size - overlap) for c in window_starts(w, size, size - overlap)
               if valid[r:r + size, c:c + size].any()]
    acc = np.zeros((h, w), dtype=np.float32)
    wsum = np.zeros((h, w), dtype=np.float32)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).to(memory_format=torch.channels_last)
    temperature = float(meta.get("temperature", 1.0))
    with torch.inference_mode():
        for i in tqdm(range(0, len(windows), pc.batch_size), desc="predict", unit="batch", leave=False):
            batch = windows[i:i + pc.batch_size]
            x = np.stack([normalise(g["features"][p_idx, :, r:r + size, c:c + size], bands, meta["band_stats"])
                          for r, c in batch])
            logits = model(torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last))
            logits = (logits.float()[:, 0] / temperature).cpu().numpy()
            for (r, c), lg in zip(batch, logits):
                acc[r:r + size, c:c + size] += lg * weight
                wsum[r:r + size, c:c + size] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        logit = acc / wsum
    prob = (1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))).astype(np.float32)
    prob[~valid | (wsum == 0)] = np.nan
    return prob, len(windows)


def run_predict(cfg: RunConfig) -> PredictResult:
    """Write ``risk.tif``: the forecast-period probability of forest loss as a COG."""
    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    prob, n = predict_probability(cfg)
    stack = open_store(paths.stack, "layer stack")
    fc = cfg.periods.forecast
    write_cog(paths.probability, prob, stack.rio.crs, stack.rio.transform(), nodata=np.nan,
              tags={"description": f"probability of forest loss {fc.start_year}-{fc.end_year}",
                    "units": "probability", "model": cfg.model.encoder, "run": cfg.name},
              overview_resampling="average")
    secs = time.perf_counter() - t0
    log.info("predict: %d windows in %.1f s → %s", n, secs, paths.probability)
    return PredictResult(paths.probability, n, secs)
