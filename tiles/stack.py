"""The aligned layer stack: every input and derived layer on one grid, as a dask-backed Dataset.

Layout (xarray, rioxarray CRS):
    features (period, band, y, x) float32   model inputs per period, raw units (m, 0/1, …)
    label    (period, y, x)       uint8     forest lost during the period
    valid    (period, y, x)       uint8     forest at the period's start and every input known
    eco      (y, x)               float32   ecological weight in [0, 1]
    zone     (y, x)               int16     community zone id, 0 outside every zone
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr

from geo_risk_errors import InputDataError
from tiles.bands import FOREST_BANDS, band_names  # noqa: F401  (FOREST_BANDS: re-exported)
from tiles.grid import CHUNK_PX, Grid, grid_from_raster, read_on_grid
from tiles.layers import codes_mask, distance_to, distance_to_edge, normalise_eco
from tiles.vectors import burn, polygon_zones, read_vector, voronoi_zones


@dataclass(frozen=True)
class PeriodCodes:
    """A transition start→end read from forest-change codes."""

    name: str
    start_year: int
    end_year: int
    forest_codes: list[int]
    past_loss_codes: list[int]
    loss_codes: list[int]


@dataclass(frozen=True)
class StackSpec:
    """What to put in the stack (plain paths and names: tiles does not know the app's config)."""

    reference: Path
    forest_change: Path
    periods: list[PeriodCodes]
    eco_weight: tuple[Path, str]
    rasters: dict[str, tuple[Path, str]] = field(default_factory=dict)
    distance_to: dict[str, Path] = field(default_factory=dict)
    outline: Path | None = None
    zones: tuple[str, Path, str] | None = None  # (source, path, name_field)

    @property
    def bands(self) -> list[str]:
        """Band names in stack order (raises ConfigError when two layers would share one)."""
        return band_names(self.distance_to, self.rasters)


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
    layer = read_vector(path, grid, "zones")
    if source == "voronoi_points":
        return voronoi_zones(layer, outline, name_field)
    return polygon_zones(layer, name_field)


def build_stack(spec: StackSpec) -> tuple[xr.Dataset, gpd.GeoDataFrame | None]:
    """Align and derive every layer lazily; returns the stack and the zone polygons."""
    grid = grid_from_raster(spec.reference)
    res = grid.resolution_m
    shape = grid.shape
    codes = read_on_grid(spec.forest_change, grid, "forest_change", "nearest").data
    outline_gdf = read_vector(spec.outline, grid, "outline") if spec.outline else None
    if outline_gdf is not None:
        inside = _lazy(burn, shape=shape, dtype="uint8", geoms=list(outline_gdf.geometry), grid=grid,
                       all_touched=False).astype(bool)
    else:
        inside = da.ones(shape, dtype=bool, chunks=CHUNK_PX)
    static = {}
    for name, path in spec.distance_to.items():
        gdf = read_vector(path, grid, f"distance_to.{name}")
        mask = _lazy(burn, shape=shape, dtype="uint8", geoms=list(gdf.geometry), grid=grid)
        static[f"dist_{name}_m"] = _lazy(distance_to, mask, shape=shape, dtype="float32", resolution_m=res)
    for name, (path, resampling) in spec.rasters.items():
        static[name] = read_on_grid(path, grid, f"rasters.{name}", resampling).data

    zones_gdf = build_zones(spec, grid, outline_gdf)
    if zones_gdf is not None:
        zone = _lazy(burn, shape=shape, dtype="int16", geoms=list(zones_gdf.geometry), grid=grid,
                     values=list(zones_gdf.zone_id), all_touched=False, dtype_out="int16")
    else:
        zone = da.zeros(shape, dtype="int16", chunks=CHUNK_PX)

    eco_path, eco_resampling = spec.eco_weight
    eco_raw = read_on_grid(eco_path, grid, "eco_weight", eco_resampling).data
    any_forest = codes_mask_lazy(codes, sorted({c for p in spec.periods for c in p.forest_codes}))
    eco = _lazy(lambda r, w: normalise_eco(r, w)[0], eco_raw, any_forest, shape=shape, dtype="float32")

    features, labels, valids = [], [], []
    for p in spec.periods:
        forest = codes_mask_lazy(codes, p.forest_codes)
        past = codes_mask_lazy(codes, p.past_loss_codes)
        bands = [
            forest.astype("float32"),
            past.astype("float32"),
            _lazy(distance_to_edge, forest, shape=shape, dtype="float32", resolution_m=res),
            _lazy(distance_to, past, shape=shape, dtype="float32", resolution_m=res),
            *static.values(),
        ]
        stacked = da.stack(bands).rechunk((len(bands), CHUNK_PX, CHUNK_PX))
        known = da.isfinite(stacked).all(axis=0) & da.isfinite(eco) & inside
        features.append(stacked)
        valids.append((forest.astype(bool) & known).astype("uint8"))
        labels.append(codes_mask_lazy(codes, p.loss_codes))

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
            "resolution_m": res,
            "num_zones": int(len(zones_gdf) + 1) if zones_gdf is not None else 1,
        },
    )
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return ds, zones_gdf


def codes_mask_lazy(codes: da.Array, wanted: list[int]) -> da.Array:
    """Blockwise :func:`codes_mask`."""
    if not wanted:
        raise InputDataError("periods: every list of forest-change codes needs at least one code")
    return da.map_blocks(codes_mask, codes, wanted, dtype="uint8")
