"""The review map page: folium (Leaflet embedded by ``offlinefolium``) plus geo-risk's own script.

What the page holds, all inline (no request leaves the page unless a reader picks a basemap):

* Leaflet and three plugins that ``offlinefolium`` embeds with their images as data URLs
  (Leaflet.draw, leaflet.fullscreen, Leaflet.MousePosition); folium's default Bootstrap,
  jQuery and Font Awesome are left out (nothing here uses them; they were half the page).
* one PNG per raster layer, warped to Web Mercator, longest side ≤ ``max_size_px``;
* a JSON block (``<script type="application/json" id="georisk-data">``) with the legends, the zone
  audits and the click-to-inspect table (:func:`geo_risk.review.rasters.inspect_data`);
* ``review.js`` / ``review.css`` (this package): legend with opacity sliders, click-to-inspect,
  split view, AOI download. It inserts every string of the JSON as text, never as HTML.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import offlinefolium as folium
from branca.element import Element, MacroElement
from offlinefolium.map import CustomPane
from offlinefolium.plugins import Draw, Fullscreen, MousePosition
from offlinefolium.raster_layers import ImageOverlay
from offlinefolium.template import Template
from rasterio.enums import Resampling

from geo_risk.export import DECISION_NODATA
from geo_risk.review import rasters as R
from geo_risk.review.vectors import VectorInput, vector_geojson, zones_geojson
from geo_risk_errors import ConfigError
from tiles.atomic import atomic_file

LAYER_RISK, LAYER_DECISION, LAYER_ZONES = "Risk of forest loss", "Decision", "Community zones"
LAYER_UNCERTAINTY, LAYER_COST, LAYER_DENSITY = "Uncertainty", "Expected cost", "VT0007 density"
RISK_CMAP, UNCERTAINTY_CMAP, COST_CMAP, DENSITY_CMAP = "YlOrRd", "Purples", "Blues", "viridis"
OBSERVED_COLOUR = (0, 190, 255, 255)
WATER_KINDS = {"river", "stream", "canal", "drain", "ditch", "riverbank", "water"}  # drawn blue
NO_BASEMAP = "No basemap (offline)"
BASEMAPS = {  # name: (tile URL, attribution) — requested only when a reader picks one
    "OpenStreetMap": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                      "&copy; OpenStreetMap contributors"),
    "Imagery (Esri World Imagery)": (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Tiles &copy; Esri, Maxar, Earthstar Geographics and the GIS User Community"),
}
LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"  # keys of offlinefolium's embedded copies
LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"


class _Map(folium.Map):
    """folium's Map with Leaflet only: its default Bootstrap, jQuery and Font Awesome (≈ 1.3 MB) are unused."""

    default_js = [("leaflet", LEAFLET_JS)]
    default_css = [("leaflet_css", LEAFLET_CSS)]


class _ReviewApp(MacroElement):
    """Starts review.js once every layer exists (added to the map last)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            GeoRiskReview.init({{ this._parent.get_name() }}, {
            {%- for key, layer in this.layers.items() %}
                {{ key|tojson }}: {{ layer.get_name() }},
            {%- endfor %}
            }, {{ this.drawn }}, JSON.parse(document.getElementById("georisk-data").textContent));
        {% endmacro %}
    """)

    def __init__(self, layers: Mapping[str, object], draw: Draw):
        super().__init__()
        self._name = "GeoRiskReview"
        self.layers = dict(layers)
        self.drawn = f"drawnItems_{draw.get_name()}"


@dataclass(frozen=True)
class CompareRun:
    """Another run folder shown beside this one: its risk and, when present, its decision."""

    name: str
    risk: Path
    decision: Path | None = None


def json_for_script(obj) -> str:
    """JSON that cannot end or comment out the ``<script>`` element holding it (``<``, ``>``, ``&``
    and the JavaScript line separators escaped as \\u sequences, which JSON.parse turns back)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def _asset(name: str) -> str:
    return resources.files("geo_risk.review").joinpath(name).read_text(encoding="utf-8")


def _label(name: str) -> str:
    """A layer name for Leaflet's layer control, which inserts names as HTML."""
    return html.escape(name)


