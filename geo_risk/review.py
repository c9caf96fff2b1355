"""Offline HTML review map: risk and decision rasters plus community zones on one Leaflet page.

Rasters are warped to Web Mercator, coloured and embedded as PNG data URLs; Leaflet and its
CSS come embedded by ``offlinefolium``, so the page opens with no network at all.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Mapping, Sequence

import geopandas as gpd
import matplotlib
import numpy as np
import offlinefolium as folium
import rasterio
from branca.element import Element
from matplotlib.image import imsave
from offlinefolium.raster_layers import ImageOverlay
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from rasterio.warp import calculate_default_transform, reproject, transform as warp_points
from rasterio.windows import Window
from shapely.geometry import mapping

from geo_risk.export import DECISION_NODATA
from geo_risk_errors import ConfigError, CRSMissingError, InputDataError, MissingInputError
from tiles.atomic import atomic_file

WEB_MERCATOR = "EPSG:3857"
RISK_CMAP = "YlOrRd"
LAYER_RISK, LAYER_DECISION, LAYER_ZONES = "Risk of forest loss", "Decision", "Community zones"


def latlon_bounds(transform: Affine, width: int, height: int) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of a north-up EPSG:3857 grid, as Leaflet wants them."""
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    lons, lats = warp_points(WEB_MERCATOR, "EPSG:4326", [left, right], [bottom, top])
    return [[lats[0], lons[0]], [lats[1], lons[1]]]


def _open_raster(path: Path, role: str) -> rasterio.DatasetReader:
    if not path.exists():
        raise MissingInputError(f"{role} raster {path} does not exist: run the step that writes it, or fix the path")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputDataError(f"{role} raster {path} cannot be read ({exc}): pass a GeoTIFF") from exc
    if src.crs is None:
        src.close()
        raise CRSMissingError(
            f"{role} raster {path} has no CRS: set one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`"
        )
    return src


def _warp(src, resampling: Resampling, dtype, src_nodata, dst_nodata, max_size_px: int):
    """Band 1 of ``src`` in EPSG:3857, longest side at most ``max_size_px``; returns (array, transform)."""
    transform, width, height = calculate_default_transform(
        src.crs, WEB_MERCATOR, src.width, src.height, *src.bounds
    )
    scale = max(width, height) / max_size_px
    if scale > 1:  # same extent, coarser pixels
        new_w = min(max_size_px, max(1, round(width / scale)))
        new_h = min(max_size_px, max(1, round(height / scale)))
        transform = transform @ Affine.scale(width / new_w, height / new_h)
        width, height = new_w, new_h
    out = np.full((height, width), dst_nodata, dtype=dtype)
    reproject(rasterio.band(src, 1), out, src_nodata=src_nodata, dst_transform=transform,
              dst_crs=WEB_MERCATOR, dst_nodata=dst_nodata, resampling=resampling)
    return out, transform


