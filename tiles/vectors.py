"""Vector layers: checked reading, rasterisation and zones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from rasterio.features import rasterize

from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError
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


def read_vector(source: VectorSource | Path, grid: Grid | None, layer: str) -> gpd.GeoDataFrame:
    """Read a vector layer in the grid's CRS; clear errors for missing files, layers, CRS or overlap."""
    if not isinstance(source, VectorSource):
        source = VectorSource(Path(source))
    path = Path(source.path)
    if not path.is_file():
        raise MissingInputError(f"layer '{layer}': file {path} not found — fix the path in the config")
    try:
        names = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as e:  # pyogrio raises several types for unreadable files
        raise InputDataError(f"layer '{layer}': {path} is not a readable vector file ({e})") from e
    if source.layer is None and len(names) > 1:
        raise InputDataError(f"layer '{layer}': {path} holds {len(names)} layers {names} — say which one with "
                             "`layer:` in the config")
    if source.layer is not None and source.layer not in names:
        raise InputDataError(f"layer '{layer}': no layer '{source.layer}' in {path} (layers: {names}) — "
                             "fix `layer:` in the config")
    try:
        gdf = gpd.read_file(path, layer=source.layer)
    except Exception as e:
        raise InputDataError(f"layer '{layer}': {source} is not a readable vector layer ({e})") from e
    if gdf.crs is None:
        if source.crs is None:
            raise CRSMissingError(
                f"layer '{layer}': {path} has no CRS (missing .prj?) — give it in the config "
                f"(`{{path: {path.name}, crs: EPSG:XXXX}}`) or assign one, e.g. "
                f"`ogr2ogr -a_srs EPSG:XXXX fixed.gpkg {path}`"
            )
        gdf = gdf.set_crs(source.crs)
    gdf = gdf[~(gdf.geometry.is_empty | gdf.geometry.isna())]
    if gdf.empty:
        raise InputDataError(f"layer '{layer}': {source} has no geometries — give a file with features")
    if grid is not None:  # None: read as it is (e.g. the AOI that defines the grid)
        check_overlap(tuple(gdf.total_bounds), gdf.crs, grid, layer, path)
        gdf = gdf.to_crs(grid.crs)
    gdf.attrs["source"] = str(source)  # for messages about this layer further down (zones)
    return gdf


def burn(geoms, grid: Grid, values=None, all_touched: bool = True, dtype_out: str = "uint8") -> np.ndarray:
    """Rasterise geometries onto the grid (1 where touched, or the given per-geometry values)."""
    shapes = list(geoms) if values is None else list(zip(geoms, values))
    if values is None:
        shapes = [(g, 1) for g in shapes]
    return rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform, fill=0, all_touched=all_touched, dtype=dtype_out
    )


def voronoi_zones(points: gpd.GeoDataFrame, outline: gpd.GeoDataFrame | None, name_field: str) -> gpd.GeoDataFrame:
    """Voronoi catchments of points, clipped to an outline: columns ``zone_id`` (1..n), ``name``."""
    pts = points[points.geometry.geom_type == "Point"].reset_index(drop=True)
    if len(pts) < 2:
        raise InputDataError("zones: voronoi_points needs at least two point features")
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
        raise InputDataError(f"zones: {source} holds no polygons — give territory polygons")
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
            raise InputDataError(
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
