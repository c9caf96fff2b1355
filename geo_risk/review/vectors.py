"""Vector layers of the review map (zones, roads, settlements…) as compact GeoJSON in EPSG:4326.

Attribute values stay plain strings here: the page inserts them as text (``textContent``), never as
HTML, and the JSON holding them is escaped for a ``<script>`` element (:func:`geo_risk.review.page.json_for_script`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import mapping

from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError

#: attribute columns tried, in order, for a feature's label and for its kind (road class, place type…)
NAME_FIELDS = ("name", "NAME", "Name", "nom", "NOM")
KIND_FIELDS = ("highway", "place", "waterway", "fclass", "type", "kind")
DECIMALS = 5  # ≈ 1 m in latitude


@dataclass(frozen=True)
class VectorInput:
    """A vector file, the ``layer`` inside it when it holds several, the ``crs`` to assume when it has none."""

    path: Path
    layer: str | None = None
    crs: str | None = None


def read_vector(source: Path | VectorInput, role: str) -> gpd.GeoDataFrame:
    """A vector layer with a CRS, empty geometries dropped; errors name the file, the role and the fix."""
    src = source if isinstance(source, VectorInput) else VectorInput(Path(source))
    path = Path(src.path)
    if not path.exists():
        raise MissingInputError(f"{role} file {path} does not exist: fix the path")
    try:
        gdf = gpd.read_file(path, layer=src.layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputDataError(f"{role} file {path} cannot be read ({exc}): pass an OGR vector"
                             + (" and an existing layer" if src.layer else "")) from exc
    if gdf.crs is None:
        if src.crs is None:
            raise CRSMissingError(f"{role} file {path} has no CRS: write it with one (e.g. a .prj)")
        gdf = gdf.set_crs(src.crs)
    return gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _compact(gdf: gpd.GeoDataFrame, tolerance_m: float, region: tuple | None = None) -> gpd.GeoSeries:
    """Geometries clipped to ``region`` (xmin, ymin, xmax, ymax in Web Mercator; empty ones become
    None), simplified there to ``tolerance_m`` (topology kept), then in EPSG:4326 with coordinates
    rounded to :data:`DECIMALS`."""
    geom = gdf.geometry.to_crs(3857)
    if region is not None:
        geom = geom.clip_by_rect(*region)
        geom = geom.where(~geom.is_empty, None)
    if tolerance_m > 0:
        geom = geom.simplify(tolerance_m)
    geom = geom.to_crs(4326)
    return gpd.GeoSeries(shapely.transform(geom.values, lambda c: np.round(c, DECIMALS)), crs=4326)


def geometry_kind(gdf: gpd.GeoDataFrame) -> str:
    """"point", "line" or "polygon": what most features are (a layer is drawn one way)."""
    types = gdf.geom_type.str.replace("Multi", "").value_counts()
    top = types.index[0] if len(types) else "Point"
    return {"Point": "point", "LineString": "line"}.get(top, "polygon")


def zones_geojson(path: Path, tolerance_m: float, region: tuple | None = None) -> dict:
    """Zones (``zone_id``, ``name``) as a FeatureCollection; ids are integers, names plain text."""
    gdf = read_vector(path, "zones")
    missing = {"zone_id", "name"} - set(gdf.columns)
    if missing:
        raise InputDataError(f"zones file {path} lacks column(s) {sorted(missing)}: add them")
    try:
        ids = [int(z) for z in gdf["zone_id"]]
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"zones file {path}: zone_id must be integers ({exc})") from exc
    features = [{"type": "Feature", "geometry": mapping(g), "properties": {"zone_id": z, "name": _text(n)}}
                for g, z, n in zip(_compact(gdf, tolerance_m, region), ids, gdf["name"])
                if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": features}


def vector_geojson(path: Path | VectorInput, role: str, tolerance_m: float,
                   region: tuple | None = None) -> tuple[dict, str]:
    """Any vector layer as a FeatureCollection with ``name`` and ``kind`` properties (plain text, from
    the first of :data:`NAME_FIELDS` / :data:`KIND_FIELDS` present), and its geometry kind."""
    gdf = read_vector(path, role)
    name = next((c for c in NAME_FIELDS if c in gdf.columns), None)
    kind = next((c for c in KIND_FIELDS if c in gdf.columns), None)
    gdf = gpd.GeoDataFrame({"name": [_text(v) for v in gdf[name]] if name else "",
                            "kind": [_text(v) for v in gdf[kind]] if kind else ""}, geometry=gdf.geometry.values,
                           crs=gdf.crs)
    geom_kind = geometry_kind(gdf)
    if geom_kind != "point":  # one feature per (name, kind): a road's many segments become one
        gdf = gdf.dissolve(by=["name", "kind"], as_index=False, sort=False)
    geoms = _compact(gdf, tolerance_m, region)
    features = [{"type": "Feature", "geometry": mapping(g), "properties": {"name": n, "kind": k}}
                for g, n, k in zip(geoms, gdf["name"], gdf["kind"]) if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": features}, geom_kind
