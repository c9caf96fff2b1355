"""Vector layers: checked reading, rasterisation and zones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_bounds

from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError, NoOverlapError
from tiles.errors import (EmptyLayerError, InvalidGeometryError, UnreadableVectorError,
                          VectorLayerNotFoundError)
from tiles.grid import Grid, check_overlap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorSource:
    """A vector layer as the config names it: a file, the layer inside it (GeoPackage with several),
    and a CRS to assign when the file carries none (a Shapefile without its .prj)."""

    path: Path
    layer: str | None = None
    crs: str | None = None

    def __str__(self) -> str:
        return f"{self.path} (layer '{self.layer}')" if self.layer else str(self.path)


GEOPARQUET_SUFFIXES = (".parquet", ".geoparquet")


def _open_layer(source: VectorSource, layer: str, bbox_in_grid, grid_crs) -> gpd.GeoDataFrame:
    """The features of ``source`` (within ``bbox_in_grid``, given in ``grid_crs``, when not None)."""
    path = Path(source.path)
    if path.suffix.lower() in GEOPARQUET_SUFFIXES:
        if source.layer is not None:
            raise InputDataError(f"layer '{layer}': {path} is GeoParquet, which holds one layer — remove "
                                 f"`layer: {source.layer}` from the config")
        try:
            return gpd.read_parquet(path)
        except Exception as e:
            raise UnreadableVectorError(f"layer '{layer}': {path} is not a readable GeoParquet file ({e})") from e
    try:
        names = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as e:  # pyogrio raises several types for unreadable files
        raise UnreadableVectorError(f"layer '{layer}': {path} is not a readable vector file ({e}) — give a "
                                    "Shapefile, GeoPackage, GeoJSON or GeoParquet file") from e
    if source.layer is None and len(names) > 1:
        raise VectorLayerNotFoundError(f"layer '{layer}': {path} holds {len(names)} layers {names} — say which one with "
                             "`layer:` in the config")
    if source.layer is not None and source.layer not in names:
        raise VectorLayerNotFoundError(f"layer '{layer}': no layer '{source.layer}' in {path} (layers: {names}) — "
                             "fix `layer:` in the config")
    bbox = None
    if bbox_in_grid is not None:
        try:
            info = pyogrio.read_info(path, layer=source.layer)
            file_crs = info["crs"] or source.crs
            if file_crs is not None:
                bbox = transform_bounds(grid_crs, file_crs, *bbox_in_grid, densify_pts=21)
        except Exception:  # a bounding box is only an optimisation: read everything
            bbox = None
    try:
        return gpd.read_file(path, layer=source.layer, bbox=bbox)
    except Exception as e:
        raise UnreadableVectorError(f"layer '{layer}': {source} is not a readable vector layer ({e})") from e


def read_vector(source: VectorSource | Path, grid: Grid | None, layer: str, margin_m: float | None = None,
                repair: bool = True) -> gpd.GeoDataFrame:
    """Read a vector layer in the grid's CRS; clear errors for missing files, layers, CRS or overlap.

    Shapefile, GeoPackage (``layer`` when it holds several), GeoJSON, GeoParquet, any CRS (a file
    without one takes ``source.crs``, else is refused naming the fix). ``margin_m`` None: every
    feature, the layer must overlap the grid; a number: only the features within ``margin_m`` of the
    grid, and none there is a NoOverlapError. ``repair``: invalid geometries are repaired with
    ``shapely.make_valid`` and a warning (their polygonal parts for a polygon); one with nothing
    left is refused.
    """
    if not isinstance(source, VectorSource):
        source = VectorSource(Path(source))
    path = Path(source.path)
    if not path.is_file():
        raise MissingInputError(f"layer '{layer}': file {path} not found — fix the path in the config")
    window = None
    if grid is not None and margin_m is not None:
        left, bottom, right, top = grid.bounds
        window = (left - margin_m, bottom - margin_m, right + margin_m, top + margin_m)
    gdf = _open_layer(source, layer, window, grid.crs if grid is not None else None)
    if gdf.crs is None:
        if source.crs is None:
            raise CRSMissingError(
                f"layer '{layer}': {path} has no CRS (missing .prj?) — give it in the config "
                f"(`{{path: {path.name}, crs: EPSG:XXXX}}`) or assign one, e.g. "
                f"`ogr2ogr -a_srs EPSG:XXXX fixed.gpkg {path}`"
            )
        gdf = gdf.set_crs(source.crs)
    elif source.crs is not None and gdf.crs != CRS.from_user_input(source.crs):
        log.warning("layer '%s': %s has its own CRS %s; the crs %s given in the config is ignored", layer, path,
                    gdf.crs.to_string(), source.crs)
    gdf = gdf[~(gdf.geometry.is_empty | gdf.geometry.isna())]
    if gdf.empty and window is None:
        raise EmptyLayerError(f"layer '{layer}': {source} has no geometries — give a file with features")
    if repair:
        gdf = repair_geometries(gdf, layer, str(source))
    if grid is not None:  # None: read as it is (e.g. the AOI that defines the grid)
        if window is None:
            check_overlap(tuple(gdf.total_bounds), gdf.crs, grid, layer, path)
            gdf = gdf.to_crs(grid.crs)
        else:
            gdf = gdf.to_crs(grid.crs)
            gdf = gdf[gdf.intersects(shapely.box(*window))]
            if gdf.empty:
                if not _has_features(source):
                    raise EmptyLayerError(f"layer '{layer}': {source} has no geometries — give a file with features")
                raise NoOverlapError(
                    f"layer '{layer}': no feature of {source} lies on the grid {tuple(round(v) for v in grid.bounds)} "
                    f"({grid.crs}) or within {margin_m:g} m of it: it does not overlap the region — check its CRS "
                    "and that it covers the region")
    gdf.attrs["source"] = str(source)  # for messages about this layer further down (zones)
    return gdf


def _has_features(source: VectorSource) -> bool:
    try:
        gdf = _open_layer(source, "", None, None)
    except InputDataError:
        return False
    return bool((~(gdf.geometry.is_empty | gdf.geometry.isna())).any())


def grown_grid(grid: Grid, margin_m: float) -> Grid:
    """The grid grown by ``margin_m`` on every side (whole pixels)."""
    pad = int(np.ceil(margin_m / grid.resolution_m)) if margin_m > 0 else 0
    if pad == 0:
        return grid
    t = grid.transform
    return Grid(grid.crs, Affine(t.a, t.b, t.c - pad * t.a, t.d, t.e, t.f - pad * t.e),
                grid.width + 2 * pad, grid.height + 2 * pad)


def repair_geometries(gdf: gpd.GeoDataFrame, layer: str, source: str) -> gpd.GeoDataFrame:
    """Invalid geometries → ``shapely.make_valid`` (polygonal parts for polygons), with a warning."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return gdf
    fixed = []
    for g in geoms[invalid]:
        v = shapely.make_valid(g)
        fixed.append(_polygonal(v) if g.geom_type in ("Polygon", "MultiPolygon") else v)
    lost = [int(i) for i, g in zip(np.flatnonzero(invalid), fixed) if g.is_empty]
    if lost:
        raise InvalidGeometryError(
            f"layer '{layer}': feature(s) {lost} (0-based, in file order) of {source} are invalid and nothing is left "
            "once repaired (e.g. every vertex on one line) — fix or delete them (QGIS: Vector ▸ Geometry Tools ▸ "
            "Check Validity)")
    geoms = geoms.copy()
    geoms[invalid] = fixed
    log.warning("layer '%s': repaired %d invalid geometr%s of %s with shapely.make_valid (features %s)", layer,
                int(invalid.sum()), "y" if invalid.sum() == 1 else "ies", source,
                [int(i) for i in np.flatnonzero(invalid)][:20])
    out = gdf.copy()
    out[out.geometry.name] = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return out


