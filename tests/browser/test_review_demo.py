"""The review map of a real demo run in the browser: set GEO_RISK_REVIEW_RUN to a run folder of the
Guadeloupe demo (a copy: the map is rewritten there) to run it, e.g.

    GEO_RISK_REVIEW_RUN=/work/exp/review-demo pytest tests/browser/test_review_demo.py

It writes ``map.html`` with the demo config (``output_dir`` = that folder), then checks in headless
Chromium what the synthetic-run tests check, on 898,966 forest pixels; screenshots in
``<run>/screenshots/demo-*.png``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from geo_risk.paths import RunPaths
from tests.browser import review_checks as rc
from tests.browser.conftest import keep

RUN = os.environ.get("GEO_RISK_REVIEW_RUN")

pytestmark = pytest.mark.skipif(not RUN, reason="set GEO_RISK_REVIEW_RUN to a copy of a demo run folder to run it")


@pytest.fixture(scope="module")
def demo_map(demo_config):
    from geo_risk.config import load_config
    from geo_risk.pipeline import run_map

    cfg = load_config(demo_config, {"output_dir": str(Path(RUN).resolve())})
    t0 = time.perf_counter()
    out = run_map(cfg)
    print(f"map.html: {out.stat().st_size / 1e6:.2f} MB in {time.perf_counter() - t0:.1f} s")
    return cfg, out


def test_demo_map_in_the_browser(browser, demo_map):
    cfg, out = demo_map
    paths = RunPaths(cfg.run_dir)
    browser.open(out)
    rc.assert_clean(browser)
    img = rc.screen(browser)
    keep(browser, paths.root, "demo-01-loaded")
    free = ~rc.controls_mask(browser, img.shape)
    box = rc.layer_box(browser).mask(img.shape)
    warm = rc.warm(img)
    # forest is ≈ 30 % of the island's bounding box on screen; risk colours stay inside it
    assert warm[box & free].mean() > 0.05 and warm[~box & free].mean() < 0.002, (warm[box & free].mean(),
                                                                                  warm[~box & free].mean())

    ins = browser.js("return GeoRiskReview.app.data.inspect")
    risk, decision, cost = (rc.read_band(p) for p in (paths.probability, paths.decision, paths.expected_cost))
    with __import__("rasterio").open(paths.probability) as src:
        pixel_m = abs(src.transform.a)
    tol = math.ceil(max(ins["dx"], ins["dy"]) / pixel_m * 1.1 / 2) + 1
    for i, (row, col) in enumerate(rc.forest_pixels(paths.probability, 5, margin=tol + 2, seed=1)):
        lat, lon = rc.pixel_latlon(paths.probability, row, col)
        browser.js("GeoRiskReview.app.map.setView([arguments[0], arguments[1]], 13, {animate: false})", lat, lon)
        rc.click_latlon(browser, lat, lon)
        browser.wait("return document.querySelector('.leaflet-popup-content table.georisk-inspect')")
        rows = rc.popup_rows(browser)
        r, c = rc.pixel_of(rows)
        assert abs(r - row) <= tol and abs(c - col) <= tol, ((r, c), (row, col), tol)
        assert rows["risk"][1] == f"{float(risk[r, c]):.4f}"
        assert rows["action"][1] == cfg.decision.actions[decision[r, c]]
        assert rows["cost"][1] == f"{float(cost[r, c]):.2f}"
        if i == 0:
            time.sleep(0.4)
            keep(browser, paths.root, "demo-02-inspect")
        browser.js("GeoRiskReview.app.map.closePopup()")

    browser.js("GeoRiskReview.app.map.fitBounds(GeoRiskReview.app.layers.risk.getBounds(), {animate: false})")
    browser.js("document.querySelector('.georisk-split-toggle').click()")
    width = browser.js("return GeoRiskReview.app.map.getSize().x")
    keep(browser, paths.root, "demo-03-split")
    from selenium.webdriver.common.action_chains import ActionChains

    handle = browser.driver.find_element("css selector", ".georisk-divider-handle")
    ActionChains(browser.driver).click_and_hold(handle).move_by_offset(-120, 0).release().perform()
    moved = browser.js("return parseFloat(document.querySelector('.georisk-divider').style.left)")
    assert abs(moved - (width / 2 - 120)) <= 3
    keep(browser, paths.root, "demo-04-split-moved")
    rc.assert_clean(browser)
    assert np.isfinite(risk).sum() > 800_000
