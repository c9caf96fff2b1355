"""Stage 3 — predict: blended sliding-window inference over the forecast-period stack."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
import zarr
from scipy.special import expit
from tqdm.auto import tqdm

from geo_risk.config import RunConfig
from geo_risk.evaluate import zone_mean_risk
from geo_risk.export import write_cog
from geo_risk.fairness import fair_zone_offsets
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths
from geo_risk_errors import CheckpointError
from tiles import open_store
from tiles.atomic import atomic_file
from tiles.chips import normalise, window_starts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictResult:
    risk: Path
    windows: int
    seconds: float


@dataclass(frozen=True)
class RiskMap:
    """Calibrated probability per pixel (NaN where not valid) and how the zones were adjusted."""

    prob: np.ndarray
    windows: int
    zone_table: pd.DataFrame  # zone, pixels, mean risk before and after the projection, offset


def taper(size: int, overlap: int) -> np.ndarray:
    """Blending weight of a window: 1 inside, a linear ramp over ``overlap`` px at each edge."""
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def predict_probability(cfg: RunConfig, period: str = "forecast") -> RiskMap:
    """Calibrated probability of loss per pixel of ``period``, projected onto a zone-fairer map
    when ``predict.lambda_fair`` > 0 (see :mod:`geo_risk.fairness`)."""
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
        logit = np.clip(acc / wsum, -60, 60)
    valid &= wsum > 0
    zone = np.asarray(g["zone"]).astype(np.int64)
    offsets = fair_zone_offsets(logit[valid], zone[valid], pc.lambda_fair, cfg.loss.min_zone_pixels)
    before = expit(logit[valid])
    prob = np.full((h, w), np.nan, dtype=np.float32)
    prob[valid] = expit(logit[valid] + offsets[zone[valid]])
    table = zone_table(before, prob[valid], zone[valid], offsets, cfg.loss.min_zone_pixels)
    return RiskMap(prob, len(windows), table)


def zone_table(before: np.ndarray, after: np.ndarray, zone: np.ndarray, offsets: np.ndarray,
               min_pixels: int) -> pd.DataFrame:
    """Per zone (id ≥ 1, ≥ ``min_pixels`` valid pixels): pixels, mean risk before/after, logit offset."""
    mean_before = zone_mean_risk(before, zone, min_pixels)
    mean_after = zone_mean_risk(after, zone, min_pixels)
    counts = np.bincount(zone)
    ids = sorted(mean_before)
    return pd.DataFrame({"zone_id": ids, "pixels": [int(counts[i]) for i in ids],
                         "mean_risk_model": [mean_before[i] for i in ids],
                         "mean_risk_map": [mean_after[i] for i in ids],
                         "logit_offset": [float(offsets[i]) for i in ids]})


def run_predict(cfg: RunConfig) -> PredictResult:
    """Write ``risk.tif``: the forecast-period probability of forest loss as a COG."""
    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    risk = predict_probability(cfg)
    stack = open_store(paths.stack, "layer stack")
    fc = cfg.periods.forecast
    write_cog(paths.probability, risk.prob, stack.rio.crs, stack.rio.transform(), nodata=np.nan,
              tags={"description": f"probability of forest loss {fc.start_year}-{fc.end_year}",
                    "units": "probability", "model": cfg.model.encoder, "run": cfg.name,
                    "zone_fairness_lambda": str(cfg.predict.lambda_fair)},
              overview_resampling="average")
    table = _with_names(risk.zone_table, paths.zones)
    with atomic_file(paths.zone_risk) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    secs = time.perf_counter() - t0
    log.info("predict: %d windows in %.1f s → %s", risk.windows, secs, paths.probability)
    if len(table):
        log.info("predict: zone-mean risk std over %d zones %.4f → %.4f (λ_fair %g; per zone: %s)",
                 len(table), table.mean_risk_model.std(ddof=0), table.mean_risk_map.std(ddof=0),
                 cfg.predict.lambda_fair, paths.zone_risk)
    return PredictResult(paths.probability, risk.windows, secs)


def _with_names(table: pd.DataFrame, zones_file: Path) -> pd.DataFrame:
    """Add the zone names of the tiling's zones layer (empty names when there is none)."""
    names = (gpd.read_file(zones_file, columns=["zone_id", "name"], ignore_geometry=True) if zones_file.is_file()
             else pd.DataFrame({"zone_id": pd.Series(dtype="int64"), "name": pd.Series(dtype="str")}))
    return table.merge(names, on="zone_id", how="left")[["zone_id", "name", *table.columns[1:]]]