def burn(geoms, grid: Grid, values=None, all_touched: bool = True, dtype_out: str = "uint8",
         fill: float = 0) -> np.ndarray:
    """Rasterise geometries onto the grid (1 where touched, or the given per-geometry values)."""
    shapes = list(geoms) if values is None else list(zip(geoms, values))
    if values is None:
        shapes = [(g, 1) for g in shapes]
    if not shapes:
        return np.full(grid.shape, fill, dtype=dtype_out)
    return rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform, fill=fill, all_touched=all_touched, dtype=dtype_out
    )


def voronoi_zones(points: gpd.GeoDataFrame, outline: gpd.GeoDataFrame | None, name_field: str) -> gpd.GeoDataFrame:
    """Voronoi catchments of points, clipped to an outline: columns ``zone_id`` (1..n), ``name``."""
    pts = points[points.geometry.geom_type == "Point"].reset_index(drop=True)
    if len(pts) < 2:
        raise InvalidGeometryError("zones: voronoi_points needs at least two point features — give a point layer of "
                                   "settlements in layers.zones.path")
    if name_field not in pts.columns:
        fields = [c for c in pts.columns if c != pts.geometry.name]
        source = points.attrs.get("source")
        raise InputDataError(
            f"zones: field '{name_field}' not in the point layer{f' {source}' if source else ''} "
            f"(fields: {fields}) — set layers.zones.name_field to the field that names the points"
        )
    hull = shapely.union_all(outline.geometry.values) if outline is not None else None
    extent = hull if hull is not None else shapely.box(*pts.total_bounds).buffer(1.0)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(list(pts.geometry.values)), extend_to=extent)
    cells = list(shapely.get_parts(cells))
    ids, names, geoms = [], [], []
    for i, pt in enumerate(pts.geometry.values):
        cell = next(c for c in cells if c.covers(pt))
        geom = cell.intersection(hull) if hull is not None else cell
        ids.append(i + 1)
        names.append(str(pts[name_field].iloc[i]))
        geoms.append(geom)
    return gpd.GeoDataFrame({"zone_id": ids, "name": names}, geometry=geoms, crs=points.crs)


