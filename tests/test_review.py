"""Tests of geo_risk.review on a 400x400 px window of the real Guadeloupe forest-cover raster."""

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
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box

from geo_risk.review import LAYER_DECISION, LAYER_RISK, LAYER_ZONES, write_review_map
from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError

FCC = Path(__file__).resolve().parents[1] / "data/demo/guadeloupe/forest/fcc12345.tif"
EVIL = "<script>alert(1)</script>"
ACTIONS = ["none", "patrol"]
TITLE = "Guadeloupe review (test)"
OVERLAY_RE = re.compile(r'L\.imageOverlay\(\s*"(data:image/png;base64,[^"]+)",\s*(\[\[[^\]]*\],\s*\[[^\]]*\]\])')

pytestmark = pytest.mark.skipif(not FCC.exists(), reason=f"demo raster {FCC} not present")


def make_inputs(d: Path, *, with_crs: bool = True, bad_decision: bool = False) -> dict:
    """Risk, decision (with colour table) and zones built from a window of fcc12345.tif."""
    with rasterio.open(FCC) as src:
        win = Window(300, 1800, 400, 400)
        fcc = src.read(1, window=win)
        transform, crs = src.window_transform(win), src.crs
    risk = np.array([np.nan, 0.95, 0.8, 0.65, 0.5, 0.1], dtype=np.float32)[fcc]
    decision = np.where(fcc == 0, 255, (risk >= 0.4).astype(np.uint8)).astype(np.uint8)
    if bad_decision:
        decision[fcc == 1] = 7
    prof = dict(driver="GTiff", width=400, height=400, count=1, transform=transform,
                crs=crs if with_crs else None)
    paths = {"risk": d / "risk.tif", "decision": d / "decision.tif", "zones": d / "zones.gpkg"}
    with rasterio.open(paths["risk"], "w", dtype="float32", nodata=np.nan, **prof) as dst:
        dst.write(risk, 1)
    with rasterio.open(paths["decision"], "w", dtype="uint8", nodata=255, **prof) as dst:
        dst.write(decision, 1)
        dst.write_colormap(1, {0: (200, 200, 200, 255), 1: (120, 30, 160, 255)})
    left, top = transform @ (0, 0)
    right, bottom = transform @ (400, 400)
    xs = np.linspace(left, right, 4)
    zones = gpd.GeoDataFrame(
        {"zone_id": [1, 2, 3], "name": ["Vieux-Habitants", EVIL, "Bouillante"]},
        geometry=[box(xs[i], bottom, xs[i + 1], top) for i in range(3)], crs=crs)
    zones.to_file(paths["zones"], driver="GPKG")
    return paths


def render(paths: dict, out: Path, **kw) -> Path:
    kw = {"action_names": ACTIONS, "title": TITLE,
          "zone_note": "Zones are test strips", "attribution": "© OpenStreetMap contributors", **kw}
    return write_review_map(out, paths["risk"], paths["decision"], paths["zones"], **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("review")
    paths = make_inputs(d)
    out = render(paths, d / "map.html", max_size_px=256)
    return paths, out, out.read_text(encoding="utf-8")


def test_map_has_layers_legend_and_overlays(built):
    _, out, page = built
    assert out.exists()
    for text in (LAYER_RISK, LAYER_DECISION, LAYER_ZONES, TITLE, *ACTIONS,
                 "probability of forest loss", "Zones are test strips", "OpenStreetMap contributors"):
        assert text in page, text
    assert len(OVERLAY_RE.findall(page)) == 2
    assert page.count("data:image/png;base64,") >= 2
    assert "L.control.layers" in page and '"collapsed": false' in page
    assert not list(out.parent.glob(".map.html.*"))  # no temp file left


def test_map_fetches_nothing_from_the_network(built):
    page = built[2]
    fetching = [
        r'<script[^>]*\bsrc\s*=\s*["\']?(https?:)?//',
        r'<link[^>]*\bhref\s*=\s*["\']?(https?:)?//',
        r'<img[^>]*\bsrc\s*=\s*["\']?(https?:)?//',
        r'url\(\s*["\']?(https?:)?//',
        r'@import\s+(url\()?\s*["\']?(https?:)?//',
        r'L\.tileLayer\(',
    ]
    for pattern in fetching:
        assert not re.search(pattern, page, re.I), pattern
    # offlinefolium keeps one comment naming www.jsdelivr.com (a licence note); no CDN host is used.
    for host in ("https://cdn", "cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert host not in page, host


def test_malicious_zone_name_is_escaped(built):
    page = built[2]
    assert EVIL not in page
    escaped = html.escape(EVIL)  # the tooltip inserts names as HTML, so they are stored escaped
    assert escaped in page or json.dumps(escaped)[1:-1].replace("&", "\\u0026") in page


def test_zone_stats_join_the_tooltip_escaped(tmp_path):
    paths = make_inputs(tmp_path)
    stats = {1: {"Mean risk (map)": "0.051"}, 3: {"Mean risk (map)": EVIL}}  # zone 2 has none
    page = render(paths, tmp_path / "map.html", max_size_px=64, zone_stats=stats).read_text(encoding="utf-8")
    assert "Mean risk (map)" in page and '"stat0": "0.051"' in page and r'"stat0": "\u2013"' in page
    assert EVIL not in page


def test_overlay_bounds_and_size_match_the_rasters(built):
    paths, _, page = built
    with rasterio.open(paths["risk"]) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    overlays = OVERLAY_RE.findall(page)
    for url, bounds in overlays:
        (s, w), (n, e) = json.loads(bounds)
        assert np.allclose([s, w, n, e], [south, west, north, east], atol=1e-3)
        img = imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])), format="png")
        assert max(img.shape[:2]) <= 256 and img.shape[2] == 4
        alpha = img[..., 3]
        assert (alpha == 0).any() and (alpha > 0).any()  # nodata transparent, forest drawn


def test_without_zones(tmp_path):
    paths = make_inputs(tmp_path)
    out = write_review_map(tmp_path / "m.html", paths["risk"], paths["decision"], None,
                           action_names=ACTIONS, title="t", max_size_px=64)
    page = out.read_text(encoding="utf-8")
    assert LAYER_RISK in page and LAYER_ZONES not in page


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
    out = tmp_path / "map.html"
    with pytest.raises(InputDataError, match=r"decision\.tif.*value 7"):
        render(paths, out)
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


def test_risk_colour_bar_tops_at_high_quantile():
    from geo_risk.review import risk_scale_max

    rare = np.r_[np.full(995, 0.01), np.linspace(0.2, 0.9, 5)]
    assert risk_scale_max(rare) == pytest.approx(0.05)  # 99.5th percentile 0.01 → floor 0.05
    assert risk_scale_max(np.linspace(0, 0.42, 1000)) == pytest.approx(0.45)
    assert risk_scale_max(np.linspace(0, 1, 1000)) == 1.0
    assert risk_scale_max(np.array([], dtype=np.float32)) == 1.0


@pytest.mark.parametrize("kw,match", [({"action_names": []}, r"decision\.actions: give 1 to 254"),
                                      ({"max_size_px": 0}, r"map\.max_size_px must be a positive")])
def test_bad_arguments_raise_config_error(tmp_path, kw, match):
    from geo_risk_errors import ConfigError

    paths = make_inputs(tmp_path)
    with pytest.raises(ConfigError, match=match):
        render(paths, tmp_path / "map.html", **kw)
    assert not (tmp_path / "map.html").exists()
