"""Stage 3 — predict: window inference over a period of the stack, then the zone-fairness step.

Two steps, each testable alone:

* :func:`infer_logits` — blended sliding-window inference of a model (any ``torch.nn.Module``
  mapping (N, C, H, W) to (N, 1, H, W) logits) over a window reader; calibrated logits out.
* :func:`project_zones` — the explicit, logged zone-fairness projection of those logits
  (:mod:`geo_risk.fairness`), and the per-zone table it is judged by.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from tqdm.auto import tqdm

from geo_risk.artifacts import ZONE_TABLE_COLUMNS, CheckpointMeta, RiskTags, write_zone_table
from geo_risk.config import RunConfig
from geo_risk.export import write_cog
from geo_risk.fairness import fair_zone_offsets
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths
from geo_risk.zone_stats import zone_mean_risk, zone_pixels
from geo_risk_errors import CheckpointError
from tiles import open_store
from tiles.chips import normalise, window_starts

log = logging.getLogger(__name__)

#: reads the raw (C, size, size) feature window whose top-left pixel is (row, col)
WindowReader = Callable[[int, int, int], np.ndarray]


@dataclass(frozen=True)
class PredictResult:
    risk: Path
    zone_risk: Path
    windows: int
    seconds: float


@dataclass(frozen=True)
class RiskMap:
    """Calibrated probability per pixel (NaN where not valid) and how the zones were adjusted."""

    prob: np.ndarray
    windows: int
    zone_table: pd.DataFrame  # ZONE_TABLE_COLUMNS but the name


def taper(size: int, overlap: int) -> np.ndarray:
    """Blending weight of a window: 1 inside, a linear ramp over ``overlap`` px at each edge."""
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def infer_logits(model: torch.nn.Module, read: WindowReader, valid: np.ndarray, bands: list[str],
                 band_stats: dict, *, window_px: int, overlap_px: int, batch_size: int, temperature: float = 1.0,
                 device: torch.device | None = None) -> tuple[np.ndarray, int]:
    """Calibrated logits (logit / temperature) blended over overlapping windows.

    Windows with no valid pixel are skipped; pixels no window reached are NaN. Returns the logit
    map (float32, shape of ``valid``) and the number of windows run.
    """
    h, w = valid.shape
    size = min(window_px, h, w)
    overlap = min(overlap_px, size // 2)
    weight = taper(size, overlap)
    windows = [(r, c) for r in window_starts(h, size, size - overlap) for c in window_starts(w, size, size - overlap)
               if valid[r:r + size, c:c + size].any()]
    acc = np.zeros((h, w), dtype=np.float32)
    wsum = np.zeros((h, w), dtype=np.float32)
    device = device or torch.device("cpu")
    with torch.inference_mode():
        for i in tqdm(range(0, len(windows), batch_size), desc="predict", unit="batch", leave=False):
            batch = windows[i:i + batch_size]
            x = np.stack([normalise(read(r, c, size), bands, band_stats) for r, c in batch])
            logits = model(torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last))
            logits = (logits.float()[:, 0] / temperature).cpu().numpy()
            for (r, c), lg in zip(batch, logits):
                acc[r:r + size, c:c + size] += lg * weight
                wsum[r:r + size, c:c + size] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        logit = np.where(wsum > 0, np.clip(acc / wsum, -60, 60), np.nan).astype(np.float32)
    return logit, len(windows)


def project_zones(logit: np.ndarray, valid: np.ndarray, zone: np.ndarray, lambda_fair: float,
                  min_zone_pixels: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Probability map after the zone-fairness projection (λ 0: the plain sigmoid), NaN off ``valid``;
    and the per-zone table (zone_id, pixels, mean risk of the model and of the map, logit offset)."""
    valid = valid & np.isfinite(logit)
    z, g = logit[valid], np.asarray(zone)[valid].astype(np.int64)
    offsets = fair_zone_offsets(z, g, lambda_fair, min_zone_pixels)
    before, after = expit(z), expit(z + offsets[g])
    prob = np.full(valid.shape, np.nan, dtype=np.float32)
    prob[valid] = after
    mean_before, mean_after = zone_mean_risk(before, g, min_zone_pixels), zone_mean_risk(after, g, min_zone_pixels)
    counts = zone_pixels(g)
    ids = sorted(mean_before)
    table = pd.DataFrame({"zone_id": ids, "pixels": [int(counts[i]) for i in ids],
                          "mean_risk_model": [mean_before[i] for i in ids],
                          "mean_risk_map": [mean_after[i] for i in ids],
                          "logit_offset": [float(offsets[i]) for i in ids]})
    return prob, table


