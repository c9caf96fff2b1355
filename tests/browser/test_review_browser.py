"""The review map in a real browser (headless Chromium, network blocked), on the synthetic run.

Each test loads map.html afresh. Screenshots go to ``<run>/screenshots/``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from geo_risk.paths import RunPaths
from tests.browser import review_checks as rc
from tests.browser.conftest import keep

EVIL_IMG = "<img src=x onerror=\"document.title='PWNED'\">"
EVIL_SCRIPT = "<script>document.title='PWNED'</script>"


@pytest.fixture
def page(browser, review_run):
    browser.open(RunPaths(review_run.run_dir).map)
    return browser


def test_page_loads_offline_without_errors_or_requests(page, review_run):
    rc.assert_clean(page)
    assert page.js("return document.title") == f"{review_run.name}: risk of forest loss 2010–2015"
    keep(page, review_run.run_dir, "01-loaded")


def test_screenshot_shows_risk_colours_inside_the_region(page, review_run):
    img = rc.screen(page)
    keep(page, review_run.run_dir, "02-risk")
    free = ~rc.controls_mask(page, img.shape)
    inside = rc.layer_box(page).mask(img.shape) & free
    outside = ~rc.layer_box(page).mask(img.shape) & free
    w = rc.warm(img)
    assert img.std() > 10  # not blank
    # the synthetic region: 6,740 of its 9,216 pixels have a risk value
    assert w[inside].mean() > 0.4, w[inside].mean()
    assert w[outside].mean() < 0.002, w[outside].mean()


def test_legend_and_controls_exist(page):
    legend = page.js("return document.querySelector('.georisk-legend').innerText")
    assert "Risk of forest loss" in legend and "probability of forest loss 2010–2015" in legend
    assert "Three synthetic territories" in legend or "Community zones" in legend
    assert page.js("return document.querySelector('.georisk-legend .georisk-bar').style.background").startswith(
        "linear-gradient")
    names = page.js("return [...document.querySelectorAll('.leaflet-control-layers label')].map(l => l.innerText.trim())")
    for name in ("No basemap (offline)", "OpenStreetMap", "Risk of forest loss", "Decision", "Expected cost",
                 "Observed loss 2010–2015", "Community zones", "Roads", "Rivers", "Towns"):
        assert name in names, (name, names)
    for selector in (".leaflet-control-scale", ".leaflet-control-mouseposition", ".leaflet-control-zoom-fullscreen",
                     ".leaflet-draw-draw-polygon", ".leaflet-draw-draw-rectangle", ".georisk-aoi a",
                     ".georisk-split-toggle", ".georisk-opacity"):
        assert page.js("return document.querySelectorAll(arguments[0]).length", selector) >= 1, selector


def test_toggling_layers_changes_the_picture(page, review_run):
    box = rc.layer_box(page)
    before = rc.screen(page)
    free = box.mask(before.shape) & ~rc.controls_mask(page, before.shape)
    rc.toggle_layer(page, "Risk of forest loss")
    page.wait("return !GeoRiskReview.app.map.hasLayer(GeoRiskReview.app.layers.risk)")
    off = rc.screen(page)
    keep(page, review_run.run_dir, "03-risk-off")
    assert rc.warm(before)[free].mean() > 0.4 and rc.warm(off)[free].mean() < 0.01
    assert "Risk of forest loss" not in page.js("return document.querySelector('.georisk-legend').innerText")

    rc.toggle_layer(page, "Decision")
    page.wait("return GeoRiskReview.app.map.hasLayer(GeoRiskReview.app.layers.decision)")
    time.sleep(0.3)
    on = rc.screen(page)
    keep(page, review_run.run_dir, "04-decision")
    with rasterio.open(RunPaths(review_run.run_dir).decision) as src:
        decision, colours = src.read(1), src.colormap(1)
    shown = {a for a in np.unique(decision) if a != 255}
    for action in shown:  # every action taken somewhere is drawn in its colour
        assert rc.near(on, rc.blend(colours[action], 0.75))[free].mean() > 0.002, action
    legend = page.js("return document.querySelector('.georisk-legend').innerText")
    assert "Decision" in legend and all(a in legend for a in review_run.decision.actions)
    rc.assert_clean(page)


def test_opacity_slider_sets_the_layer_opacity(page):
    page.js("""const s = document.querySelector('.georisk-section[data-layer=risk] .georisk-opacity');
        s.value = 30; s.dispatchEvent(new Event('input'));""")
    assert page.js("return GeoRiskReview.app.layers.risk.getElement().style.opacity") == "0.3"


def test_click_on_forest_pixels_shows_the_rasters_values(page, review_run):
    paths = RunPaths(review_run.run_dir)
    risk, decision, cost = (rc.read_band(p) for p in (paths.probability, paths.decision, paths.expected_cost))
    page.js("GeoRiskReview.app.map.setZoom(GeoRiskReview.app.map.getZoom() + 1)")  # ≈ 10 screen px per pixel
    time.sleep(0.5)
    for i, (row, col) in enumerate(rc.forest_pixels(paths.probability, 4)):
        lat, lon = rc.pixel_latlon(paths.probability, row, col)
        page.js("GeoRiskReview.app.map.panTo([arguments[0], arguments[1]], {animate: false})", lat, lon)
        rc.click_latlon(page, lat, lon)
        page.wait("return document.querySelector('.leaflet-popup-content table.georisk-inspect')")
        rows = rc.popup_rows(page)
        r, c = rc.pixel_of(rows)
        assert abs(r - row) <= 1 and abs(c - col) <= 1, ((r, c), (row, col))  # the pixel under the inspect cell
        assert rows["risk"][1] == f"{float(risk[r, c]):.4f}", (rows["risk"], risk[r, c])
        assert rows["action"][1] == review_run.decision.actions[decision[r, c]]
        assert rows["cost"][1] == f"{float(cost[r, c]):.2f}"
        assert rows["observed"][1] in ("forest kept", "forest lost")
        if i == 0:
            time.sleep(0.4)  # the popup fades in
            keep(page, review_run.run_dir, "05-inspect")
        page.js("GeoRiskReview.app.map.closePopup()")
    rc.assert_clean(page)


def test_click_in_a_zone_shows_its_audit(page, review_run):
    paths = RunPaths(review_run.run_dir)
    lat, lon = rc.pixel_latlon(paths.probability, 45, 20)  # West: columns 0–31
    rc.click_latlon(page, lat, lon)
    page.wait("return document.querySelector('.leaflet-popup-content .georisk-zone')")
    title = page.js("return document.querySelector('.georisk-zone .georisk-popup-title').textContent")
    assert title == "Zone: West"
    audit = {label: value for label, value in rc.popup_rows(page, "georisk-audit").values()}
    for label in ("Zone id", "Forest 2010 (ha)", "Observed loss 2010–2015", "Mean risk (model)", "Mean risk (map)",
                  "Flagged for patrol (ha)"):
        assert label in audit, (label, audit)
    assert audit["Zone id"] == "1"
    assert 0 <= float(audit["Mean risk (map)"].split()[0]) <= 1
    assert float(audit["Observed loss 2010–2015"].split()[0]) >= 0
    time.sleep(0.4)  # the popup fades in
    keep(page, review_run.run_dir, "06-zone-audit")


def test_click_off_forest_says_so(page, review_run):
    lat, lon = rc.pixel_latlon(RunPaths(review_run.run_dir).probability, 40, 3)  # farmland, c < 8
    rc.click_latlon(page, lat, lon)
    page.wait("return document.querySelector('.leaflet-popup-content .georisk-popup-title')")
    assert page.js("return document.querySelector('.georisk-popup-title').textContent") == "No forest pixel here"


def test_split_view_moves(page, review_run):
    from selenium.webdriver.common.action_chains import ActionChains

    page.js("document.querySelector('.georisk-split-toggle').click()")
    width = page.js("return GeoRiskReview.app.map.getSize().x")
    assert page.js("return GeoRiskReview.app.map.hasLayer(GeoRiskReview.app.layers.decision)")
    left = page.js("return parseFloat(document.querySelector('.georisk-divider').style.left)")
    assert abs(left - width / 2) <= 1
    clip = page.js("return GeoRiskReview.app.map.getPane('georisk-risk').style.clip")
    assert clip.startswith("rect(")
    box = rc.layer_box(page)
    img = rc.screen(page)
    keep(page, review_run.run_dir, "07-split")
    handle = page.driver.find_element("css selector", ".georisk-divider-handle")
    shift = -int((width / 2 - box.left) * 0.6)  # move the divider left, over the region
    ActionChains(page.driver).click_and_hold(handle).move_by_offset(shift // 2, 0).move_by_offset(
        shift - shift // 2, 0).release().perform()
    moved = page.js("return parseFloat(document.querySelector('.georisk-divider').style.left)")
    assert abs(moved - (width / 2 + shift)) <= 3, (moved, width / 2 + shift)
    assert page.js("return GeoRiskReview.app.map.getPane('georisk-risk').style.clip") != clip
    after = rc.screen(page)
    keep(page, review_run.run_dir, "08-split-moved")
    strip = rc.Box(int(moved) + 3, box.top, int(left) - 3, box.bottom).mask(img.shape) & ~rc.controls_mask(page, img.shape)
    # between the old and the new divider: the risk layer before, the decision layer after
    with rasterio.open(RunPaths(review_run.run_dir).decision) as src:
        decision, colours = src.read(1), src.colormap(1)
    taken = [rc.near(after, rc.blend(colours[a], 0.75)) for a in np.unique(decision) if a != 255]
    was = [rc.near(img, rc.blend(colours[a], 0.75)) for a in np.unique(decision) if a != 255]
    assert np.any(taken, axis=0)[strip].mean() > 0.5 and np.any(was, axis=0)[strip].mean() < 0.1
    page.js("document.querySelector('.georisk-split-toggle').click()")
    assert page.js("return GeoRiskReview.app.map.getPane('georisk-risk').style.clip") == ""
    rc.assert_clean(page)


def test_mouse_position_shows_coordinates(page):
    from selenium.webdriver.common.action_chains import ActionChains

    container = page.js("return GeoRiskReview.app.map.getContainer()")
    ActionChains(page.driver).move_to_element_with_offset(container, 10, 10).perform()
    text = page.js("return document.querySelector('.leaflet-control-mouseposition').textContent")
    lat, lon = (float(v) for v in text.replace("lat, lon:", "").split(","))
    center = page.js("const c = GeoRiskReview.app.map.getCenter(); return [c.lat, c.lng]")
    assert abs(lat - center[0]) < 0.05 and abs(lon - center[1]) < 0.05


def test_draw_an_area_of_interest_and_download_it(page, review_run):
    from selenium.webdriver.common.action_chains import ActionChains

    box = rc.layer_box(page)
    page.driver.find_element("css selector", ".leaflet-draw-draw-rectangle").click()
    container = page.js("return GeoRiskReview.app.map.getContainer()")
    size = container.size
    cx, cy = (box.left + box.right) / 2 - size["width"] / 2, (box.top + box.bottom) / 2 - size["height"] / 2
    ActionChains(page.driver).move_to_element_with_offset(container, int(cx - 60), int(cy - 40)).click_and_hold() \
        .move_by_offset(60, 40).move_by_offset(60, 40).release().perform()
    page.wait("return GeoRiskReview.app.drawn.getLayers().length === 1")
    assert page.js("return document.querySelector('.leaflet-popup')") is None  # drawing opens no inspect popup
    downloads = page.download_dir
    for f in downloads.glob("*"):
        f.unlink()
    page.driver.find_element("css selector", ".georisk-aoi a").click()
    deadline = time.time() + 10
    while time.time() < deadline and not list(downloads.glob("aoi*.geojson")):
        time.sleep(0.2)
    (path,) = downloads.glob("aoi*.geojson")
    fc = json.loads(path.read_text())
    (feature,) = fc["features"]
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"][0]) == 5
    assert feature["properties"]["name"] == "AOI 1" and feature["properties"]["area_ha"] > 0
    lons, lats = zip(*feature["geometry"]["coordinates"][0])
    (s, w), (n, e) = page.js("const b = GeoRiskReview.app.layers.risk.getBounds(); "
                             "return [[b.getSouth(), b.getWest()], [b.getNorth(), b.getEast()]]")
    assert s < min(lats) < max(lats) < n and w < min(lons) < max(lons) < e
    keep(page, review_run.run_dir, "09-aoi")
    rc.assert_clean(page)


def test_a_basemap_picked_offline_stays_empty_and_breaks_nothing(page, review_run):
    rc.toggle_layer(page, "OpenStreetMap")
    time.sleep(1.0)
    img = rc.screen(page)
    keep(page, review_run.run_dir, "10-basemap-offline")
    box = rc.layer_box(page)
    free = box.mask(img.shape) & ~rc.controls_mask(page, img.shape)
    assert rc.warm(img)[free].mean() > 0.4  # the risk layer is still drawn
    rc.assert_clean(page, allow_blocked_tiles=True)
    assert page.js("return GeoRiskReview.app.map.getZoom()") is not None
    rc.toggle_layer(page, "No basemap (offline)")


def test_fullscreen_button(page):
    button = page.driver.find_element("css selector", ".leaflet-control-zoom-fullscreen")
    button.click()
    page.wait("return GeoRiskReview.app.map._isFullscreen === true", timeout=5)
    assert "leaflet-fullscreen-on" in button.get_attribute("class")
    # the legend and the split control live inside the map's container, so they stay in full screen
    assert page.js("const c = GeoRiskReview.app.map.getContainer(); "
                   "return c.contains(document.querySelector('.georisk-legend')) "
                   "&& c.contains(document.querySelector('.georisk-split-control'))")
    button.click()
    page.wait("return GeoRiskReview.app.map._isFullscreen === false", timeout=5)
    rc.assert_clean(page)


# ---------------------------------------------------------------- hostile attributes


@pytest.fixture(scope="module")
def hostile_map(review_run, tmp_path_factory):
    """The synthetic run's map with hostile zone, town, layer, action and run names, title, note and
    attribution, and a compare run whose folder name is hostile too."""
    from geo_risk.review import CompareRun, write_review_map

    paths = RunPaths(review_run.run_dir)
    d = tmp_path_factory.mktemp("hostile")
    zones = gpd.read_file(paths.zones)
    zones["name"] = [EVIL_IMG, EVIL_SCRIPT, "Est & <b>bold</b> \u2028 </script>"]
    zones.to_file(d / "zones.gpkg")
    towns = gpd.read_file(review_run.data_dir / "towns.geojson")
    towns["name"] = [EVIL_IMG, EVIL_SCRIPT, "&amp; <i>x</i>"]
    towns.to_file(d / "towns.geojson")
    other = d / EVIL_IMG
    other.mkdir()
    shutil.copy(paths.probability, other / "risk.tif")
    out = write_review_map(
        d / "map.html", paths.probability, paths.decision, d / "zones.gpkg",
        action_names=["none", EVIL_IMG], title=f"Review {EVIL_IMG}", zone_note=EVIL_SCRIPT,
        attribution=EVIL_IMG, vectors={EVIL_IMG: d / "towns.geojson"}, period="2010–2015",
        zone_stats={1: {EVIL_IMG: EVIL_SCRIPT}}, compare=CompareRun(EVIL_IMG, other / "risk.tif"))
    return out


def test_hostile_names_stay_text(browser, hostile_map):
    from selenium.webdriver.common.action_chains import ActionChains

    text = hostile_map.read_text(encoding="utf-8")
    assert EVIL_IMG not in text and EVIL_SCRIPT not in text  # never raw in the page
    browser.open(hostile_map)
    title = f"Review {EVIL_IMG}"
    assert browser.js("return document.title") == title
    app = "GeoRiskReview.app"
    zones = browser.js(f"const z = []; {app}.layers.zones.eachLayer(l => z.push(l.getBounds().getCenter())); "
                       "return z.map(c => [c.lat, c.lng]);")
    seen = []
    for lat, lon in zones:  # hover (tooltip) and click (popup) every zone
        container = browser.js(f"return {app}.map.getContainer()")
        x, y = browser.js(f"const p = {app}.map.latLngToContainerPoint([arguments[0], arguments[1]]); return [p.x, p.y]",
                          lat, lon)
        ActionChains(browser.driver).move_to_element_with_offset(
            container, int(x - container.size["width"] / 2), int(y - container.size["height"] / 2)).perform()
        rc.click_latlon(browser, lat, lon)
        browser.wait("return document.querySelector('.georisk-zone .georisk-popup-title')")
        seen.append(browser.js("return document.querySelector('.georisk-zone .georisk-popup-title').textContent"))
        seen.append(browser.js("return document.querySelector('.leaflet-tooltip') ? "
                               "document.querySelector('.leaflet-tooltip').textContent : ''"))
    assert f"Zone: {EVIL_IMG}" in seen and f"Zone: {EVIL_SCRIPT}" in seen
    assert EVIL_IMG in seen  # a tooltip, as text
    popup = browser.js("return document.querySelector('.leaflet-popup-content').innerText")
    assert "Zone id" in popup
    rc.toggle_layer(browser, EVIL_IMG)  # the towns layer, named hostile
    browser.js("document.querySelector('.georisk-split-toggle').click()")
    browser.wait("return document.querySelector('.georisk-split-label-right')")
    assert browser.js("return document.querySelector('.georisk-split-label-right').textContent") == \
        f"{'Risk of forest loss'} — {EVIL_IMG} ▶"
    legend = browser.js("return document.querySelector('.georisk-legend').innerText")
    assert EVIL_SCRIPT in legend and EVIL_IMG in legend  # note and attribution, as text
    controls = browser.js("return document.querySelector('.leaflet-control-layers').innerText")
    assert EVIL_IMG in controls
    time.sleep(0.4)
    keep(browser, hostile_map.parent, "11-hostile")
    assert browser.js("return document.title") == title  # nothing ran
    assert browser.js("return [...document.images].filter(i => i.getAttribute('src') === 'x').length") == 0
    assert browser.js("return document.querySelectorAll('.leaflet-container script, .leaflet-container b, "
                      ".leaflet-container i').length") == 0
    rc.assert_clean(browser)


def test_split_view_compares_two_runs(browser, review_run, tmp_path_factory):
    """map.compare_run: another run's risk beside this one's; the popup shows both, each from its file."""
    from geo_risk.pipeline import run_map
    from tests.conftest import synthetic_config

    paths = RunPaths(review_run.run_dir)
    other = tmp_path_factory.mktemp("other-run") / "run-b"
    other.mkdir()
    with rasterio.open(paths.probability) as src:
        profile, risk = src.profile, src.read(1)
    with rasterio.open(other / "risk.tif", "w", **profile) as dst:
        dst.write(np.sqrt(risk), 1)  # a different map: higher risk everywhere
    here = tmp_path_factory.mktemp("compare") / "run"
    shutil.copytree(review_run.run_dir, here, ignore=shutil.ignore_patterns("screenshots"))
    cfg = synthetic_config(review_run.data_dir / "region.yaml", here, map={"compare_run": str(other)})
    out = run_map(cfg)
    browser.open(out)
    assert browser.js("return GeoRiskReview.app.split.right") == "compare_risk"
    browser.js("document.querySelector('.georisk-split-toggle').click()")
    keep(browser, here, "12-compare-runs")
    row, col = rc.forest_pixels(paths.probability, 1, seed=3)[0]
    lat, lon = rc.pixel_latlon(paths.probability, row, col)
    rc.click_latlon(browser, lat, lon)
    browser.wait("return document.querySelector('.leaflet-popup-content table.georisk-inspect')")
    rows = rc.popup_rows(browser)
    r, c = rc.pixel_of(rows)
    assert rows["risk"][1] == f"{float(risk[r, c]):.4f}"
    assert rows["compare_risk"][1] == f"{float(np.sqrt(risk[r, c])):.4f}" and "run-b" in rows["compare_risk"][0]
    rc.assert_clean(browser)
