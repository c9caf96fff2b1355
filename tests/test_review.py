"""Tests of geo_risk.review on a 400x400 px window of the real Guadeloupe forest-cover raster.

What a browser does with the page is tested in tests/browser/; here: what the page holds.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from matplotlib.image import imread
from pyproj import Transformer
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import LineString, Point, box

from geo_risk.review import (LAYER_COST, LAYER_DECISION, LAYER_RISK, LAYER_UNCERTAINTY, LAYER_ZONES, CompareRun,
                             GridArray, json_for_script, write_review_map)
from geo_risk_errors import ConfigError, CRSMissingError, InputDataError, MissingInputError

FCC = Path(__file__).resolve().parents[1] / "data/demo/guadeloupe/forest/fcc12345.tif"
EVIL = "<script>alert(1)</script>"
EVIL_IMG = "<img src=x onerror=\"document.title='PWNED'\">"
ACTIONS = ["none", "patrol"]
TITLE = "Guadeloupe review (test)"
OVERLAY_RE = re.compile(r'L\.imageOverlay\(\s*"(data:image/png;base64,[^"]+)",\s*(\[\[[^\]]*\],\s*\[[^\]]*\]\])')
DATA_RE = re.compile(r'<script type="application/json" id="georisk-data">(.*?)</script>', re.S)

pytestmark = pytest.mark.skipif(not FCC.exists(), reason=f"demo raster {FCC} not present")


def make_inputs(d: Path, *, with_crs: bool = True, bad_decision: bool = False, tile: int = 1) -> dict:
    """Risk, decision (with colour table), expected cost, uncertainty and zones from a window of
    fcc12345.tif; ``tile`` > 1 repeats the window tile × tile times (a larger region)."""
    with rasterio.open(FCC) as src:
        win = Window(300, 1800, 400, 400)
        fcc = np.tile(src.read(1, window=win), (tile, tile))
        transform, crs = src.window_transform(win), src.crs
    n = fcc.shape[0]
    rng = np.random.default_rng(0)
    risk = np.array([np.nan, 0.95, 0.8, 0.65, 0.5, 0.1], dtype=np.float32)[fcc]
    risk = np.where(np.isfinite(risk), np.clip(risk + rng.normal(0, 0.02, risk.shape), 0, 1), np.nan).astype(np.float32)
    decision = np.where(fcc == 0, 255, (risk >= 0.4).astype(np.uint8)).astype(np.uint8)
    if bad_decision:
        decision[fcc == 1] = 7
    cost = np.where(decision == 1, 10, 100 * risk).astype(np.float32)
    prof = dict(driver="GTiff", width=n, height=n, count=1, transform=transform, crs=crs if with_crs else None)
    paths = {k: d / f"{k}.tif" for k in ("risk", "decision", "cost", "uncertainty")}
    with rasterio.open(paths["risk"], "w", dtype="float32", nodata=np.nan, **prof) as dst:
        dst.write(risk, 1)
    with rasterio.open(paths["decision"], "w", dtype="uint8", nodata=255, **prof) as dst:
        dst.write(decision, 1)
        dst.write_colormap(1, {0: (200, 200, 200, 255), 1: (120, 30, 160, 255)})
    with rasterio.open(paths["cost"], "w", dtype="float32", nodata=np.nan, **prof) as dst:
        dst.write(cost, 1)
    with rasterio.open(paths["uncertainty"], "w", dtype="float32", nodata=np.nan, **prof) as dst:
        dst.write((risk * 0.1).astype(np.float32), 1)
        dst.set_band_description(1, "std of the probability over 4 test-time augmentations")
    left, top = transform @ (0, 0)
    right, bottom = transform @ (n, n)
    xs = np.linspace(left, right, 4)
    zones = gpd.GeoDataFrame({"zone_id": [1, 2, 3], "name": ["Vieux-Habitants", EVIL, "Bouillante"]},
                             geometry=[box(xs[i], bottom, xs[i + 1], top) for i in range(3)], crs=crs)
    paths["zones"] = d / "zones.gpkg"
    zones.to_file(paths["zones"], driver="GPKG")
    roads = gpd.GeoDataFrame({"name": ["Route de la Traversée", EVIL_IMG, EVIL_IMG], "highway": ["primary", "track", "track"]},
                             geometry=[LineString([(left, top), (right, bottom)]), LineString([(left, bottom), (right, top)]),
                                       LineString([(left, bottom + 100), (right, top + 100)])], crs=crs)
    paths["roads"] = d / "roads.geojson"
    roads.to_file(paths["roads"])
    towns = gpd.GeoDataFrame({"name": ["Bouillante", EVIL_IMG]},
                             geometry=[Point((left + right) / 2, (top + bottom) / 2), Point(left + 500, top - 500)], crs=crs)
    paths["towns"] = d / "towns.geojson"
    towns.to_file(paths["towns"])
    return paths


def render(paths: dict, out: Path, **kw) -> Path:
    kw = {"action_names": ACTIONS, "title": TITLE, "zone_note": "Zones are test strips",
          "attribution": "© OpenStreetMap contributors", **kw}
    return write_review_map(out, paths["risk"], paths["decision"], paths["zones"], **kw)


def page_data(page: str) -> dict:
    return json.loads(DATA_RE.search(page).group(1))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("review")
    paths = make_inputs(d)
    observed = np.where(np.isfinite(rasterio.open(paths["risk"]).read(1)), 0, 255).astype(np.uint8)
    observed[100:110, 100:110] = np.where(observed[100:110, 100:110] == 0, 1, 255)
    with rasterio.open(paths["risk"]) as src:
        obs = GridArray(observed, src.crs, src.transform, 255)
    out = render(paths, d / "map.html", max_size_px=256, inspect_max_px=200, expected_cost_tif=paths["cost"],
                 uncertainty_tif=paths["uncertainty"], observed_loss=obs, period="2010–2015",
                 vectors={"roads": paths["roads"], "towns": paths["towns"]},
                 zone_stats={1: {"Mean risk (map)": "0.051"}, 3: {"Mean risk (map)": EVIL}})
    return paths, out, out.read_text(encoding="utf-8")


def test_map_has_every_layer_its_legend_and_the_controls(built):
    _, out, page = built
    data = page_data(page)
    names = [r["name"] for r in data["rasters"]]
    assert names == [LAYER_RISK, LAYER_DECISION, LAYER_UNCERTAINTY, LAYER_COST, "Observed loss 2010–2015"]
    assert len(OVERLAY_RE.findall(page)) == 5
    legends = {r["key"]: r["legend"] for r in data["rasters"]}
    assert legends["risk"]["kind"] == "continuous" and legends["risk"]["subtitle"] == "probability of forest loss 2010–2015"
    assert legends["risk"]["ticks"][0] == "0" and len(legends["risk"]["stops"]) == 11
    assert [i["label"] for i in legends["decision"]["items"]] == ACTIONS
    assert legends["decision"]["items"][1]["color"] == "rgba(120,30,160,1.00)"  # the colour table of decision.tif
    assert legends["uncertainty"]["subtitle"] == "std of the probability over 4 test-time augmentations"
    assert [v["name"] for v in data["vectors"]] == ["Roads", "Towns"] and data["zones"]["name"] == LAYER_ZONES
    assert data["note"] == "Zones are test strips" and data["attribution"] == "© OpenStreetMap contributors"
    for control in ("L.control.layers", "L.Control.Draw", "L.control.fullscreen", "L.Control.MousePosition",
                    "L.control.scale(", "GeoRiskReview.init("):
        assert control in page or control.lower() in page.lower(), control
    assert not list(out.parent.glob(".map.html.*"))  # no temp file left


def test_map_fetches_nothing_from_the_network(built, tmp_path):
    page = built[2]
    fetching = [
        r'<script[^>]*\bsrc\s*=', r'<link[^>]*\bhref\s*=', r'<img[^>]*\bsrc\s*=\s*["\']?(https?:)?//',
        r'url\(\s*["\']?(https?:)?//', r'@import',
    ]
    for pattern in fetching:
        assert not re.search(pattern, page, re.I), pattern
    for host in ("cdn.jsdelivr.net/", "unpkg.com", "cdnjs.cloudflare.com", "code.jquery.com", "bootstrapcdn"):
        assert host not in page.replace("www.jsdelivr.com", ""), host
    # basemaps are offered, off until picked: their tile layers exist but are never added at load
    tiles = re.findall(r"var (tile_layer_\w+) = L\.tileLayer\(", page)
    assert len(tiles) == 2 and not any(re.search(rf"{t}\.addTo\(", page) for t in tiles)
    # without basemaps the page names no tile server at all
    paths = built[0]
    bare = render(paths, tmp_path / "bare.html", max_size_px=64, inspect_max_px=32, basemaps=False).read_text()
    assert "L.tileLayer(" not in bare and "openstreetmap.org" not in bare.replace("OpenStreetMap contributors", "")


def test_no_unused_bootstrap_jquery_or_font_awesome(built):
    page = built[2]
    for marker in ("Bootstrap v5", "jQuery v3", "Font Awesome", "awesome-marker"):
        assert marker not in page, marker


def test_untrusted_strings_never_reach_the_page_as_html(built):
    page = built[2]
    for raw in (EVIL, EVIL_IMG, "</script>alert"):
        assert raw not in page
    data = page_data(page)  # the JSON block gives the strings back exactly, to be inserted as text
    zones = json.loads(re.search(r"geo_json_\w+_add\((\{.*?\})\);", page, re.S).group(1))
    assert [f["properties"]["name"] for f in zones["features"]] == ["Vieux-Habitants", EVIL, "Bouillante"]
    assert data["zones"]["audit"]["3"] == [["Mean risk (map)", EVIL]]
    assert "Route de la Traversée" in page or "Route de la Travers\\u00e9e" in page


def test_layer_control_names_are_escaped(tmp_path):
    """Leaflet's layer control inserts names as HTML: names from configs and folders arrive escaped."""
    paths = make_inputs(tmp_path)
    other = tmp_path / EVIL_IMG
    other.mkdir()
    (other / "risk.tif").write_bytes(paths["risk"].read_bytes())
    page = render(paths, tmp_path / "map.html", max_size_px=64, inspect_max_px=32, vectors={EVIL: paths["towns"]},
                  compare=CompareRun(EVIL_IMG, other / "risk.tif")).read_text()
    assert EVIL not in page and EVIL_IMG not in page
    assert f'"{html.escape(EVIL)}"' in page or json.dumps(html.escape(EVIL)).replace("&", "\\u0026") in page