def _check_actions(src, path: Path, action_names: Sequence[str]) -> None:
    """Every decision value, at full resolution, must name an action or be nodata."""
    if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        raise InputDataError(f"decision raster {path} is {src.dtypes[0]}: write integer action indices")
    n, skip = len(action_names), [v for v in (DECISION_NODATA, src.nodata) if v is not None]
    rows = max(1, 4_000_000 // src.width)
    for row in range(0, src.height, rows):
        a = src.read(1, window=Window(0, row, src.width, min(rows, src.height - row)))
        bad = a[((a < 0) | (a >= n)) & ~np.isin(a, skip)]
        if bad.size:
            raise InputDataError(
                f"decision raster {path} holds value {int(bad.max())} but only {n} action names "
                f"{list(action_names)} were given: pass one name per action index, "
                f"or mark pixels without a decision with nodata {DECISION_NODATA}"
            )


def _action_colours(src, n: int) -> list[tuple[int, int, int, int]]:
    """Colours of actions 0..n-1 from the GDAL colour table, or tab10 when it has none."""
    try:
        table = src.colormap(1)
    except ValueError:
        table = {}
    tab10 = matplotlib.colormaps["tab10"]
    return [tuple(table[i]) if i in table
            else tuple(int(255 * c) for c in tab10(i % 10)) for i in range(n)]


def _png_url(rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    imsave(buf, rgba, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _risk_layer(path: Path, max_size_px: int):
    with _open_raster(path, "risk") as src:
        nodata = src.nodata
        risk, transform = _warp(src, Resampling.bilinear, np.float32, nodata, np.nan, max_size_px)
    valid = np.isfinite(risk)
    if valid.any() and (risk[valid].min() < -1e-6 or risk[valid].max() > 1 + 1e-6):
        raise InputDataError(
            f"risk raster {path} has values in [{risk[valid].min():g}, {risk[valid].max():g}], "
            "not probabilities in [0, 1]: rescale it, or set its nodata value if that is the outlier"
        )
    top = risk_scale_max(risk[valid])
    rgba = matplotlib.colormaps[RISK_CMAP](np.clip(risk / top, 0, 1), bytes=True)
    rgba[~valid, 3] = 0
    bounds = latlon_bounds(transform, risk.shape[1], risk.shape[0])
    return ImageOverlay(_png_url(rgba), bounds, name=LAYER_RISK, opacity=0.85), bounds, top


def risk_scale_max(values: np.ndarray) -> float:
    """Top of the risk colour bar: the 99.5th percentile rounded up to 0.05 (at least 0.05, at most 1).

    Deforestation is rare, so calibrated probabilities mostly sit far below 1; a 0–1 bar would
    paint nearly everything the same pale colour.
    """
    if values.size == 0:
        return 1.0
    return float(min(1.0, max(0.05, np.ceil(np.quantile(values, 0.995) * 20) / 20)))


def _decision_layer(path: Path, action_names: Sequence[str], max_size_px: int):
    with _open_raster(path, "decision") as src:
        _check_actions(src, path, action_names)
        colours = _action_colours(src, len(action_names))
        src_nodata = src.nodata if src.nodata is not None else DECISION_NODATA
        dec, transform = _warp(src, Resampling.nearest, np.uint8, src_nodata, DECISION_NODATA,
                               max_size_px)
    lut = np.zeros((256, 4), dtype=np.uint8)  # anything not an action stays transparent
    lut[: len(colours)] = colours
    bounds = latlon_bounds(transform, dec.shape[1], dec.shape[0])
    # hidden at first so the risk layer shows; one tick in the layer control compares them
    layer = ImageOverlay(_png_url(lut[dec]), bounds, name=LAYER_DECISION, opacity=0.75, show=False)
    return layer, colours


def _zones_geojson(path: Path, stats: Mapping[int, Mapping[str, str]]) -> tuple[dict, dict[str, str]]:
    """Zones in EPSG:4326 as GeoJSON with ``stats`` joined by zone id, every text HTML-escaped (the
    tooltip inserts them as HTML), and the tooltip's {property: label}."""
    if not path.exists():
        raise MissingInputError(f"zones file {path} does not exist: fix the path or pass zones_path=None")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputDataError(f"zones file {path} cannot be read ({exc}): pass an OGR vector") from exc
    missing = {"zone_id", "name"} - set(gdf.columns)
    if missing:
        raise InputDataError(f"zones file {path} lacks column(s) {sorted(missing)}: add them")
    if gdf.crs is None:
        raise CRSMissingError(f"zones file {path} has no CRS: write it with one (e.g. a .prj)")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].to_crs("EPSG:4326")
    try:
        ids = [int(z) for z in gdf["zone_id"]]
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"zones file {path}: zone_id must be integers ({exc})") from exc
    names = ["" if n is None or n != n else html.escape(str(n)) for n in gdf["name"]]
    labels = list(dict.fromkeys(label for row in stats.values() for label in row))
    fields = {"zone_id": "Zone", "name": "Name", **{f"stat{i}": html.escape(lb) for i, lb in enumerate(labels)}}
    features = []
    for geom, z, n in zip(gdf.geometry, ids, names):
        row = stats.get(z, {})
        extra = {f"stat{i}": html.escape(str(row.get(lb, "–"))) for i, lb in enumerate(labels)}
        features.append({"type": "Feature", "geometry": mapping(geom),
                         "properties": {"zone_id": z, "name": n, **extra}})
    return {"type": "FeatureCollection", "features": features}, fields


def _rgba_css(c) -> str:
    r, g, b, a = (list(c) + [255])[:4]
    return f"rgba({r},{g},{b},{a / 255:.2f})"


def _legend_html(title, action_names, colours, zone_note, attribution, top: float = 1.0) -> str:
    """Fixed bottom-left panel: title, risk colour bar, action swatches, note and attribution."""
    esc = html.escape
    cmap = matplotlib.colormaps[RISK_CMAP]
    stops = ", ".join(_rgba_css(cmap(x, bytes=True)) for x in np.linspace(0, 1, 11))
    swatches = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;margin-right:6px;'
        f'vertical-align:middle;border:1px solid #555;background:{_rgba_css(c)}"></span>{esc(n)}</div>'
        for n, c in zip(action_names, colours))
    note = f'<div style="margin-top:6px;font-style:italic">{esc(zone_note)}</div>' if zone_note else ""
    attr = (f'<div style="margin-top:6px;color:#555;font-size:10px">{esc(attribution)}</div>'
            if attribution else "")
    return (
        '<div style="position:fixed;bottom:48px;left:10px;z-index:1000;max-width:300px;'
        'background:rgba(255,255,255,0.92);padding:8px 10px;border-radius:4px;'
        'box-shadow:0 1px 4px rgba(0,0,0,0.4);font:12px/1.4 sans-serif">'
        f'<div style="font-weight:bold;font-size:14px;margin-bottom:6px">{esc(title)}</div>'
        f'<div>{LAYER_RISK} <span style="color:#555">(probability of forest loss)</span></div>'
        f'<div style="height:12px;border:1px solid #555;background:linear-gradient(to right, {stops})">'
        '</div><div style="display:flex;justify-content:space-between"><span>0</span>'
        f'<span>{top / 2:g}</span><span>{"≥ " if top < 1 else ""}{top:g}</span></div>'
        f'<div style="margin-top:6px;font-weight:bold">{LAYER_DECISION}</div>{swatches}{note}{attr}</div>'
    )


