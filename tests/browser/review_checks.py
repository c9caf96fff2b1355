"""What the browser tests look at on a review map: screen geometry, colours, popups, the split view.

Shared by the synthetic-run tests (tests/browser/test_review_browser.py) and the demo-run test.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from matplotlib.image import imread
from rasterio.warp import transform as warp_points

from tests.browser.chrome import Browser

BACKGROUND = (238, 240, 236)  # .leaflet-container background of the review map


def screen(browser: Browser) -> np.ndarray:
    """The page as an (h, w, 3) uint8 array."""
    png = browser.driver.get_screenshot_as_png()
    return (imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(np.uint8)


def warm(img: np.ndarray) -> np.ndarray:
    """Pixels in the YlOrRd colours of the risk layer (pale yellow to dark red), at any opacity ≥ 0.5
    over the map's background; the background, greys, blues, purples and cyan are not."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r - b > 35) & (r + 8 >= g) & (r > 110)


def near(img: np.ndarray, colour, tol: int = 12) -> np.ndarray:
    return (np.abs(img.astype(int) - np.asarray(colour)[:3]).max(axis=-1) <= tol)


def blend(colour, opacity: float, under=BACKGROUND) -> tuple[int, int, int]:
    return tuple(int(round(opacity * c + (1 - opacity) * u)) for c, u in zip(colour[:3], under))


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    def mask(self, shape) -> np.ndarray:
        m = np.zeros(shape[:2], dtype=bool)
        m[max(self.top, 0):max(self.bottom, 0), max(self.left, 0):max(self.right, 0)] = True
        return m


def controls_mask(browser: Browser, shape) -> np.ndarray:
    """Screen pixels under any Leaflet control (legend, layer control, buttons, scale…)."""
    rects = browser.js("""return [...document.querySelectorAll('.leaflet-control')].map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });""")
    m = np.zeros(shape[:2], dtype=bool)
    for l, t, r, b in rects:
        m |= Box(int(l) - 2, int(t) - 2, int(np.ceil(r)) + 2, int(np.ceil(b)) + 2).mask(shape)
    return m


def layer_box(browser: Browser, key: str = "risk") -> Box:
    """Where raster layer ``key`` lies on screen (container = viewport here)."""
    l, t, r, b = browser.js("""const a = GeoRiskReview.app, bb = a.layers[arguments[0]].getBounds();
        const nw = a.map.latLngToContainerPoint(bb.getNorthWest()), se = a.map.latLngToContainerPoint(bb.getSouthEast());
        const o = a.map.getContainer().getBoundingClientRect();
        return [nw.x + o.left, nw.y + o.top, se.x + o.left, se.y + o.top];""", key)
    return Box(int(round(l)), int(round(t)), int(round(r)), int(round(b)))


def pixel_latlon(path: Path, row: int, col: int) -> tuple[float, float]:
    """Latitude and longitude of the centre of pixel (row, col) of a raster."""
    with rasterio.open(path) as src:
        x, y = src.transform * (col + 0.5, row + 0.5)
        lon, lat = warp_points(src.crs, "EPSG:4326", [x], [y])
    return lat[0], lon[0]


def click_latlon(browser: Browser, lat: float, lon: float) -> None:
    """A real mouse click where (lat, lon) is on screen."""
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = browser.js("""const p = GeoRiskReview.app.map.latLngToContainerPoint([arguments[0], arguments[1]]);
        return [p.x, p.y];""", lat, lon)
    container = browser.js("return GeoRiskReview.app.map.getContainer();")
    size = container.size
    ActionChains(browser.driver).move_to_element_with_offset(
        container, int(round(x - size["width"] / 2)), int(round(y - size["height"] / 2))).click().perform()


def popup_rows(browser: Browser, table: str = "georisk-inspect") -> dict[str, tuple[str, str]]:
    """{data-key: (label, value)} of a table of the open popup, as the reader sees the text."""
    rows = browser.js("""return [...document.querySelectorAll('.leaflet-popup-content table.' + arguments[0] + ' tr')]
        .map(tr => [tr.getAttribute('data-key'), tr.children[0].textContent, tr.children[1].textContent]);""", table)
    return {k: (label, value) for k, label, value in rows}


def pixel_of(rows: dict) -> tuple[int, int]:
    m = re.fullmatch(r"row (\d+), column (\d+)", rows["pixel"][1])
    assert m, rows["pixel"]
    return int(m.group(1)), int(m.group(2))


def toggle_layer(browser: Browser, name: str) -> None:
    """Click the layer control's checkbox (or radio) of the layer called ``name``."""
    from selenium.webdriver.common.by import By

    for label in browser.driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers label"):
        if label.text.strip() == name:
            label.find_element(By.TAG_NAME, "input").click()
            return
    raise AssertionError(f"no layer called {name!r} in the layer control")


def forest_pixels(risk_path: Path, n: int, margin: int = 3, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` pixels with a risk value whose whole (2·margin+1)² neighbourhood has one too."""
    from scipy.ndimage import binary_erosion

    with rasterio.open(risk_path) as src:
        ok = np.isfinite(src.read(1))
    core = binary_erosion(ok, iterations=margin)
    rows, cols = np.nonzero(core)
    pick = np.random.default_rng(seed).choice(rows.size, size=min(n, rows.size), replace=False)
    return [(int(rows[i]), int(cols[i])) for i in pick]


def read_band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def assert_clean(browser: Browser, allow_blocked_tiles: bool = False) -> None:
    """No console error, and no request other than the page itself, data: and blob: URLs."""
    console, urls = browser.logs()
    errors = [e for e in console if e["level"] == "SEVERE"]
    if allow_blocked_tiles:  # a basemap picked offline: its tile requests fail, nothing else may
        errors = [e for e in errors if "ERR_BLOCKED_BY_CLIENT" not in e["message"]
                  and "ERR_NAME_NOT_RESOLVED" not in e["message"] and "ERR_INTERNET_DISCONNECTED" not in e["message"]]
        urls = [u for u in urls if not re.match(r"https://(tile\.openstreetmap\.org|server\.arcgisonline\.com)/", u)]
    assert errors == [], errors
    outside = [u[:120] for u in urls if not u.startswith(("data:", "blob:")) and not u.endswith("/map.html")
               and not u.endswith(".html")]
    assert outside == [], outside