@dataclass
class _Raster:
    key: str
    name: str
    legend: dict
    url: str
    opacity: float
    show: bool


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
    inspect_max_px: int = 800,
    inspect_max_mb: float = 2.0,
    basemaps: bool = True,
    zone_stats: Mapping[int, Mapping[str, str]] | None = None,
    expected_cost_tif: Path | None = None,
    uncertainty_tif: Path | None = None,
    density_tif: Path | None = None,
    observed_loss: R.GridArray | None = None,
    period: str = "",
    vectors: Mapping[str, Path | VectorInput] | None = None,
    compare: CompareRun | None = None,
) -> Path:
    """Write a self-contained Leaflet review map to ``out_html`` (atomically) and return its path.

    ``zone_stats`` ({zone id: {label: text}}: the zone's audit) fills the zones' popups;
    ``observed_loss`` (1 lost, 0 kept forest, 255 no forest) is the loss of the evaluated
    ``period`` (e.g. "2010–2015"); ``vectors`` ({name: file}) are drawn as they are (roads,
    settlements…); ``compare`` adds another run's risk and decision for the split view.
    Optional rasters that are None are left out. Every string is shown as text.
    """
    if not 0 < len(action_names) < DECISION_NODATA:
        raise ConfigError(f"decision.actions: give 1 to 254 action names, one per decision value of "
                          f"{decision_tif}; got {len(action_names)}")
    if max_size_px < 1:
        raise ConfigError(f"map.max_size_px must be a positive number of pixels, got {max_size_px}")
    if inspect_max_px < 1:
        raise ConfigError(f"map.inspect_max_px must be a positive number of cells, got {inspect_max_px}")
    if not inspect_max_mb > 0:
        raise ConfigError(f"map.inspect_max_mb must be a positive number of megabytes, got {inspect_max_mb}")
    out_html = Path(out_html)
    during = f" {period}" if period else ""

    risk = R.read_raster(Path(risk_tif), "risk")
    R.check_probabilities(risk)
    decision = R.read_raster(Path(decision_tif), "decision")
    R.check_actions(decision, action_names)
    optional = {key: R.read_raster(Path(p), role) for key, p, role in (
        ("cost", expected_cost_tif, "expected cost"), ("uncertainty", uncertainty_tif, "uncertainty"),
        ("density", density_tif, "VT0007 density")) if p is not None}
    other_risk = other_decision = None
    if compare is not None:
        other_risk = R.read_raster(compare.risk, f"risk of {compare.name}")
        R.check_probabilities(other_risk, f"risk of {compare.name}")
        if compare.decision is not None:
            other_decision = R.read_raster(compare.decision, f"decision of {compare.name}")
            R.check_actions(other_decision, action_names)

    grid = R.mercator_grid(risk, max_size_px)
    fine = R.mercator_grid(risk, 10**9)  # native resolution: simplification tolerance of the vectors
    risk_img = R.warp(risk, grid, Resampling.bilinear, np.float32, np.nan)
    top = R.risk_scale_max(risk_img[np.isfinite(risk_img)])
    layers: list[_Raster] = []
    risk_legend = R.continuous_legend(RISK_CMAP, top, f"probability of forest loss{during}")
    if other_risk is not None:  # one colour bar for both runs, so that the split view compares like with like
        other_img = R.warp(other_risk, grid, Resampling.bilinear, np.float32, np.nan)
        top = max(top, R.risk_scale_max(other_img[np.isfinite(other_img)]))
        risk_legend = R.continuous_legend(RISK_CMAP, top, f"probability of forest loss{during}")
    layers.append(_Raster("risk", LAYER_RISK, risk_legend, R.continuous_image(risk_img, RISK_CMAP, top), 0.85, True))

    colours = R.action_colours(decision, len(action_names))
    dec_img = R.warp(decision, grid, Resampling.nearest, np.uint8, DECISION_NODATA)
    layers.append(_Raster("decision", LAYER_DECISION,
                          R.categorical_legend(action_names, colours, "minimum-expected-cost action"),
                          R.categorical_image(dec_img, colours), 0.75, False))
    for key, name, cmap, subtitle in (
            ("uncertainty", LAYER_UNCERTAINTY, UNCERTAINTY_CMAP, "spread of the probability"),
            ("cost", LAYER_COST, COST_CMAP, "of the chosen action, in the units of decision.cost"),
            ("density", LAYER_DENSITY, DENSITY_CMAP, "expected loss, ha per pixel per year")):
        if key in optional:
            g = optional[key]
            img = R.warp(g, grid, Resampling.bilinear, np.float32, np.nan)
            vmax = R.nice_max(img)
            layers.append(_Raster(key, name, R.continuous_legend(cmap, vmax, g.description or subtitle),
                                  R.continuous_image(img, cmap, vmax), 0.8, False))
    if observed_loss is not None:
        lost = np.where(observed_loss.array == 1, 0, 255).astype(np.uint8)  # kept forest stays transparent
        obs_img = R.warp(R.GridArray(lost, observed_loss.crs, observed_loss.transform, 255), grid,
                         Resampling.min, np.uint8, 255)  # min: a lost pixel survives the down-sampling
        layers.append(_Raster("observed", f"Observed loss{during}",
                              R.categorical_legend([f"forest lost{during}"], [OBSERVED_COLOUR]),
                              R.categorical_image(obs_img, [OBSERVED_COLOUR]), 0.9, False))
    if other_risk is not None:
        layers.append(_Raster("compare_risk", f"{LAYER_RISK} — {compare.name}", risk_legend,
                              R.continuous_image(other_img, RISK_CMAP, top), 0.85, False))
    if other_decision is not None:
        other_colours = R.action_colours(other_decision, len(action_names))
        img = R.warp(other_decision, grid, Resampling.nearest, np.uint8, DECISION_NODATA)
        layers.append(_Raster("compare_decision", f"{LAYER_DECISION} — {compare.name}",
                              R.categorical_legend(action_names, other_colours, "minimum-expected-cost action"),
                              R.categorical_image(img, other_colours), 0.75, False))

    inspect = [R.InspectValue("risk", f"P(forest loss{during})", risk, 4),
               R.InspectValue("action", LAYER_DECISION, decision, names=action_names)]
    labels = {"cost": (LAYER_COST, 2), "uncertainty": (LAYER_UNCERTAINTY, 4), "density": ("VT0007 density (ha/yr)", 5)}
    inspect += [R.InspectValue(k, labels[k][0], g, labels[k][1]) for k, g in optional.items()]
    if observed_loss is not None:
        inspect.append(R.InspectValue("observed", f"Observed{during}", observed_loss,
                                      names=["forest kept", "forest lost"]))
    if other_risk is not None:
        inspect.append(R.InspectValue("compare_risk", f"P(forest loss) — {compare.name}", other_risk, 4))
    if other_decision is not None:
        inspect.append(R.InspectValue("compare_action", f"{LAYER_DECISION} — {compare.name}", other_decision,
                                      names=action_names))
    inspect_table = R.inspect_table(risk, inspect, f"Pixel of {Path(risk_tif).name}", inspect_max_px,
                                    inspect_max_mb * 1e6)

    tolerance = min(fine.dx, fine.dy)  # one pixel: finer lines than the rasters show add bytes, not detail
    margin = 0.05 * max(fine.width * fine.dx, fine.height * fine.dy)  # vectors are clipped to the region
    region = (fine.left - margin, fine.top - fine.height * fine.dy - margin,
              fine.left + fine.width * fine.dx + margin, fine.top + margin)
    zones = zones_geojson(Path(zones_path), tolerance, region) if zones_path is not None else None
    others = {name: vector_geojson(p, f"layer '{name}'", tolerance, region) for name, p in (vectors or {}).items()}

    # ---- the page
    m = _Map(tiles=None, control_scale=True)
    m.get_root().title = html.escape(title)
    m.get_root().header.add_child(Element(
        "<style>.leaflet-container{background:#eef0ec !important}</style>"), name="review_background")
    js_layers: dict[str, object] = {}
    if basemaps:
        folium.FeatureGroup(name=_label(NO_BASEMAP), overlay=False, show=True).add_to(m)
        for name, (url, attr) in BASEMAPS.items():
            folium.TileLayer(url, attr=attr, name=_label(name), overlay=False, show=False, max_zoom=19).add_to(m)
    for i, layer in enumerate(layers):
        pane = f"georisk-{layer.key}"
        CustomPane(pane, z_index=350 + i).add_to(m)
        js_layers[layer.key] = ImageOverlay(layer.url, grid.latlon_bounds(), name=_label(layer.name),
                                            opacity=layer.opacity, show=layer.show, pane=pane).add_to(m)
    if zones is not None:
        js_layers["zones"] = folium.GeoJson(
            zones, name=_label(LAYER_ZONES), zoom_on_click=False,
            style_function=lambda _: {"color": "#222", "weight": 1.5, "fill": True, "fillColor": "#ffffff",
                                      "fillOpacity": 0.0},
        ).add_to(m)
    vector_meta = []
    for i, (name, (gj, kind)) in enumerate(others.items()):
        water = {f["properties"]["kind"] for f in gj["features"]} & WATER_KINDS
        colour = "#2b7bba" if water else "#444444"
        style = {"color": colour, "weight": 1.2, "opacity": 0.9, "fillOpacity": 0.9, "fillColor": "#ffffff"}
        marker = folium.CircleMarker(radius=4, color="#222", weight=1.5, fill_color="#ffffff", fill_opacity=0.95)
        shown = name[:1].upper() + name[1:]
        js_layers[f"vector{i}"] = folium.GeoJson(  # lines hidden at first: they would hide the risk
            gj, name=_label(shown), zoom_on_click=False, style_function=lambda _, s=style: s,
            marker=marker if kind == "point" else None, show=kind == "point").add_to(m)
        vector_meta.append({"key": f"vector{i}", "name": shown, "kind": kind, "color": colour})
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    Fullscreen(position="topleft", title="Full screen", title_cancel="Leave full screen").add_to(m)
    MousePosition(position="bottomright", separator=" , ", prefix="lat, lon:", num_digits=5,
                  empty_string="").add_to(m)
    draw = Draw(position="topleft", show_geometry_on_click=False,
                draw_options={"polyline": False, "circle": False, "marker": False, "circlemarker": False,
                              "polygon": {"allowIntersection": False, "showArea": True},
                              "rectangle": {"showArea": True}},
                edit_options={"edit": True, "remove": True})
    draw.add_to(m)
    m.fit_bounds(grid.latlon_bounds())
    _ReviewApp(js_layers, draw).add_to(m)

    data = {
        "title": title, "note": zone_note, "attribution": attribution, "period": period,
        "rasters": [{"key": r.key, "name": r.name, "legend": r.legend} for r in layers],
        "zones": None if zones is None else {
            "key": "zones", "name": LAYER_ZONES,
            "audit": {str(z): [[str(k), str(v)] for k, v in rows.items()] for z, rows in (zone_stats or {}).items()}},
        "vectors": vector_meta,
        "split": {"left": "risk", "right": "compare_risk" if other_risk is not None else "decision"},
        "inspect": inspect_table,
        "aoi": {"filename": "aoi.geojson", "source": title},
    }
    root = m.get_root()
    root.html.add_child(Element(f"<style>{_asset('review.css')}</style>"), name="georisk_css")
    root.html.add_child(Element(
        f'<script type="application/json" id="georisk-data">{json_for_script(data)}</script>'), name="georisk_data")
    root.html.add_child(Element(f"<script>{_asset('review.js')}</script>"), name="georisk_js")
    page = root.render()

    with atomic_file(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_html