def write_review_map(
    out_html: Path,
    risk_tif: Path,
    decision_tif: Path,
    zones_path: Path | None,
    *,
    action_names: Sequence[str],
    title: str,
    zone_note: str = "",
    attribution: str = "",
    max_size_px: int = 1600,
    basemap: str | None = None,
    zone_stats: Mapping[int, Mapping[str, str]] | None = None,
) -> Path:
    """Write a self-contained Leaflet review map to ``out_html`` (atomically) and return its path.

    ``basemap`` (a folium tile name or URL) adds online tiles; by default the page needs no network.
    ``zone_stats`` ({zone id: {label: text}}, e.g. mean risk) is shown in the zones' tooltip.
    """
    if not 0 < len(action_names) < DECISION_NODATA:
        raise ConfigError(f"decision.actions: give 1 to 254 action names, one per decision value of "
                          f"{decision_tif}; got {len(action_names)}")
    if max_size_px < 1:
        raise ConfigError(f"map.max_size_px must be a positive number of pixels, got {max_size_px}")
    out_html, risk_tif, decision_tif = Path(out_html), Path(risk_tif), Path(decision_tif)
    risk_layer, bounds, top = _risk_layer(risk_tif, max_size_px)
    decision_layer, colours = _decision_layer(decision_tif, action_names, max_size_px)
    zones, fields = _zones_geojson(Path(zones_path), zone_stats or {}) if zones_path is not None else (None, {})

    m = folium.Map(tiles=None, control_scale=True)
    m.get_root().title = html.escape(title)
    m.get_root().header.add_child(Element(
        "<style>.leaflet-container{background:#eef0ec !important}</style>"), name="review_background")
    if basemap:
        folium.TileLayer(basemap, name="Basemap", overlay=False).add_to(m)
    risk_layer.add_to(m)
    decision_layer.add_to(m)
    if zones is not None:
        folium.GeoJson(
            zones, name=LAYER_ZONES,
            style_function=lambda _: {"color": "#222", "weight": 1.5, "fill": True,
                                      "fillColor": "#ffffff", "fillOpacity": 0.03},
            tooltip=folium.GeoJsonTooltip(fields=list(fields), aliases=list(fields.values())),
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds(bounds)
    m.get_root().html.add_child(Element(
        _legend_html(title, action_names, colours, zone_note, attribution, top)), name="review_legend")
    page = m.get_root().render()

    with atomic_file(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_html