def test_json_for_script_cannot_close_the_script():
    obj = {"a": "</script><script>alert(1)</script>", "b": "x\u2028y<!--", "c": "&amp;"}
    text = json_for_script(obj)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == obj


def test_inspect_table_holds_exact_pixel_values(built):
    """Every stored cell gives the values of one pixel — the one under the cell's centre — exactly."""
    paths, _, page = built
    ins = page_data(page)["inspect"]
    layers = {lyr["key"]: lyr for lyr in ins["layers"]}
    dtype = {"f32": "<f4", "u8": "u1", "u32": "<u4"}

    def values(key):
        return np.frombuffer(base64.b64decode(layers[key]["data"]), dtype=dtype[layers[key]["dtype"]])

    mask = np.unpackbits(np.frombuffer(base64.b64decode(ins["mask"]), np.uint8), bitorder="little")
    mask = mask[: ins["width"] * ins["height"]].astype(bool)
    assert ins["count"] == mask.sum() > 1000 and max(ins["width"], ins["height"]) <= 200
    with rasterio.open(paths["risk"]) as src:
        risk, transform, crs = src.read(1), src.transform, src.crs
    decision, cost = (rasterio.open(paths[k]).read(1) for k in ("decision", "cost"))
    pixel = values("pixel")
    rows, cols = pixel // layers["pixel"]["width"], pixel % layers["pixel"]["width"]
    np.testing.assert_array_equal(values("risk"), risk[rows, cols])
    np.testing.assert_array_equal(values("cost"), cost[rows, cols])
    np.testing.assert_array_equal(values("action"), decision[rows, cols])
    assert layers["action"]["names"] == ACTIONS and layers["observed"]["names"] == ["forest kept", "forest lost"]
    # the cells' centres, projected back with pyproj, fall in those pixels; cells left out have no forest
    cells = np.arange(ins["width"] * ins["height"])
    x = ins["left"] + (cells % ins["width"] + 0.5) * ins["dx"]
    y = ins["top"] - (cells // ins["width"] + 0.5) * ins["dy"]
    gx, gy = Transformer.from_crs(3857, crs.to_wkt(), always_xy=True).transform(x, y)
    c, r = ~transform @ (np.asarray(gx), np.asarray(gy))
    r, c = np.floor(r).astype(int), np.floor(c).astype(int)
    np.testing.assert_array_equal(r[mask], rows)
    np.testing.assert_array_equal(c[mask], cols)
    inside = (r >= 0) & (r < risk.shape[0]) & (c >= 0) & (c < risk.shape[1])
    assert not np.isfinite(risk[r[~mask & inside], c[~mask & inside]]).any()


def test_inspect_table_fits_its_budget(tmp_path):
    """Where forest is dense the inspect cells get coarser: the table stays under map.inspect_max_mb."""
    from geo_risk.review.rasters import table_bytes

    paths = make_inputs(tmp_path)
    page = render(paths, tmp_path / "map.html", max_size_px=64, inspect_max_px=200, inspect_max_mb=0.05).read_text()
    ins = page_data(page)["inspect"]
    assert table_bytes(ins) <= 50_000 and 16 <= max(ins["width"], ins["height"]) < 200
    values = np.frombuffer(base64.b64decode(ins["layers"][0]["data"]), "<f4")
    pixel = np.frombuffer(base64.b64decode(ins["layers"][-1]["data"]), "<u4")
    risk = rasterio.open(paths["risk"]).read(1)
    np.testing.assert_array_equal(values, risk.ravel()[pixel])  # still exact pixel values


def test_vectors_are_clipped_to_the_region(tmp_path):
    paths = make_inputs(tmp_path)
    towns = gpd.read_file(paths["towns"])
    far = gpd.GeoDataFrame({"name": ["Far away"]}, geometry=[Point(towns.geometry[0].x + 50_000,
                                                                   towns.geometry[0].y)], crs=towns.crs)
    gpd.pd.concat([towns, far]).to_file(tmp_path / "towns2.geojson")
    page = render(paths, tmp_path / "map.html", max_size_px=64, inspect_max_px=32,
                  vectors={"towns": tmp_path / "towns2.geojson"}).read_text()
    assert "Far away" not in page and "Bouillante" in page


def test_overlay_bounds_and_size_match_the_rasters(built):
    paths, _, page = built
    with rasterio.open(paths["risk"]) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    for url, bounds in OVERLAY_RE.findall(page):
        (s, w), (n, e) = json.loads(bounds)
        assert np.allclose([s, w, n, e], [south, west, north, east], atol=1e-3)
        img = imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])), format="png")
        assert max(img.shape[:2]) <= 256 and img.shape[2] == 4
        alpha = img[..., 3]
        assert (alpha == 0).any() and (alpha > 0).any()  # nodata transparent, something drawn


