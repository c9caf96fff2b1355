"""The aligned layer stack: every input and derived layer on one grid, as a dask-backed Dataset.

Layout (xarray, rioxarray CRS):
    features (period, band, y, x) float32   model inputs per period, raw units (m, 0/1, …)
    label    (period, y, x)       uint8     forest lost during the period
    valid    (period, y, x)       uint8     forest at the period's start inside the outline (missing
                                            inputs are filled, ``coverage`` attr counts them)
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
import xarray as xr
from rasterio.crs import CRS

from geo_risk_errors import InputDataError
from tiles.eco import EcoForestDensity, EcoPolygons, eco_forest_density, eco_from_polygons, normalise_eco_lazy
from tiles.errors import EmptyLayerError
from tiles.bands import ECO_BAND, FOREST_BANDS, MISSING_SUFFIX, band_names, distance_band  # noqa: F401  (re-exported)
from tiles.forest_change import ForestChangeSpec, PeriodCodes, check_forest_change
from tiles.grid import CHUNK_PX, Grid, aligned_grid, grid_from_raster, read_on_grid
from tiles.layers import codes_mask, distance_inside, distance_to, distance_to_edge, fill_nearest
from tiles.blockwise import burn_blocks, capped_distance, exact_quantile, fill_nearest_blocks, window_share
from tiles.vectors import VectorSource, grown_grid, polygon_zones, read_vector, voronoi_zones

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
    eco_weight: RasterInput | EcoPolygons | EcoForestDensity | None = None
    #: the scaled ecological weight is also a band of ``features`` (:data:`tiles.bands.ECO_BAND`)
    eco_as_input: bool = False
    #: a raster weight (:class:`RasterInput`) is its scaled value raised to this power
    eco_power: float = 1.0
    rasters: dict[str, RasterInput] = field(default_factory=dict)
    distance_to: dict[str, VectorSource | Path] = field(default_factory=dict)
    #: features this far beyond the grid still count for the distances (a town 5 km outside is 5 km away)
    distance_margin_m: float = 10_000.0
    #: None: exact distances over the whole grid (whole-grid arrays); a number: distances capped there,
    #: computed block by block (out of core; identical below the cap)
    distance_cap_m: float | None = None
    #: a raster's missing values on forest: ``nearest`` valid value or the ``median`` over the train
    #: period's forest; ``missing_indicator``: a 0/1 band ``<name>_missing`` per raster that misses any
    fill_missing: str = "nearest"
    missing_indicator: bool = False
    #: window sides (odd px): the share of forest and of past loss around each pixel, as bands
    context_windows_px: tuple[int, ...] = ()
    outline: VectorSource | Path | None = None
    zones: tuple[str, VectorSource | Path, str] | None = None  # (source, layer, name_field)

    @property
    def eco_band(self) -> bool:
        """Whether the stack holds the ``eco_weight`` input band (a weight is given, as an input)."""
        return self.eco_weight is not None and self.eco_as_input

    @property
    def past_loss(self) -> bool:
        """Whether every period has a past-loss window (else the past-loss bands are left out)."""
        return all(p.past_loss_codes for p in self.periods)

    def bands(self, indicators: list[str] = ()) -> list[str]:
        """Band names in stack order, with a ``<name>_missing`` band for each raster in ``indicators``
        (raises ConfigError when two layers would share one)."""
        return band_names(self.distance_to, self.rasters, past_loss=self.past_loss, missing=indicators,
                          windows_px=self.context_windows_px,
                          eco=self.eco_band)


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
        inside = burn_blocks(outline_gdf.geometry, grid, all_touched=False).astype(bool)
    else:
        inside = da.ones(shape, dtype=bool, chunks=CHUNK_PX)
    static = {}
    cap = spec.distance_cap_m
    margin = spec.distance_margin_m if cap is None else min(spec.distance_margin_m, cap)
    grown = grown_grid(grid, margin)
    pad = (grown.height - grid.height) // 2
    for name, path in spec.distance_to.items():
        gdf = read_vector(path, grid, f"distance_to.{name}", margin_m=margin)
        mask = burn_blocks(gdf.geometry, grown)
        if cap is None:
            static[distance_band(name)] = _lazy(distance_inside, mask, shape=shape, dtype="float32",
                                                resolution_m=res, pad=pad)
        else:
            d = capped_distance(mask, res, cap)
            static[distance_band(name)] = d[pad:pad + shape[0], pad:pad + shape[1]].rechunk(CHUNK_PX)
    rasters = {f"rasters.{name}": r.read(grid, f"rasters.{name}") for name, r in spec.rasters.items()}

    zones_gdf = build_zones(spec, grid, outline_gdf)
    if zones_gdf is not None:
        zone = burn_blocks(zones_gdf.geometry, grid, values=zones_gdf.zone_id, all_touched=False, dtype="int16")
    else:
        zone = da.zeros(shape, dtype="int16", chunks=CHUNK_PX)

    e = spec.eco_weight
    any_forest = codes_mask_lazy(codes, sorted({c for p in spec.periods for c in p.forest_codes}))
    if isinstance(e, RasterInput):
        rasters["eco_weight"] = e.read(grid, "eco_weight")
    coverage, medians = missing_on_forest(rasters, codes, inside, spec)
    fill_px = None if cap is None else int(np.ceil(cap / res))  # out of core: nearest within the cap
    indicators = []
    for key, raw in rasters.items():
        if key == "eco_weight":
            continue
        name = key.split(".", 1)[1]
        static[name] = fill(raw, key, spec.fill_missing, medians.get(key), shape, fill_px)
        if spec.missing_indicator and coverage[key]["missing_px"]:
            indicators.append(name)
    for name in indicators:
        static[f"{name}{MISSING_SUFFIX}"] = (~da.isfinite(rasters[f"rasters.{name}"])).astype("float32")
    if isinstance(e, RasterInput):
        raw = rasters["eco_weight"]
        if fill_px is None:
            eco_raw = fill(raw, "eco_weight", "nearest", None, shape)
        elif coverage["eco_weight"]["missing_px"]:
            eco_raw = fill(raw, "eco_weight", "nearest", exact_quantile(raw, any_forest, 0.5), shape, fill_px)
        else:
            eco_raw = raw
        eco = normalise_eco_lazy(eco_raw, any_forest)
        eco_note = f"raster {e.path}, scaled to [0, 1] by its 0.99 quantile over forest"
        if spec.eco_power != 1:
            eco = (eco ** np.float32(spec.eco_power)).astype("float32")
            eco_note += f", to the power {spec.eco_power:g}"
    elif isinstance(e, EcoPolygons):
        eco, eco_note = eco_from_polygons(e, grid)
    elif isinstance(e, EcoForestDensity):
        first = min(spec.periods, key=lambda p: p.start_year)
        eco, eco_note = eco_forest_density(codes_mask_lazy(codes, first.forest_codes), e.window_m, res,
                                           first.start_year, e.power)
    else:
        eco = da.ones(shape, dtype="float32", chunks=CHUNK_PX)
        eco_note = "none: every pixel weighs 1"
        log.info("eco_weight: none configured — every pixel weighs 1, so the loss's ecological term weighs "
                 "every missed loss alike")
    if spec.eco_band:
        static[ECO_BAND] = eco.astype("float32")

    features, labels, valids = [], [], []
    for p in spec.periods:
        forest = codes_mask_lazy(codes, p.forest_codes)
        bands = [forest.astype("float32")]
        if spec.past_loss:
            past = codes_mask_lazy(codes, p.past_loss_codes)
        if cap is None:
            bands.append(_lazy(distance_to_edge, forest, shape=shape, dtype="float32", resolution_m=res))
        else:  # the grid's border is not a forest edge
            bands.append(capped_distance(forest, res, cap, of_unset=True, beyond=1))
        if spec.past_loss:
            bands[1:1] = [past.astype("float32")]
            bands.append(_lazy(distance_to, past, shape=shape, dtype="float32", resolution_m=res) if cap is None
                         else capped_distance(past, res, cap))
        for w in spec.context_windows_px:
            bands.append(window_share(forest, w))
            if spec.past_loss:
                bands.append(window_share(past, w))
        bands += list(static.values())
        stacked = da.stack(bands).rechunk((len(bands), CHUNK_PX, CHUNK_PX))
        features.append(stacked)
        # every forest pixel inside the region: missing inputs are filled, not dropped
        valids.append((forest.astype(bool) & inside).astype("uint8"))
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
        coords={"period": [p.name for p in spec.periods], "band": spec.bands(indicators), **grid.coords()},
        attrs={
            "periods": {p.name: f"{p.start_year}-{p.end_year}" for p in spec.periods},
            "past_loss": {p.name: (f"{p.past_loss_start_year}-{p.start_year}" if p.past_loss_start_year else "none")
                          for p in spec.periods},
            "forest_change": {"format": fc.format, "years": list(fc.years), **fc_summary},
            "eco_weight": eco_note,
            "coverage": coverage,
            "fill_missing": {"method": spec.fill_missing, "indicator_bands": [f"{n}{MISSING_SUFFIX}" for n in indicators]},
            "resolution_m": res,
            "distance_cap_m": cap if cap is not None else "none",
            "num_zones": int(len(zones_gdf) + 1) if zones_gdf is not None else 1,
        },
    )
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return ds, zones_gdf


def missing_on_forest(rasters: dict[str, da.Array], codes: da.Array, inside: da.Array,
                      spec: StackSpec) -> tuple[dict, dict]:
    """Coverage of each raster on the forest of each period (one pass), logged; the train period's
    median of each raster for ``fill_missing: median``. Refuses a raster with no value on any forest
    pixel of the region, and says how many forest pixels lie outside the outline (left out)."""
    forests = {p.name: codes_mask_lazy(codes, p.forest_codes).astype(bool) for p in spec.periods}
    todo = {("outside", p): (f & ~inside).sum() for p, f in forests.items()}
    todo |= {("forest", p): (f & inside).sum() for p, f in forests.items()}
    for key, raw in rasters.items():
        todo |= {(key, p): (f & inside & ~da.isfinite(raw)).sum() for p, f in forests.items()}
    (done,) = dask.compute(todo)
    train = forests[spec.periods[0].name] & inside
    medians = {}
    if spec.fill_missing == "median" or spec.distance_cap_m is not None:  # the fallback of the blockwise fill
        medians = {key: exact_quantile(raw, train, 0.5) for key, raw in rasters.items()
                   if key != "eco_weight" and any(done[(key, p)] for p in forests)}
    coverage = {}
    for key in rasters:
        per = {p: {"forest_px": int(done[("forest", p)]), "missing_px": int(done[(key, p)])} for p in forests}
        if any(v["missing_px"] == v["forest_px"] > 0 for v in per.values()):
            raise EmptyLayerError(
                f"layer '{key}': no value on any forest pixel of the region (every one is nodata or outside the "
                f"file) — check that {spec.rasters[key.split('.', 1)[1]].path if key != 'eco_weight' else spec.eco_weight.path} "
                "covers the region and that its nodata value is right (`gdalinfo -stats`); lowering "
                "chips.min_valid_fraction cannot help")
        missing = max(v["missing_px"] for v in per.values())
        coverage[key] = {"missing_px": missing, "periods": per}
        if missing:
            how = ("nearest valid value" if spec.fill_missing == "nearest" or key == "eco_weight"
                   else f"train-period median {medians[key]:g}")
            log.info("%s: no value on %s forest pixels — filled with the %s%s", key,
                     ", ".join(f"{v['missing_px']:,} of the {v['forest_px']:,} {p}" for p, v in per.items()), how,
                     ", with a missing-value band" if spec.missing_indicator and key != "eco_weight" else "")
    for p in forests:
        if done[("outside", p)]:
            log.info("period '%s': %d forest pixel(s) lie outside the outline: left out of training and "
                     "prediction", p, int(done[("outside", p)]))
    coverage["outside_outline_px"] = {p: int(done[("outside", p)]) for p in forests}
    return coverage, medians


def fill(raw: da.Array, key: str, method: str, median: float | None, shape, depth_px: int | None = None) -> da.Array:
    """A raster with its missing values filled: the train ``median``, or the nearest valid value — over the
    whole grid (:func:`tiles.layers.fill_nearest`), or block by block within ``depth_px`` and the median
    beyond (:func:`tiles.blockwise.fill_nearest_blocks`)."""
    if median is None and method == "median":
        return raw  # nothing missing
    if method == "median":
        return da.where(da.isfinite(raw), raw, np.float32(median)).astype("float32")
    if depth_px is not None:
        return raw if median is None else fill_nearest_blocks(raw, depth_px, median)
    return _lazy(fill_nearest, raw, shape=shape, dtype="float32")


def codes_mask_lazy(codes: da.Array, wanted: list[int]) -> da.Array:
    """Blockwise :func:`codes_mask`."""
    if not wanted:
        raise InputDataError("periods: every list of forest-change codes needs at least one code")
    return da.map_blocks(codes_mask, codes, wanted, dtype="uint8")
