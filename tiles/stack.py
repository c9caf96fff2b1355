"""The aligned layer stack: every input and derived layer on one grid, as a dask-backed Dataset.

Layout (xarray, rioxarray CRS):
    features (period, band, y, x) float32   model inputs per period, raw units (m, 0/1, …)
    label    (period, y, x)       uint8     forest lost during the period
    valid    (period, y, x)       uint8     forest at the period's start and every input known
    eco      (y, x)               float32   ecological weight in [0, 1]
    zone     (y, x)               int16     community zone id, 0 outside every zone
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.crs import CRS

from geo_risk_errors import InputDataError
from tiles.bands import FOREST_BANDS, band_names, distance_band  # noqa: F401  (FOREST_BANDS: re-exported)
from tiles.forest_change import ForestChangeSpec, PeriodCodes, check_forest_change
from tiles.grid import CHUNK_PX, Grid, aligned_grid, grid_from_raster, read_on_grid
from tiles.layers import codes_mask, distance_inside, distance_to, distance_to_edge, normalise_eco
from tiles.vectors import VectorSource, burn, grown_grid, polygon_zones, read_vector, voronoi_zones

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RasterInput:
    """A raster layer: a file, its band (None: a single-band file), the resampling onto the grid
    (``auto``: by ``kind``), and a nodata value for a file that has none."""

    path: Path
    resampling: str = "bilinear"
    band: int | None = None
    kind: str = "continuous"
    nodata: float | None = None

    def read(self, grid: Grid, layer: str) -> da.Array:
        return read_on_grid(self.path, grid, layer, self.resampling, self.band, self.kind, self.nodata).data


@dataclass(frozen=True)
class EcoPolygons:
    """An ecological weight from polygons: ``value`` inside every polygon, or each polygon's numeric
    ``field``; ``background`` elsewhere. Weights in [0, 1]; where polygons overlap the largest wins."""

    source: VectorSource
    value: float | None = 1.0
    field: str | None = None
    background: float = 0.0


@dataclass(frozen=True)
class GridSpec:
    """A grid from a CRS, a pixel size and bounds (or the extent of an AOI layer), pixels aligned."""

    crs: str
    resolution_m: float
    bounds: tuple[float, float, float, float] | None = None
    aoi: VectorSource | None = None


@dataclass(frozen=True)
class StackSpec:
    """What to put in the stack (plain paths and names: tiles does not know the app's config).

    ``grid``: a reference raster's path or a :class:`GridSpec`. ``eco_weight`` None: weight 1 on
    every pixel.
    """

    grid: Path | GridSpec
    forest_change: ForestChangeSpec
    periods: list[PeriodCodes]
    eco_weight: RasterInput | EcoPolygons | None = None
    rasters: dict[str, RasterInput] = field(default_factory=dict)
    distance_to: dict[str, VectorSource | Path] = field(default_factory=dict)
    #: features this far beyond the grid still count for the distances (a town 5 km outside is 5 km away)
    distance_margin_m: float = 10_000.0
    outline: VectorSource | Path | None = None
    zones: tuple[str, VectorSource | Path, str] | None = None  # (source, layer, name_field)

    @property
    def past_loss(self) -> bool:
        """Whether every period has a past-loss window (else the past-loss bands are left out)."""
        return all(p.past_loss_codes for p in self.periods)

    @property
    def bands(self) -> list[str]:
        """Band names in stack order (raises ConfigError when two layers would share one)."""
        return band_names(self.distance_to, self.rasters, past_loss=self.past_loss)


def resolve_grid(spec: Path | GridSpec) -> Grid:
    """The grid of a :class:`StackSpec`: a reference raster's, or aligned on a CRS and resolution."""
    if not isinstance(spec, GridSpec):
        return grid_from_raster(spec)
    if spec.bounds is not None:
        return aligned_grid(spec.crs, spec.resolution_m, spec.bounds)
    crs = CRS.from_user_input(spec.crs)
    aoi = read_vector(spec.aoi, None, "grid.aoi").to_crs(crs)
    return aligned_grid(crs, spec.resolution_m, tuple(aoi.total_bounds), "grid.aoi")


def _lazy(fn, *arrays, shape, dtype, **params) -> da.Array:
    """A global numpy computation ``fn(*arrays, **params)`` as a dask array, rechunked for writing.

    ``params`` are bound with functools.partial so dask does not traverse them (it would turn an
    Affine into a plain tuple).
    """
    task = dask.delayed(partial(fn, **params), pure=True)(*arrays)
    return da.from_delayed(task, shape=shape, dtype=dtype).rechunk(CHUNK_PX)


def build_zones(spec: StackSpec, grid: Grid, outline: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """Zone polygons (``zone_id``, ``name``) in the grid CRS, or None when no zones are configured."""
    if spec.zones is None:
        return None
    source, path, name_field = spec.zones
    layer = read_vector(path, grid, "zones", repair=source != "polygons")  # polygon_zones repairs, naming zones
    if source == "voronoi_points":
        return voronoi_zones(layer, outline, name_field)
    return polygon_zones(layer, name_field)


def forest_change_codes(fc: ForestChangeSpec, grid: Grid) -> tuple[da.Array, list[da.Array]]:
    """The canonical code raster of a forest-change format (lazy), and its inputs on the grid."""
    inputs = [read_on_grid(b.path, grid, name, "nearest", b.band).data for b, name in zip(fc.inputs, fc.input_names)]
    return da.map_blocks(fc.codes, *inputs, dtype="uint8"), inputs


def build_stack(spec: StackSpec) -> tuple[xr.Dataset, gpd.GeoDataFrame | None]:
    """Align and derive every layer lazily; returns the stack and the zone polygons.

    The forest-change inputs are read once here to count each code (and what a format cannot
    express, e.g. a yearly mask gaining forest): a period without forest or without loss, or a
    layer that is nodata everywhere, is refused before anything is written.
    """
    grid = resolve_grid(spec.grid)
    res = grid.resolution_m
    shape = grid.shape
    codes, fc_inputs = forest_change_codes(spec.forest_change, grid)
    fc_summary = check_forest_change(spec.forest_change, codes, fc_inputs, spec.periods)
    outline_gdf = read_vector(spec.outline, grid, "outline") if spec.outline else None
    if outline_gdf is not None:
        inside = _lazy(burn, shape=shape, dtype="uint8", geoms=list(outline_gdf.geometry), grid=grid,
                       all_touched=False).astype(bool)
    else:
        inside = da.ones(shape, dtype=bool, chunks=CHUNK_PX)
    static = {}
    margin = spec.distance_margin_m
    grown = grown_grid(grid, margin)
    pad = (grown.height - grid.height) // 2
    for name, path in spec.distance_to.items():
        gdf = read_vector(path, grid, f"distance_to.{name}", margin_m=margin)
        mask = _lazy(burn, shape=grown.shape, dtype="uint8", geoms=list(gdf.geometry), grid=grown)
        static[distance_band(name)] = _lazy(distance_inside, mask, shape=shape, dtype="float32", resolution_m=res,
                                            pad=pad)
    for name, r in spec.rasters.items():
        static[name] = r.read(grid, f"rasters.{name}")

    zones_gdf = build_zones(spec, grid, outline_gdf)
    if zones_gdf is not None:
        zone = _lazy(burn, shape=shape, dtype="int16", geoms=list(zones_gdf.geometry), grid=grid,
                     values=list(zones_gdf.zone_id), all_touched=False, dtype_out="int16")
    else:
        zone = da.zeros(shape, dtype="int16", chunks=CHUNK_PX)

    e = spec.eco_weight
    if isinstance(e, RasterInput):
        eco_raw = e.read(grid, "eco_weight")
        any_forest = codes_mask_lazy(codes, sorted({c for p in spec.periods for c in p.forest_codes}))
        eco = _lazy(lambda r, w: normalise_eco(r, w)[0], eco_raw, any_forest, shape=shape, dtype="float32")
        eco_note = f"raster {e.path}, scaled to [0, 1] by its 0.99 quantile over forest"
    elif isinstance(e, EcoPolygons):
        eco, eco_note = eco_from_polygons(e, grid)
    else:
        eco = da.ones(shape, dtype="float32", chunks=CHUNK_PX)
        eco_note = "none: every pixel weighs 1"
        log.info("eco_weight: none configured — every pixel weighs 1, so the loss's ecological term weighs "
                 "every missed loss alike")

    features, labels, valids = [], [], []
    for p in spec.periods:
        forest = codes_mask_lazy(codes, p.forest_codes)
        bands = [forest.astype("float32")]
        if spec.past_loss:
            past = codes_mask_lazy(codes, p.past_loss_codes)
        bands.append(_lazy(distance_to_edge, forest, shape=shape, dtype="float32", resolution_m=res))
        if spec.past_loss:
            bands[1:1] = [past.astype("float32")]
            bands.append(_lazy(distance_to, past, shape=shape, dtype="float32", resolution_m=res))
        bands += list(static.values())
        stacked = da.stack(bands).rechunk((len(bands), CHUNK_PX, CHUNK_PX))
        known = da.isfinite(stacked).all(axis=0) & da.isfinite(eco) & inside
        features.append(stacked)
        valids.append((forest.astype(bool) & known).astype("uint8"))
        labels.append(codes_mask_lazy(codes, p.loss_codes))

    fc = spec.forest_change
    ds = xr.Dataset(
        {
            "features": (("period", "band", "y", "x"), da.stack(features)),
            "label": (("period", "y", "x"), da.stack(labels)),
            "valid": (("period", "y", "x"), da.stack(valids)),
            "eco": (("y", "x"), eco),
            "zone": (("y", "x"), zone),
        },
        coords={"period": [p.name for p in spec.periods], "band": spec.bands, **grid.coords()},
        attrs={
            "periods": {p.name: f"{p.start_year}-{p.end_year}" for p in spec.periods},
            "past_loss": {p.name: (f"{p.past_loss_start_year}-{p.start_year}" if p.past_loss_start_year else "none")
                          for p in spec.periods},
            "forest_change": {"format": fc.format, "years": list(fc.years), **fc_summary},
            "eco_weight": eco_note,
            "resolution_m": res,
            "num_zones": int(len(zones_gdf) + 1) if zones_gdf is not None else 1,
        },
    )
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return ds, zones_gdf


def eco_from_polygons(e: EcoPolygons, grid: Grid) -> tuple[da.Array, str]:
    """The weight raster of :class:`EcoPolygons` (lazy) and a note for the stack's attributes."""
    gdf = read_vector(e.source, grid, "eco_weight")
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise InputDataError(f"layer 'eco_weight': {e.source} holds no polygons — give a polygon layer")
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
    eco = _lazy(burn, shape=grid.shape, dtype="float32", geoms=list(gdf.geometry.values[order]), grid=grid,
                values=list(values[order]), all_touched=False, dtype_out="float32", fill=float(e.background))
    note = f"polygons {e.source}: {what}, {e.background:g} elsewhere"
    log.info("eco_weight: %s", note)
    return eco, note


def codes_mask_lazy(codes: da.Array, wanted: list[int]) -> da.Array:
    """Blockwise :func:`codes_mask`."""
    if not wanted:
        raise InputDataError("periods: every list of forest-change codes needs at least one code")
    return da.map_blocks(codes_mask, codes, wanted, dtype="uint8")