def polygon_zones(polys: gpd.GeoDataFrame, name_field: str) -> gpd.GeoDataFrame:
    """Zones from a territory polygon layer: columns ``zone_id`` (1..n in file order), ``name``.

    Invalid polygons (self-intersecting rings, holes crossing their shell…) are repaired with
    ``shapely.make_valid``, keeping their polygonal parts, and a warning gives their count; a
    polygon with no area left after the repair is refused.
    """
    source = polys.attrs.get("source", "the zones layer")
    polys = polys[polys.geometry.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    if polys.empty:
        raise InvalidGeometryError(f"zones: {source} holds no polygons — give territory polygons")
    if name_field not in polys.columns:
        fields = [c for c in polys.columns if c != polys.geometry.name]
        raise InputDataError(
            f"zones: field '{name_field}' not in the polygon layer {source} (fields: {fields}) — "
            "set layers.zones.name_field to the field that names the territories"
        )
    names = polys[name_field].astype(str)
    geoms = np.asarray(polys.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = [_polygonal(shapely.make_valid(g)) for g in geoms[invalid]]
        lost = [str(names.iloc[i]) for i, g in zip(np.flatnonzero(invalid), repaired) if g.is_empty]
        if lost:
            raise InvalidGeometryError(
                f"zones: polygon(s) {lost} of {source} are invalid and have no area once repaired "
                "(e.g. every vertex on one line) — fix or delete them in the zones layer"
            )
        geoms[invalid] = repaired
        log.warning("zones: repaired %d invalid polygon(s) of %s with shapely.make_valid: %s",
                    int(invalid.sum()), source, [str(names.iloc[i]) for i in np.flatnonzero(invalid)])
    return gpd.GeoDataFrame(
        {"zone_id": np.arange(1, len(polys) + 1), "name": list(names)}, geometry=list(geoms), crs=polys.crs
    )


def _polygonal(geom):
    """The polygonal parts of a geometry (a repaired one may also hold lines and points)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polygons = [q for p in parts for q in shapely.get_parts(p)]
    if not polygons:
        return shapely.Polygon()
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
