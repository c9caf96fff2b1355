"""The evaluate stage's inputs, read and checked: risk.tif and decision.tif on the stack's grid, VT0007's
two periods from the layer stack (:func:`period_layers`), the zone offsets of the fairness projection."""

from __future__ import annotations

import ast
from dataclasses import dataclass

import dask
import numpy as np
import rasterio

from geo_risk.artifacts import RiskTags, read_zone_table
from geo_risk.config import RunConfig
from geo_risk.evaluate.verra import PeriodLayers
from geo_risk.export import true_values
from geo_risk.paths import RunPaths
from geo_risk.tiling import stack_spec
from geo_risk_errors import InputDataError
from tiles import open_store
from tiles.bands import DIST_EDGE, FOREST
from tiles.grid import Grid
from tiles.vectors import burn, read_vector


@dataclass(frozen=True)
class RunInputs:
    """The run's rasters on the grid, checked."""

    cal: PeriodLayers
    cnf: PeriodLayers
    inside: np.ndarray  # bool, inside the outline
    risk: np.ndarray  # risk.tif, float, NaN where no value
    decision: np.ndarray  # decision.tif, uint8, 255 where no value
    palette: list  # its colours per action (RGBA)
    valid: np.ndarray  # stack's valid mask of the forecast period (risk.tif has a value there)
    valid_cal: np.ndarray  # and of the calibration period: the model's map is masked to it the same way
    zone: np.ndarray  # int zone ids
    eco: np.ndarray  # ecological weight, NaN → 0
    pixel_size_m: tuple[float, float]
    pixel_area_ha: float
    grid: Grid
    tags: RiskTags
    filled_inputs: dict[str, int]


def _years(p) -> float:
    return float(p.end_year - p.start_year)


def period_layers(cfg: RunConfig, stack) -> tuple[PeriodLayers, PeriodLayers, np.ndarray]:
    """(calibration, confirmation, inside): VT0007's periods read from the layer stack — forest at each
    period's start inside the outline (the tile stage's mask: pixel centres inside), its loss, the distance
    to the edge — and the outline mask itself."""
    shape = (stack.sizes["y"], stack.sizes["x"])
    grid = Grid(crs=stack.rio.crs, transform=stack.rio.transform(), width=shape[1], height=shape[0])
    inside = np.ones(shape, dtype=bool)
    outline = stack_spec(cfg).outline  # the tile stage's own reading of layers.outline
    if outline is not None:
        inside = burn(list(read_vector(outline, grid, "outline").geometry), grid, all_touched=False).astype(bool)
    layers = {}
    with dask.config.set(scheduler="threads", num_workers=1):
        for key, pc in (("train", cfg.periods.train), ("forecast", cfg.periods.forecast)):
            sel = stack.sel(period=key)
            forest = (sel["features"].sel(band=FOREST).values == 1) & inside
            loss = sel["label"].values.astype(bool) & forest
            dist = sel["features"].sel(band=DIST_EDGE).values.astype(np.float64)
            layers[key] = PeriodLayers(f"{pc.start_year}-{pc.end_year}", _years(pc), forest, loss, dist)
    return layers["train"], layers["forecast"], inside


