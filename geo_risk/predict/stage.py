"""Stage 3 — predict: seamless block inference over the forecast period, then the zone step.

1. :func:`geo_risk.predict.blocks.infer_blocks` — calibrated logits and their test-time
   augmentation spread, block by block, stored in a temporary Zarr beside the outputs;
2. :func:`geo_risk.predict.zones.project_zones` — the explicit, logged zone-fairness projection
   (``predict.lambda_fair``; 0 leaves the model's map as it is) and the per-zone table;
3. ``risk.tif``, ``uncertainty.tif`` (COGs written block by block) and ``zone_risk.csv``,
   renamed into place together.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from geo_risk.artifacts import ZONE_TABLE_COLUMNS, CheckpointMeta, RiskTags, write_zone_table
from geo_risk.config import RunConfig
from geo_risk.export import UINT16_NODATA, UINT16_STEPS, quantize_probability, write_cog_blocks
from geo_risk.model import load_checkpoint
from geo_risk.paths import RunPaths
from geo_risk.predict.blocks import ModelRef, infer_blocks, store_blocks
from geo_risk.predict.zones import project_zones
from geo_risk.provenance import provenance_tags
from geo_risk_errors import CheckpointError, InputDataError
from tiles import open_store
from tiles.atomic import atomic_files
from tiles.scheduler import check_workers_see, use_scheduler

log = logging.getLogger(__name__)

#: blocks per dask compute on this process's threads: neighbours in a row share their input chunks
#: (4: the data path 4.4 → 2.2 s on the demo; memory stays bounded by the batch, not the region)
LOCAL_BATCH = 4


@dataclass(frozen=True)
class PredictResult:
    risk: Path
    uncertainty: Path
    zone_risk: Path
    blocks: int
    pixels: int
    seconds: float


def check_bands(meta: CheckpointMeta, bands: list[str], paths: RunPaths) -> None:
    """The stack must hold the bands the checkpoint was trained on, in that order."""
    if bands != meta.bands:
        raise CheckpointError(f"checkpoint {paths.checkpoint} was trained on bands {meta.bands} but the stack "
                              f"{paths.stack} holds {bands} — retrain with `geo-risk train`")


def device_for(cfg: RunConfig) -> torch.device:
    """``train.device`` (auto, cpu, cuda; 'cuda' without a GPU warns and falls back to the CPU)."""
    from geo_risk.train import pick_device

    return pick_device(cfg.train.device)


def logits_of_period(cfg: RunConfig, period: str, offset: tuple[int, int] = (0, 0)):
    """Lazy (2, H, W) logits/spread of ``period`` with the run's checkpoint, and the opened stack."""
    out, sel, _ = _logits(cfg, period, offset)
    return out, sel


def _logits(cfg: RunConfig, period: str, offset: tuple[int, int] = (0, 0), *, on_workers: bool = False):
    """:func:`logits_of_period` plus the checkpoint's metadata. ``on_workers``: the blocks load the
    checkpoint themselves, once per process (a dask cluster's workers), instead of carrying the
    network loaded here."""
    paths = RunPaths(cfg.run_dir)
    model, meta = load_checkpoint(paths.checkpoint)
    stack = open_store(paths.stack, "layer stack")
    check_bands(meta, [str(b) for b in stack.band.values], paths)
    sel = stack.sel(period=period)
    device = device_for(cfg)
    if on_workers:
        model = ModelRef(str(paths.checkpoint.resolve()), str(device), cfg.dask.threads_per_worker)
    else:
        model = model.to(device).to(memory_format=torch.channels_last)
    pc = cfg.predict
    out = infer_blocks(model, sel["features"].data, sel["valid"].data, meta.bands, meta.band_stats,
                       block_px=pc.block_px, halo_px=pc.halo_px, tta=pc.tta, temperature=meta.temperature,
                       device=device, offset=offset)
    return out, sel, meta


def run_predict(cfg: RunConfig) -> PredictResult:
    """Write ``risk.tif`` (probability of forest loss in the forecast period), ``uncertainty.tif``
    (its spread over the test-time views) and ``zone_risk.csv``."""
    with use_scheduler(cfg.dask) as client:
        return _run_predict(cfg, client)


