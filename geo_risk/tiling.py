"""Stage 1 — tile: the config's layers → aligned stack, zones and chip store in ``<run>/tiles``."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from geo_risk.config import RunConfig
from geo_risk.paths import RunPaths
from geo_risk_errors import GeoRiskError
from tiles import StackSpec, build_stack, chip_index, open_store, write_chip_store, write_stack
from tiles.forest_change import (ForestChangeSpec, HansenGFC, LossMasks, RasterBand, YearlyMasks, forestatrisk_codes,
                                 period_codes, prodes_table)
from tiles.eco import EcoForestDensity, EcoPolygons
from tiles.stack import GridSpec, RasterInput
from tiles.vectors import VectorSource
from tiles.atomic import atomic_dir, clean_stale
from tiles.store import check_split
from tiles.scheduler import check_workers_see, use_scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileResult:
    stack: Path
    chips: Path
    zones: Path | None
    num_train: int
    num_val: int
    num_buffer: int
    bands: list[str]
    num_test: int = 0
    reused: bool = False  # the tiles already there were reused (config and inputs unchanged)


def forest_change_spec(cfg: RunConfig) -> ForestChangeSpec:
    """The tiles spec of ``layers.forest_change``, whatever its format."""
    p = cfg.data_path
    fc = cfg.layers.forest_change
    if fc.format == "codes":
        return forestatrisk_codes(RasterBand(p(fc.path), fc.band), fc.years)
    if fc.format == "prodes":
        return prodes_table(RasterBand(p(fc.path), fc.band), fc.classes, last_year=fc.last_year)
    if fc.format == "yearly_masks":
        if fc.files is not None:
            years = sorted(fc.files)
            masks = [RasterBand(p(fc.files[y])) for y in years]
        else:
            years = sorted(fc.bands)
            masks = [RasterBand(p(fc.path), fc.bands[y]) for y in years]
        return YearlyMasks(tuple(masks), tuple(years), tuple(fc.forest_values))
    if fc.format == "hansen":
        return HansenGFC(RasterBand(p(fc.lossyear)), RasterBand(p(fc.treecover2000)), fc.canopy_cover_pct,
                         fc.last_year)
    return LossMasks(
        RasterBand(p(fc.forest.path), fc.forest.band), tuple(RasterBand(p(m.path), m.band) for m in fc.loss),
        (fc.forest.year, *(m.end_year for m in fc.loss)), tuple(fc.forest.values),
        tuple(tuple(m.values) for m in fc.loss),
    )


def _vector(cfg: RunConfig, v) -> VectorSource:
    return VectorSource(cfg.data_path(v.path), v.layer, v.crs)


def _raster(cfg: RunConfig, r) -> RasterInput:
    return RasterInput(cfg.data_path(r.path), r.resampling, r.band, r.kind, r.nodata)


def stack_spec(cfg: RunConfig) -> StackSpec:
    """Translate the app config into the plain spec ``tiles`` works from.

    Raises ConfigError when a period's years are not years the forest-change layer holds.
    """
    p = cfg.data_path
    fc = forest_change_spec(cfg)
    periods = [period_codes(fc, name, per.start_year, per.end_year, per.past_loss_start_year)
               for name, per in (("train", cfg.periods.train), ("forecast", cfg.periods.forecast))]
    layers, g = cfg.layers, cfg.grid
    if g.reference is not None:
        grid = p(g.reference)
    else:
        grid = GridSpec(g.crs, g.resolution_m, g.bounds, _vector(cfg, g.aoi) if g.aoi is not None else None)
    eco = layers.eco_weight
    if eco is None:
        eco_spec = None
    elif eco.source == "polygons":
        eco_spec = EcoPolygons(_vector(cfg, eco), eco.value if eco.field is None and eco.value is not None
                               else (None if eco.field else 1.0), eco.field, eco.background)
    elif eco.source == "forest_density":
        eco_spec = EcoForestDensity(eco.window_m, eco.power)
    else:
        eco_spec = _raster(cfg, eco)
    return StackSpec(
        grid=grid,
        forest_change=fc,
        periods=periods,
        eco_weight=eco_spec,
        eco_as_input=eco is not None and eco.as_input,
        eco_power=eco.power if eco is not None and eco.source == "raster" else 1.0,
        rasters={n: _raster(cfg, r) for n, r in layers.rasters.items()},
        distance_to={n: _vector(cfg, v) for n, v in layers.distance_to.items()},
        distance_margin_m=layers.distance_margin_m,
        distance_cap_m=layers.distance_cap_m,
        fill_missing=layers.missing.fill,
        missing_indicator=layers.missing.indicator,
        context_windows_px=tuple(layers.context_windows_px),
        outline=_vector(cfg, layers.outline) if layers.outline else None,
        zones=((layers.zones.source, _vector(cfg, layers.zones.vector), layers.zones.name_field)
               if layers.zones else None),
    )


#: stack and chip-store attribute holding :func:`tiling_hash`
HASH_ATTR = "tiling_hash"


def _input_files(cfg: RunConfig) -> list[Path]:
    """Every file the tile stage reads: the layers' and the reference grid's, with a Shapefile's sidecars
    (same stem) and the files inside a folder input."""
    named = [cfg.data_path(p) for p in cfg.layers.paths()]
    if cfg.grid.reference is not None:
        named.append(cfg.data_path(cfg.grid.reference))
    if cfg.grid.aoi is not None:
        named.append(cfg.data_path(cfg.grid.aoi.path))
    files = set()
    for p in named:
        files.add(p)
        if p.suffix.lower() == ".shp" and p.parent.is_dir():
            files.update(q for q in p.parent.glob(f"{p.stem}.*") if q.stem == p.stem)
        elif p.is_dir():
            files.update(q for q in p.rglob("*") if q.is_file())
    return sorted(files)


def tiling_hash(cfg: RunConfig) -> str:
    """SHA-256 of what the tiles depend on: the grid, layers, periods and chips settings, the store format,
    and each input file's resolved path, size and modification time (a file replaced or touched counts as
    changed). Not ``dask`` (every scheduler gives the same tiles) nor the later stages' settings."""
    from tiles.store import STORE_FORMAT

    def stat(p: Path):
        try:
            s = p.stat()
            return [str(p.resolve()), s.st_size, s.st_mtime_ns]
        except OSError:
            return [str(p), None, None]

    what = {
        "settings": cfg.model_dump(mode="json", include={"grid", "layers", "periods", "chips"}),
        "data_dir": str(Path(cfg.data_dir).resolve()),
        "store_format": STORE_FORMAT,
        "inputs": [stat(p) for p in _input_files(cfg)],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def reusable_tiles(cfg: RunConfig, key: str) -> TileResult | None:
    """The tiles already in the run folder when they were made from this ``key`` (:func:`tiling_hash`), else None."""
    paths = RunPaths(cfg.run_dir)
    if not (paths.stack.is_dir() and paths.chips.is_dir() and (paths.chips / "index.parquet").is_file()):
        return None
    if cfg.layers.zones is not None and not paths.zones.is_file():
        return None
    try:
        stack, chips = open_store(paths.stack, "layer stack"), open_store(paths.chips, "chip store")
    except GeoRiskError:
        return None
    if stack.attrs.get(HASH_ATTR) != key or chips.attrs.get(HASH_ATTR) != key:
        return None
    counts = chips.attrs.get("split_counts", {})
    return TileResult(paths.stack, paths.chips, paths.zones if cfg.layers.zones is not None else None,
                      int(counts.get("train", 0)), int(counts.get("val", 0)), int(counts.get("buffer", 0)),
                      [str(b) for b in stack.band.values], int(counts.get("test", 0)), reused=True)


def run_tile(cfg: RunConfig, force: bool = False) -> TileResult:
    """Build and write the stack, the zone polygons and the chip store of the training period — or reuse
    ``<run>/tiles`` when it was made from the same settings and input files (:func:`tiling_hash`), unless
    ``force``.

    Everything is staged in a temporary folder that becomes ``<run>/tiles`` only when all of it
    succeeded, so a failure (e.g. too few chips) leaves no partial tiles behind. The dask work runs
    on ``cfg.dask``'s scheduler (tiles/scheduler.py), whose workers must see the run and data folders.
    """
    paths = RunPaths(cfg.run_dir)
    key = tiling_hash(cfg)
    if paths.root.is_dir():
        clean_stale(paths.tiles)  # a killed writer's staging folder goes, whether or not the tiles are rebuilt
    if paths.tiles.is_dir():
        reused = None if force else reusable_tiles(cfg, key)
        if reused is not None:
            log.info("tile: reusing tiles/ (config unchanged): %d train, %d val%s chips in %s — --force rebuilds it",
                     reused.num_train, reused.num_val, f", {reused.num_test} test" if reused.num_test else "",
                     paths.tiles)
            return reused
        log.info("tile: rebuilding tiles/ (%s)", "--force" if force else "its settings or input files changed")
    with use_scheduler(cfg.dask) as client:
        check_workers_see(client, paths.root, [cfg.data_path(p) for p in cfg.layers.paths()])
        return _tile(cfg, paths, key)


def _tile(cfg: RunConfig, paths: RunPaths, key: str) -> TileResult:
    t0 = time.perf_counter()
    ds, zones = build_stack(stack_spec(cfg))
    ds = ds.assign_attrs({HASH_ATTR: key})
    log.info("tile: stack of %d bands × 2 periods on a %d×%d grid; computing…",
             ds.sizes["band"], ds.sizes["y"], ds.sizes["x"])
    c = cfg.chips
    with atomic_dir(paths.tiles) as staging:
        write_stack(ds, staging / paths.stack.name)
        if zones is not None:
            (staging / paths.zones_dir.name).mkdir()
            zones.to_file(staging / paths.zones_dir.name / paths.zones.name, driver="GPKG")
        stack = open_store(staging / paths.stack.name, "layer stack", chunks={})  # Zarr's chunks: chips read less
        index = chip_index(stack, "train", c.size_px, c.stride_px, c.min_valid_fraction, c.block_size_px,
                           c.val_fraction, c.buffer_px, c.seed, c.max_chips, c.negative_keep, c.test_fraction)
        sampling = dict(index.attrs.get("sampling", {}))
        counts = check_split(index, c.test_fraction)
        if c.negative_keep < 1:
            log.info("tile: positive-aware sampling kept all %d chips with loss and %d of the %d without (%.0f %%, "
                     "weight %g each)", sampling["positive"], sampling["negative_kept"], sampling["negative"],
                     100 * c.negative_keep, 1 / c.negative_keep)
        write_chip_store(stack, "train", index, staging / paths.chips.name, c.size_px,
                         attrs={HASH_ATTR: key, "split_counts": counts, "sampling": sampling,
                                "test_fraction": c.test_fraction})
        bands = [str(b) for b in stack.band.values]
    log.info("tile: %d train, %d val%s chips (%d dropped in buffers) of %d px in %.1f s → %s",
             counts.get("train", 0), counts.get("val", 0),
             f", {counts.get('test', 0)} test" if counts.get("test", 0) else "", counts.get("buffer", 0), c.size_px,
             time.perf_counter() - t0, paths.tiles)
    return TileResult(paths.stack, paths.chips, paths.zones if zones is not None else None,
                      counts.get("train", 0), counts.get("val", 0), counts.get("buffer", 0), bands,
                      counts.get("test", 0))