def test_a_region_four_times_larger_keeps_the_page_bounded(tmp_path):
    """Rasters are drawn at ≤ max_size_px and inspected at ≤ inspect_max_px cells: a region with 4×
    the pixels makes a page of about the same size (docs/review-map.md has the demo's figures)."""
    sizes = {}
    for tile in (1, 2):
        d = tmp_path / f"x{tile}"
        d.mkdir()
        paths = make_inputs(d, tile=tile)
        out = render(paths, d / "map.html", max_size_px=300, inspect_max_px=150, expected_cost_tif=paths["cost"])
        sizes[tile] = out.stat().st_size
        for url, _ in OVERLAY_RE.findall(out.read_text()):
            img = imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])), format="png")
            assert max(img.shape[:2]) <= 300
    assert sizes[2] < 1.6 * sizes[1], sizes


def test_compare_run_shares_the_risk_colour_bar(tmp_path):
    paths = make_inputs(tmp_path)
    other = tmp_path / "run-b"
    other.mkdir()
    with rasterio.open(paths["risk"]) as src:
        profile, risk = src.profile, src.read(1)
    with rasterio.open(other / "risk.tif", "w", **profile) as dst:
        dst.write(risk / 4, 1)
    page = render(paths, tmp_path / "map.html", max_size_px=64, inspect_max_px=32,
                  compare=CompareRun("run-b", other / "risk.tif", paths["decision"])).read_text()
    data = page_data(page)
    legends = {r["key"]: r["legend"] for r in data["rasters"]}
    assert legends["compare_risk"] == legends["risk"]  # one scale for both runs
    assert [r["name"] for r in data["rasters"]][-2:] == [f"{LAYER_RISK} — run-b", f"{LAYER_DECISION} — run-b"]
    assert data["split"] == {"left": "risk", "right": "compare_risk"}
    assert {lyr["key"] for lyr in data["inspect"]["layers"]} >= {"compare_risk", "compare_action"}