def _run_predict(cfg: RunConfig, client) -> PredictResult:
    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    paths = RunPaths(cfg.run_dir)
    pc = cfg.predict
    check_workers_see(client, paths.root, [paths.checkpoint])
    out, sel, meta = _logits(cfg, "forecast", on_workers=client is not None)
    nblocks = out.numblocks[1] * out.numblocks[2]
    log.info("predict: %d blocks of ≤ %d px with a %d px halo, %d test-time view%s, on %s", nblocks, pc.block_px,
             pc.halo_px, pc.tta, "s" if pc.tta > 1 else "", device_for(cfg))
    paths.root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".predict-scratch-", dir=paths.root))
    try:
        # one pass of the model, block by block: here one block at a time (torch uses the cores), on a
        # cluster one per worker thread, each worker process with its own copy of the network
        local = dask.config.set(scheduler="threads", num_workers=1) if client is None else nullcontext()
        batch = LOCAL_BATCH if client is None else max(LOCAL_BATCH, sum(client.nthreads().values()))
        with local:
            stored = store_blocks(out, scratch / "logits.zarr", batch=batch)
        logit, spread = stored[0], stored[1]
        valid = sel["valid"].data.rechunk(logit.chunks)
        zone = sel["zone"].data.rechunk(logit.chunks)
        if pc.lambda_fair > 0:
            log.info("predict: zone-fairness projection, λ_fair %g (predict.lambda_fair; 0 turns it off)",
                     pc.lambda_fair)
        offsets, table, fitted_on = project_zones(logit, valid, zone, pc.lambda_fair, cfg.loss.min_zone_pixels,
                                                  sample_px=pc.fit_sample_px)
        scored = (valid > 0) & da.isfinite(logit)
        if not bool(scored.any().compute()):
            raise InputDataError(f"the forecast period of {paths.stack} has no valid pixel to predict — check that "
                                 "layers.forest_change holds forest in periods.forecast.start_year inside the outline, "
                                 "and the inputs' nodata; then run `geo-risk tile` again")
        prob = da.where(scored, da.map_blocks(lambda lg, z: expit(lg + offsets[z.astype(np.int64)]), logit, zone,
                                              dtype=np.float32), np.nan).astype(np.float32)
        unc = da.where(scored, spread, np.nan).astype(np.float32)
        fc = cfg.periods.forecast
        period = f"{fc.start_year}-{fc.end_year}"
        tags = RiskTags(description=f"probability of forest loss {period}",
                        model=cfg.model.encoder, run=cfg.name, zone_fairness_lambda=pc.lambda_fair)
        prov = provenance_tags(cfg, paths.checkpoint, meta.temperature, period)
        crs, transform = sel.rio.crs, sel.rio.transform()
        table = _with_names(table, paths.zones)
        if pc.probability_dtype == "uint16":  # scaled integers: GDAL/QGIS read value · scale + offset
            prob, unc = quantize_probability(prob), quantize_probability(unc)
            store = dict(nodata=UINT16_NODATA, scale=1.0 / UINT16_STEPS, offset=0.0)
        else:
            store = dict(nodata=np.nan)
        with atomic_files([paths.probability, paths.uncertainty, paths.zone_risk]) as (t_risk, t_unc, t_zones):
            write_cog_blocks(t_risk, prob, crs, transform, tags={**tags.to_tags(), **prov},
                             overview_resampling="average", description=f"probability of forest loss {period}",
                             units="probability", **store)
            write_cog_blocks(t_unc, unc, crs, transform, overview_resampling="average",
                             tags={"description": f"std of the probability over {pc.tta} test-time views",
                                   "units": "probability", "run": cfg.name, "geo_risk_tta": str(pc.tta), **prov},
                             description="uncertainty: std of the probability over test-time views",
                             units="probability", **store)
            write_zone_table(t_zones, table, atomic=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    secs = time.perf_counter() - t0
    log.info("predict: %d blocks in %.1f s → %s", nblocks, secs, paths.probability)
    if len(table):
        log.info("predict: zone-mean risk std over %d zones %.4f → %.4f (λ_fair %g, fitted on %d pixels; per zone: %s)",
                 len(table), table.mean_risk_model.std(ddof=0), table.mean_risk_map.std(ddof=0), pc.lambda_fair,
                 fitted_on, paths.zone_risk)
    return PredictResult(paths.probability, paths.uncertainty, paths.zone_risk, nblocks, fitted_on, secs)


def _with_names(table: pd.DataFrame, zones_file: Path) -> pd.DataFrame:
    """Add the zone names of the tiling's zones layer (empty names when there is none)."""
    names = (gpd.read_file(zones_file, columns=["zone_id", "name"], ignore_geometry=True) if zones_file.is_file()
             else pd.DataFrame({"zone_id": pd.Series(dtype="int64"), "name": pd.Series(dtype="str")}))
    return table.merge(names, on="zone_id", how="left")[ZONE_TABLE_COLUMNS]
