"""The stages in order, and the small ones that only glue files together (map, config copy)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geo_risk.artifacts import Metrics, read_zone_table
from geo_risk.config import RunConfig, config_to_yaml
from geo_risk.paths import RunPaths
from tiles.atomic import atomic_file

if TYPE_CHECKING:
    from geo_risk.decide import DecideResult
    from geo_risk.tiling import TileResult
    from geo_risk.train import TrainResult

log = logging.getLogger(__name__)


def save_config(cfg: RunConfig) -> Path:
    """Write the resolved config into the run folder (atomically)."""
    path = RunPaths(cfg.run_dir).config
    with atomic_file(path) as tmp:
        tmp.write_text(config_to_yaml(cfg))
    return path


def run_map(cfg: RunConfig) -> Path:
    """Write ``map.html``: the offline review map of risk, decision and zones."""
    from geo_risk.review import write_review_map

    paths = RunPaths(cfg.run_dir)
    zones = cfg.layers.zones
    fc = cfg.periods.forecast
    out = write_review_map(
        paths.map, paths.probability, paths.decision, paths.zones if paths.zones.is_file() else None,
        action_names=cfg.decision.actions,
        title=f"{cfg.name}: risk of forest loss {fc.start_year}–{fc.end_year}",
        zone_note=zones.note if zones else "",
        attribution=cfg.attribution, max_size_px=cfg.map.max_size_px, zone_stats=_zone_stats(paths.zone_risk),
    )
    log.info("map: %s", out)
    return out


def _zone_stats(zone_risk: Path) -> dict[int, dict[str, str]]:
    """Tooltip lines per zone from predict's ``zone_risk.csv`` (empty when there is none)."""
    if not zone_risk.is_file():
        return {}
    t = read_zone_table(zone_risk)
    return {int(r.zone_id): {"Forest pixels": f"{int(r.pixels):,}",
                             "Mean risk (model)": f"{r.mean_risk_model:.3f}",
                             "Mean risk (map)": f"{r.mean_risk_map:.3f}"} for r in t.itertuples()}


@dataclass(frozen=True)
class RunSummary:
    """What ``geo-risk run`` did: the run folder, seconds per stage and each stage's result."""

    run_dir: Path
    timings_s: dict[str, float]
    tile: TileResult
    train: TrainResult
    decision: DecideResult
    metrics: Metrics


def run_all(cfg: RunConfig) -> RunSummary:
    """tile → train → predict → decide → evaluate → map; returns a summary with timings."""
    from geo_risk.decide import run_decide
    from geo_risk.evaluate import run_evaluate
    from geo_risk.predict import run_predict
    from geo_risk.tiling import run_tile
    from geo_risk.train import run_train

    timings, t_all = {}, time.perf_counter()

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn(cfg)
        timings[name] = round(time.perf_counter() - t0, 1)
        return out

    tile = timed("tile", run_tile)
    train = timed("train", run_train)
    timed("predict", run_predict)
    decision = timed("decide", run_decide)
    metrics = timed("evaluate", run_evaluate)
    timed("map", run_map)
    save_config(cfg)
    timings["total"] = round(time.perf_counter() - t_all, 1)
    return RunSummary(Path(cfg.run_dir), timings, tile, train, decision, metrics)