def load_inputs(cfg: RunConfig) -> RunInputs:
    """Read and check everything the stage needs; every bad input is an InputDataError naming the fix."""
    paths = RunPaths(cfg.run_dir)
    if not paths.probability.is_file():
        raise InputDataError(f"{paths.probability} not found — run `geo-risk predict CONFIG` first")
    if not paths.decision.is_file():
        raise InputDataError(f"{paths.decision} not found — run `geo-risk decide CONFIG` first")
    stack = open_store(paths.stack, "layer stack")
    crs, transform = stack.rio.crs, stack.rio.transform()
    shape = (stack.sizes["y"], stack.sizes["x"])
    with rasterio.open(paths.probability) as src:
        _same_grid(paths.probability, src, crs, transform, shape)
        risk = true_values(src)  # nodata → NaN, scale/offset applied (a uint16 risk.tif)
        tags = RiskTags.from_tags(src.tags(), paths.probability)
    with rasterio.open(paths.decision) as src:
        _same_grid(paths.decision, src, crs, transform, shape)
        decision = src.read(1)
        made_with = _matrix(src.tags().get("cost_matrix"))
        try:
            palette = [src.colormap(1)[i] for i in range(len(cfg.decision.actions))]
        except (ValueError, KeyError):  # no colour table
            palette = [(200, 200, 200, 255), (230, 85, 13, 255), (165, 15, 21, 255), (84, 39, 143, 255)]
    want = np.asarray(cfg.decision.cost, dtype=np.float64)
    if made_with is not None and (made_with.shape != want.shape or not np.allclose(made_with, want)):
        raise InputDataError(f"{paths.decision} was made with the cost matrix {made_with.tolist()}, the config says "
                             f"{cfg.decision.cost} — run `geo-risk decide CONFIG` again")
    grid = Grid(crs=crs, transform=transform, width=shape[1], height=shape[0])
    cal, cnf, inside = period_layers(cfg, stack)
    with dask.config.set(scheduler="threads", num_workers=1):
        valid = stack["valid"].sel(period="forecast").values.astype(bool)
        valid_cal = stack["valid"].sel(period="train").values.astype(bool)
        zone = stack["zone"].values.astype(np.int64)
        eco = np.nan_to_num(stack["eco"].values.astype(np.float64))
    if not cnf.forest.any():
        raise InputDataError(f"the forecast period {cnf.name} has no forest pixel inside the outline — check "
                             "periods.forecast.forest_codes")
    if not cnf.loss.any():
        raise InputDataError(
            f"the forecast period {cnf.name} has no observed forest loss in layers.forest_change (periods.forecast): "
            "evaluate scores a map against observed loss, so it needs a period whose outcome is known — forecast a "
            "period with labels, or skip `geo-risk evaluate`")
    if cfg.layers.zones is not None and not (zone[cnf.forest] > 0).any():
        raise InputDataError(f"no zone of layers.zones ({paths.zones}) covers a forest pixel of {cnf.name} inside the "
                             "outline: check the zones layer's extent and CRS, or set layers.zones to null")
    px, py = abs(transform.a), abs(transform.e)
    filled = _filled_inputs(stack.attrs.get("coverage"), "forecast")
    return RunInputs(cal, cnf, inside, risk, decision, palette, valid, valid_cal, zone, eco, (px, py),
                     px * py / 1e4, grid, tags, filled)


def _filled_inputs(coverage, period: str) -> dict[str, int]:
    """Per input layer, forest pixels of ``period`` whose value the tile stage filled (stack attrs)."""
    out = {}
    if isinstance(coverage, dict):
        for layer, c in coverage.items():
            n = c.get("periods", {}).get(period, {}).get("missing_px") if isinstance(c, dict) else None
            if isinstance(n, (int, float)) and n > 0:
                out[str(layer)] = int(n)
    return out


def _matrix(tag: str | None) -> np.ndarray | None:
    """The cost matrix decide wrote in decision.tif's tags, or None when absent or not a plain matrix."""
    try:
        m = np.asarray(ast.literal_eval(tag), dtype=np.float64) if tag else None
    except (ValueError, SyntaxError, TypeError):
        return None
    return m if m is not None and m.ndim == 2 else None


def _same_grid(path, src, crs, transform, shape) -> None:
    if src.shape != shape or src.transform != transform or src.crs != crs:
        raise InputDataError(
            f"{path} is not on the grid of the labels (tiles/stack.zarr): {src.shape[1]}×{src.shape[0]} px, "
            f"{src.crs}, origin ({src.transform.c:.1f}, {src.transform.f:.1f}) against {shape[1]}×{shape[0]} px, "
            f"{crs}, origin ({transform.c:.1f}, {transform.f:.1f}) — run `geo-risk predict CONFIG` (and decide) "
            "again after `geo-risk tile`")


def zone_offsets(paths: RunPaths, tags: RiskTags, num_ids: int) -> np.ndarray:
    """Per-zone logit offsets of the fairness projection (zone_risk.csv), 0 where none."""
    out = np.zeros(num_ids)
    if tags.zone_fairness_lambda > 0 and paths.zone_risk.is_file():
        t = read_zone_table(paths.zone_risk)
        ids = t.zone_id.to_numpy(dtype=np.int64)
        ok = ids < num_ids
        out[ids[ok]] = t.logit_offset.to_numpy(dtype=np.float64)[ok]
    return out
