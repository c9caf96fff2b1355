"""The stages in order, and the small ones that only glue files together (map, config copy)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geo_risk.artifacts import Metrics
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
    """Write ``map.html``: the offline review map (geo_risk/review/, docs/review-map.md).

    Layers: risk and decision, and uncertainty, expected cost, VT0007 density and the observed
    loss of the forecast period when the run folder has them; zones with their audit;
    ``map.vectors`` of ``layers.distance_to`` (roads, settlements…); ``map.compare_run``'s risk and
    decision for the split view.
    """
    from geo_risk.review import CompareRun, read_raster, write_review_map
    from geo_risk.review.audit import observed_loss, stack_layers
    from geo_risk.review.vectors import VectorInput
    from geo_risk_errors import ConfigError

    paths = RunPaths(cfg.run_dir)
    fc = cfg.periods.forecast
    period = f"{fc.start_year}–{fc.end_year}"
    zones = cfg.layers.zones

    def present(name: str) -> Path | None:
        return paths.root / name if (paths.root / name).is_file() else None

    names = list(cfg.layers.distance_to) if cfg.map.vectors is None else cfg.map.vectors
    unknown = [n for n in names if n not in cfg.layers.distance_to]
    if unknown:
        raise ConfigError(f"map.vectors names {unknown}, which are not layers.distance_to layers: pick from "
                          f"{sorted(cfg.layers.distance_to)}")
    vectors = {}  # a distance_to entry is a path, or {path, layer, crs}
    for n in names:
        v = cfg.layers.distance_to[n]
        vectors[n] = VectorInput(cfg.data_path(getattr(v, "path", v)), getattr(v, "layer", None), getattr(v, "crs", None))
    compare = None
    if cfg.map.compare_run is not None:
        other = RunPaths(cfg.map.compare_run)
        compare = CompareRun(Path(cfg.map.compare_run).resolve().name, other.probability,
                             other.decision if other.decision.is_file() else None)
    layers = stack_layers(paths.stack)
    risk = read_raster(paths.probability, "risk")
    decision = read_raster(paths.decision, "decision") if paths.decision.is_file() else None
    out = write_review_map(
        paths.map, paths.probability, paths.decision, paths.zones if paths.zones.is_file() else None,
        action_names=cfg.decision.actions,
        title=f"{cfg.name}: risk of forest loss {period}",
        zone_note=zones.note if zones else "",
        attribution=cfg.attribution, max_size_px=cfg.map.max_size_px, inspect_max_px=cfg.map.inspect_max_px,
        inspect_max_mb=cfg.map.inspect_max_mb,
        basemaps=cfg.map.basemaps, zone_stats=_zone_stats(cfg, paths, layers, decision, risk),
        expected_cost_tif=present(paths.expected_cost.name), uncertainty_tif=present("uncertainty.tif"),
        density_tif=present("density.tif"), observed_loss=observed_loss(layers, risk), period=period,
        vectors=vectors, compare=compare,
    )
    log.info("map: %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def _zone_stats(cfg: RunConfig, paths: RunPaths, layers, decision, risk) -> dict[int, dict[str, str]]:
    """Each zone's audit for its popup: evaluate's (metrics.json) when there, else from the stack,
    ``zone_risk.csv`` and ``decision.tif`` (geo_risk/review/audit.py); empty without zones."""
    from geo_risk.review.audit import zone_audit

    if not paths.zones.is_file():
        return {}
    fc = cfg.periods.forecast
    return zone_audit(paths.zone_risk, paths.metrics, layers, decision,
                      pixel_area_ha=abs(risk.transform.a * risk.transform.e) / 1e4, actions=cfg.decision.actions,
                      period_start=fc.start_year, period=f"{fc.start_year}–{fc.end_year}")


@dataclass(frozen=True)
class RunSummary:
    """What ``geo-risk run`` did: the run folder, seconds per stage and each stage's result."""

    run_dir: Path
    timings_s: dict[str, float]
    tile: TileResult
    train: TrainResult
    decision: DecideResult
    metrics: Metrics


def run_all(cfg: RunConfig, force: bool = False) -> RunSummary:
    """tile → train → predict → decide → evaluate → map; returns a summary with timings.

    The tile stage reuses ``tiles/`` when its config and inputs are unchanged, unless ``force``."""
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

    tile = timed("tile", lambda c: run_tile(c, force=force))
    train = timed("train", run_train)
    timed("predict", run_predict)
    decision = timed("decide", run_decide)
    metrics = timed("evaluate", run_evaluate)
    timed("map", run_map)
    save_config(cfg)
    timings["total"] = round(time.perf_counter() - t_all, 1)
    return RunSummary(Path(cfg.run_dir), timings, tile, train, decision, metrics)