def predict_probability(cfg: RunConfig, period: str = "forecast") -> tuple[RiskMap, object]:
    """Window inference with the run's checkpoint over ``period`` of its stack, then :func:`project_zones`
    with ``predict.lambda_fair``. Opens the stack once; returns the map and that stack (for its grid)."""
    paths = RunPaths(cfg.run_dir)
    model, meta = load_checkpoint(paths.checkpoint)
    stack = open_store(paths.stack, "layer stack")
    check_bands(meta, [str(b) for b in stack.band.values], paths)
    sel = stack.sel(period=period)
    features = sel["features"].data  # lazy (band, y, x)
    valid = sel["valid"].values.astype(bool)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).to(memory_format=torch.channels_last)
    pc = cfg.predict
    logit, windows = infer_logits(
        model, lambda r, c, s: np.asarray(features[:, r:r + s, c:c + s].compute(scheduler="sync")), valid,
        meta.bands, meta.band_stats, window_px=pc.window_px, overlap_px=pc.overlap_px, batch_size=pc.batch_size,
        temperature=meta.temperature, device=device)
    if pc.lambda_fair > 0:
        log.info("predict: zone-fairness projection of the map, λ_fair %g (predict.lambda_fair; 0 turns it off)",
                 pc.lambda_fair)
    prob, table = project_zones(logit, valid, sel["zone"].values, pc.lambda_fair, cfg.loss.min_zone_pixels)
    return RiskMap(prob, windows, table), stack


def check_bands(meta: CheckpointMeta, bands: list[str], paths: RunPaths) -> None:
    """The stack must hold the bands the checkpoint was trained on, in that order."""
    if bands != meta.bands:
        raise CheckpointError(f"checkpoint {paths.checkpoint} was trained on bands {meta.bands} but the stack "
                              f"{paths.stack} holds {bands} — retrain with `geo-risk train`")


def run_predict(cfg: RunConfig) -> PredictResult:
    """Write ``risk.tif`` (the forecast-period probability of forest loss, a COG) and ``zone_risk.csv``."""
    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    risk, stack = predict_probability(cfg)
    fc = cfg.periods.forecast
    tags = RiskTags(description=f"probability of forest loss {fc.start_year}-{fc.end_year}", model=cfg.model.encoder,
                    run=cfg.name, zone_fairness_lambda=cfg.predict.lambda_fair)
    write_cog(paths.probability, risk.prob, stack.rio.crs, stack.rio.transform(), nodata=np.nan,
              tags=tags.to_tags(), overview_resampling="average")
    table = _with_names(risk.zone_table, paths.zones)
    write_zone_table(paths.zone_risk, table)
    secs = time.perf_counter() - t0
    log.info("predict: %d windows in %.1f s → %s", risk.windows, secs, paths.probability)
    if len(table):
        log.info("predict: zone-mean risk std over %d zones %.4f → %.4f (λ_fair %g; per zone: %s)",
                 len(table), table.mean_risk_model.std(ddof=0), table.mean_risk_map.std(ddof=0),
                 cfg.predict.lambda_fair, paths.zone_risk)
    return PredictResult(paths.probability, paths.zone_risk, risk.windows, secs)


def _with_names(table: pd.DataFrame, zones_file: Path) -> pd.DataFrame:
    """Add the zone names of the tiling's zones layer (empty names when there is none)."""
    names = (gpd.read_file(zones_file, columns=["zone_id", "name"], ignore_geometry=True) if zones_file.is_file()
             else pd.DataFrame({"zone_id": pd.Series(dtype="int64"), "name": pd.Series(dtype="str")}))
    return table.merge(names, on="zone_id", how="left")[ZONE_TABLE_COLUMNS]