def test_without_zones_or_optional_layers(tmp_path):
    paths = make_inputs(tmp_path)
    out = write_review_map(tmp_path / "m.html", paths["risk"], paths["decision"], None,
                           action_names=ACTIONS, title="t", max_size_px=64, inspect_max_px=32)
    page = out.read_text(encoding="utf-8")
    data = page_data(page)
    assert LAYER_RISK in page and LAYER_ZONES not in page and data["zones"] is None
    assert [r["key"] for r in data["rasters"]] == ["risk", "decision"]
    assert data["split"] == {"left": "risk", "right": "decision"}


# ---------------------------------------------------------------- zone audit


def test_zone_audit_from_the_stack_by_hand(tmp_path):
    from geo_risk.review.audit import zone_audit

    zone = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 2, 2]])
    forest = np.array([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 0]], dtype=bool)
    lost = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    dec = np.array([[1, 0, 1, 1], [255, 255, 0, 0], [1, 1, 255, 255]], dtype=np.uint8)
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"zone_id": [1, 2], "name": ["A", "B"], "pixels": [3, 4], "mean_risk_model": [0.2, 0.1],
                  "mean_risk_map": [0.15, 0.12], "logit_offset": [0, 0]}).to_csv(tmp_path / "zone_risk.csv", index=False)
    out = zone_audit(tmp_path / "zone_risk.csv", tmp_path / "none.json",
                     {"zone": zone, "forest": forest, "lost": lost}, GridArray(dec, None, None, 255),
                     pixel_area_ha=0.09, actions=["none", "patrol"], period_start=2010, period="2010–2015")
    # zone 1: forest (0,0) (0,1) (1,0) → 3 px = 0.27 ha; lost (0,0) → 33.3 %; flagged (0,0) → 0.09 ha
    assert out[1] == {"Forest 2010 (ha)": "0", "Observed loss 2010–2015": "33.3 %", "Mean risk (model)": "0.200",
                      "Mean risk (map)": "0.150", "Flagged for patrol (ha)": "0"}
    # zone 2: forest 4 px, lost (1,2) → 25 %; flagged (0,2) (0,3) → 2 px
    assert out[2]["Observed loss 2010–2015"] == "25.0 %" and out[2]["Mean risk (map)"] == "0.120"
    big = zone_audit(tmp_path / "zone_risk.csv", tmp_path / "none.json",
                     {"zone": zone, "forest": forest, "lost": lost}, GridArray(dec, None, None, 255),
                     pixel_area_ha=1000.0, actions=["none", "patrol"], period_start=2010, period="2010–2015")
    assert big[1]["Forest 2010 (ha)"] == "3,000" and big[1]["Flagged for patrol (ha)"] == "1,000"
    assert big[2]["Forest 2010 (ha)"] == "4,000" and big[2]["Flagged for patrol (ha)"] == "2,000"
    assert 0 not in big  # outside every zone


