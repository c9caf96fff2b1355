"""The ecological weight of the stack from polygons or from the forest itself (a raster weight is
read and scaled by :mod:`tiles.stack`): lazy, block by block, in [0, 1]."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd

from geo_risk_errors import ConfigError, InputDataError
from tiles.blockwise import burn_blocks, exact_quantile, window_share
from tiles.errors import InvalidGeometryError
from tiles.grid import Grid
from tiles.vectors import VectorSource, read_vector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EcoPolygons:
    """An ecological weight from polygons: ``value`` inside every polygon, or each polygon's numeric
    ``field``; ``background`` elsewhere. Weights in [0, 1]; where polygons overlap the largest wins."""

    source: VectorSource
    value: float | None = 1.0
    field: str | None = None
    background: float = 0.0


@dataclass(frozen=True)
class EcoForestDensity:
    """An ecological weight from the forest: its area density (share of forest) in a square window of
    side ``window_m`` around each pixel, at the start of the earliest period (:func:`eco_forest_density`)."""

    window_m: float = 1000.0
    power: float = 1.0


def normalise_eco_lazy(raw: da.Array, where: da.Array, quantile: float = 0.99) -> da.Array:
    """:func:`tiles.layers.normalise_eco` without a whole-grid array (an exact streaming quantile)."""
    scale = exact_quantile(raw, where, quantile)
    if not np.isfinite(scale) or scale <= 0:
        return da.where(da.isfinite(raw), np.float32(0), np.float32(np.nan)).astype("float32")
    return da.clip(raw / np.float32(scale), 0.0, 1.0).astype("float32")


def eco_from_polygons(e: EcoPolygons, grid: Grid) -> tuple[da.Array, str]:
    """The weight raster of :class:`EcoPolygons` (lazy) and a note for the stack's attributes."""
    gdf = read_vector(e.source, grid, "eco_weight")
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise InvalidGeometryError(f"layer 'eco_weight': {e.source} holds no polygons — give a polygon layer")
    if e.field is not None:
        if e.field not in gdf.columns:
            fields = [c for c in gdf.columns if c != gdf.geometry.name]
            raise InputDataError(f"layer 'eco_weight': field '{e.field}' not in {e.source} (fields: {fields}) — "
                                 "fix layers.eco_weight.field")
        values = pd.to_numeric(gdf[e.field], errors="coerce").to_numpy(dtype=float)
        what = f"field '{e.field}'"
    else:
        values = np.full(len(gdf), float(e.value))
        what = f"{e.value:g} inside"
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise InputDataError(
            f"layer 'eco_weight': {int(bad.sum())} polygon(s) of {e.source} have a weight ({what}) that is missing "
            f"or outside [0, 1] (e.g. {gdf[e.field].iloc[int(np.flatnonzero(bad)[0])]!r}) — scale the field to [0, 1]"
            if e.field else f"layer 'eco_weight': value {e.value} must lie in [0, 1]")
    order = np.argsort(values, kind="stable")  # the largest weight burns last: it wins where polygons overlap
    eco = burn_blocks(gdf.geometry.values[order], grid, values=values[order], all_touched=False, dtype="float32",
                      fill=float(e.background))
    note = f"polygons {e.source}: {what}, {e.background:g} elsewhere"
    log.info("eco_weight: %s", note)
    return eco, note


def eco_forest_density(forest: da.Array, window_m: float, resolution_m: float, year: int,
                       power: float = 1.0) -> tuple[da.Array, str]:
    """Forest area density (Riitters et al. 2000): the share of forest pixels in the square window of
    side ``window_m`` (an odd number of pixels, ≥ 3) centred on each pixel — beyond the grid counts as
    not forest — raised to ``power``. Computed block by block (lazy), with a note for the stack's
    attributes."""
    side = int(round(window_m / resolution_m))
    side += 1 - side % 2  # odd: centred on the pixel
    if side < 3:
        raise ConfigError(f"layers.eco_weight.window_m {window_m:g} m is under 3 pixels of {resolution_m:g} m — give "
                          f"at least {3 * resolution_m:g} m (the usual forest-density windows span 0.5–5 km)")
    if side > max(forest.shape):
        raise ConfigError(f"layers.eco_weight.window_m {window_m:g} m ({side} px) is wider than the grid "
                          f"({forest.shape[1]} × {forest.shape[0]} px) — give a window inside the region")
    density = window_share(forest, side)
    if power != 1:
        density = (density ** np.float32(power)).astype(np.float32)
    note = (f"forest area density: share of forest in a {side * resolution_m:g} m window ({side} × {side} px) "
            f"in {year}" + (f", to the power {power:g}" if power != 1 else ""))
    log.info("eco_weight: %s", note)
    return density, note