def test_zone_audit_prefers_evaluates_with_intervals(tmp_path):
    from geo_risk.review.audit import zone_audit

    iv = {"value": 0.0425, "low": 0.031, "high": 0.055}
    (tmp_path / "metrics.json").write_text(json.dumps({
        "coverage": {"pixel_area_ha": 0.09},
        "fairness": {"zones": [{"zone_id": 4, "forest_pixels": 1000, "observed_loss_rate": iv,
                                "mean_risk_model": {"value": 0.05, "low": None, "high": None},
                                "mean_risk_map": {"value": 0.06, "low": 0.05, "high": 0.07},
                                "fnr": {"value": 0.5, "low": 0.25, "high": 0.75}, "flagged_ha": 12.4}]}}))
    out = zone_audit(tmp_path / "zone_risk.csv", tmp_path / "metrics.json", None, None, pixel_area_ha=1.0,
                     actions=["none", "patrol"], period_start=2010, period="2010–2015")
    assert out == {4: {"Forest 2010 (ha)": "90", "Observed loss 2010–2015": "4.2 % (3.1 %–5.5 %)",
                       "Mean risk (model)": "0.050", "Mean risk (map)": "0.060 (0.050–0.070)",
                       "Flagged for patrol (ha)": "12", "Losses left unflagged (FNR)": "50.0 % (25.0 %–75.0 %)"}}


# ---------------------------------------------------------------- errors


def test_missing_risk_raises_and_writes_nothing(tmp_path):
    paths = make_inputs(tmp_path)
    paths["risk"] = tmp_path / "nope_risk.tif"
    out = tmp_path / "out" / "map.html"
    with pytest.raises(MissingInputError, match="nope_risk.tif"):
        render(paths, out)
    assert not out.exists()
    assert not list(tmp_path.rglob("*.html*")) and not list(tmp_path.rglob("*.tmp"))


def test_decision_value_out_of_range_raises_and_writes_nothing(tmp_path):
    paths = make_inputs(tmp_path, bad_decision=True)
    with pytest.raises(InputDataError, match=r"decision\.tif.*value 7"):
        render(paths, tmp_path / "map.html")
    assert not list(tmp_path.glob("*map.html*"))


def test_error_keeps_an_existing_map_untouched(tmp_path):
    paths = make_inputs(tmp_path, bad_decision=True)
    out = tmp_path / "map.html"
    out.write_text("previous map")
    with pytest.raises(InputDataError):
        render(paths, out)
    assert out.read_text() == "previous map"
    assert [p.name for p in tmp_path.glob("*map.html*")] == ["map.html"]


def test_raster_without_crs_raises(tmp_path):
    paths = make_inputs(tmp_path, with_crs=False)
    with pytest.raises(CRSMissingError, match="risk.tif"):
        render(paths, tmp_path / "map.html")
    assert not (tmp_path / "map.html").exists()


def test_risk_outside_unit_interval_raises(tmp_path):
    paths = make_inputs(tmp_path)
    with rasterio.open(paths["risk"], "r+") as dst:
        dst.write(dst.read(1) * 100, 1)
    with pytest.raises(InputDataError, match=r"risk\.tif.*\[0, 1\]"):
        render(paths, tmp_path / "map.html")


def test_vector_without_crs_names_the_layer(tmp_path):
    paths = make_inputs(tmp_path)
    (tmp_path / "nocrs.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]})
        .replace('"type": "FeatureCollection"', '"type": "FeatureCollection", "crs": null'))
    from geo_risk.review.vectors import VectorInput, read_vector

    gdf = read_vector(VectorInput(tmp_path / "nocrs.geojson", crs="EPSG:4326"), "layer 'x'")
    assert gdf.crs.to_epsg() == 4326
    with pytest.raises(MissingInputError, match="layer 'roads'.*nope.geojson"):
        render(paths, tmp_path / "map.html", vectors={"roads": tmp_path / "nope.geojson"})


def test_risk_colour_bar_tops_at_high_quantile():
    from geo_risk.review import risk_scale_max
    from geo_risk.review.rasters import nice_max

    rare = np.r_[np.full(995, 0.01), np.linspace(0.2, 0.9, 5)]
    assert risk_scale_max(rare) == pytest.approx(0.05)  # 99.5th percentile 0.01 → floor 0.05
    assert risk_scale_max(np.linspace(0, 0.42, 1000)) == pytest.approx(0.45)
    assert risk_scale_max(np.linspace(0, 1, 1000)) == 1.0
    assert risk_scale_max(np.array([], dtype=np.float32)) == 1.0
    assert nice_max(np.linspace(0, 87.3, 1000)) == pytest.approx(87.0)  # two significant digits, rounded up
    assert nice_max(np.linspace(0, 0.00123, 1000)) == pytest.approx(0.0013)


@pytest.mark.parametrize("kw,match", [({"action_names": []}, r"decision\.actions: give 1 to 254"),
                                      ({"max_size_px": 0}, r"map\.max_size_px must be a positive"),
                                      ({"inspect_max_px": 0}, r"map\.inspect_max_px must be a positive"),
                                      ({"inspect_max_mb": 0}, r"map\.inspect_max_mb must be a positive")])
def test_bad_arguments_raise_config_error(tmp_path, kw, match):
    paths = make_inputs(tmp_path)
    with pytest.raises(ConfigError, match=match):
        render(paths, tmp_path / "map.html", **kw)
    assert not (tmp_path / "map.html").exists()


def test_run_map_refuses_an_unknown_vector_layer(synthetic_region, tmp_path):
    from geo_risk.pipeline import run_map
    from tests.conftest import synthetic_config

    cfg = synthetic_config(synthetic_region, tmp_path, map={"vectors": ["roads", "railways"]})
    with pytest.raises(ConfigError, match=r"map\.vectors.*railways.*pick from \['rivers', 'roads', 'towns'\]"):
        run_map(cfg)
