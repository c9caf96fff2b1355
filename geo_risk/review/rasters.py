"""Rasters of the review map: read and checked, warped to Web Mercator at a bounded size, coloured
into PNG data URLs with their legends, and sampled cell by cell for click-to-inspect."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from rasterio.warp import calculate_default_transform, reproject, transform as warp_points

from geo_risk.export import DECISION_NODATA, true_values
from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError

WEB_MERCATOR = CRS.from_epsg(3857)


@dataclass(frozen=True)
class GridArray:
    """Band 1 of a raster (or any 2-D array on a georeferenced grid), read into memory."""

    array: np.ndarray
    crs: CRS
    transform: Affine
    nodata: float | int | None = None
    description: str = ""
    colormap: dict[int, tuple[int, ...]] = field(default_factory=dict)
    source: str = ""  # a path or a name, for messages

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape

    def valid(self) -> np.ndarray:
        """Pixels holding a value: finite and not nodata."""
        a = self.array
        ok = np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
        if self.nodata is not None and not (isinstance(self.nodata, float) and np.isnan(self.nodata)):
            ok &= a != self.nodata
        return ok


def read_raster(path: Path, role: str) -> GridArray:
    """Band 1 of the GeoTIFF ``path``; errors name the file, the ``role`` (e.g. "risk") and the fix."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{role} raster {path} does not exist: run the step that writes it, or fix the path")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputDataError(f"{role} raster {path} cannot be read ({exc}): pass a GeoTIFF") from exc
    with src:
        if src.crs is None:
            raise CRSMissingError(
                f"{role} raster {path} has no CRS: set one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`")
        try:
            colormap = src.colormap(1)
        except ValueError:
            colormap = {}
        if src.scales[0] != 1.0 or src.offsets[0] != 0.0:  # scaled integers (uint16 risk.tif): true values
            return GridArray(true_values(src), src.crs, src.transform, float("nan"), src.descriptions[0] or "",
                             colormap, str(path))
        return GridArray(src.read(1), src.crs, src.transform, src.nodata, src.descriptions[0] or "",
                         colormap, str(path))


# ---------------------------------------------------------------- Web Mercator grids


@dataclass(frozen=True)
class MercatorGrid:
    """A north-up EPSG:3857 grid: ``width`` × ``height`` cells of ``dx`` × ``dy`` m from (left, top)."""

    left: float
    top: float
    dx: float
    dy: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.dx, 0, self.left, 0, -self.dy, self.top)

    def latlon_bounds(self) -> list[list[float]]:
        """``[[south, west], [north, east]]``, as Leaflet wants them."""
        right, bottom = self.left + self.width * self.dx, self.top - self.height * self.dy
        lons, lats = warp_points(WEB_MERCATOR, "EPSG:4326", [self.left, right], [bottom, self.top])
        return [[lats[0], lons[0]], [lats[1], lons[1]]]


def mercator_grid(grid: GridArray, max_size_px: int) -> MercatorGrid:
    """The EPSG:3857 grid covering ``grid`` at about its own resolution, longest side ≤ ``max_size_px``."""
    h, w = grid.shape
    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (w, h)
    transform, width, height = calculate_default_transform(
        grid.crs, WEB_MERCATOR, w, h, left=min(left, right), bottom=min(top, bottom),
        right=max(left, right), top=max(top, bottom))
    dx, dy = transform.a, -transform.e
    scale = max(width, height) / max_size_px
    if scale > 1:  # same extent, coarser cells
        new_w, new_h = min(max_size_px, max(1, round(width / scale))), min(max_size_px, max(1, round(height / scale)))
        dx, dy = dx * width / new_w, dy * height / new_h
        width, height = new_w, new_h
    return MercatorGrid(transform.c, transform.f, dx, dy, int(width), int(height))


def warp(grid: GridArray, to: MercatorGrid, resampling: Resampling, dtype, dst_nodata) -> np.ndarray:
    """``grid`` resampled onto the Web Mercator grid ``to``."""
    out = np.full((to.height, to.width), dst_nodata, dtype=dtype)
    src_nodata = grid.nodata
    if src_nodata is None and np.issubdtype(grid.array.dtype, np.floating):
        src_nodata = np.nan
    reproject(grid.array, out, src_transform=grid.transform, src_crs=grid.crs, src_nodata=src_nodata,
              dst_transform=to.transform, dst_crs=WEB_MERCATOR, dst_nodata=dst_nodata, resampling=resampling)
    return out


# ---------------------------------------------------------------- colours, images and legends


def png_url(indices: np.ndarray, palette: np.ndarray) -> str:
    """PNG data URL of a palette image: ``indices`` (uint8) into ``palette`` (≤ 256 RGBA rows).

    A palette PNG holds one byte per pixel instead of four and compresses about twice as well."""
    img = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), mode="P")
    pal = np.zeros((256, 4), dtype=np.uint8)
    pal[: len(palette)] = palette
    img.putpalette(pal[:, :3].ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="png", optimize=True, transparency=pal[:, 3].tobytes())
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def rgba_css(c) -> str:
    r, g, b, a = (list(c) + [255])[:4]
    return f"rgba({r},{g},{b},{a / 255:.2f})"


def nice_max(values: np.ndarray, floor: float = 0.0) -> float:
    """Top of a colour bar: the 99.5th percentile rounded up to two significant digits (≥ ``floor``).

    A few extreme pixels would otherwise squeeze everything else into one colour."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    q = float(np.quantile(values, 0.995))
    if q <= 0:
        return max(floor, float(values.max()) or 1.0)
    step = 10 ** (np.floor(np.log10(q)) - 1)
    return max(floor, float(np.ceil(q / step) * step))


def risk_scale_max(values: np.ndarray) -> float:
    """Top of the risk colour bar: the 99.5th percentile rounded up to 0.05 (at least 0.05, at most 1).

    Deforestation is rare, so calibrated probabilities mostly sit far below 1; a 0–1 bar would
    paint nearly everything the same pale colour.
    """
    if values.size == 0:
        return 1.0
    return float(min(1.0, max(0.05, np.ceil(np.quantile(values, 0.995) * 20) / 20)))


def _tick(x: float) -> str:
    return f"{x:.3g}"


LEVELS = 255  # colours of a continuous layer; palette index 255 is transparent


def continuous_image(values: np.ndarray, cmap: str, top: float) -> str:
    """PNG data URL of ``values`` (NaN transparent) coloured by ``cmap`` over [0, top] in 255 steps."""
    idx = np.round(np.clip(np.nan_to_num(values) / top, 0, 1) * (LEVELS - 1)).astype(np.uint8)
    idx[~np.isfinite(values)] = LEVELS
    palette = matplotlib.colormaps[cmap](np.linspace(0, 1, LEVELS), bytes=True)
    return png_url(idx, np.vstack([palette, [0, 0, 0, 0]]))


def continuous_legend(cmap: str, top: float, subtitle: str) -> dict:
    c = matplotlib.colormaps[cmap]
    return {"kind": "continuous", "subtitle": subtitle,
            "stops": [rgba_css(c(x, bytes=True)) for x in np.linspace(0, 1, 11)],
            "ticks": ["0", _tick(top / 2), f"≥ {_tick(top)}" if top < 1 or top != int(top) else _tick(top)]}


def categorical_image(codes: np.ndarray, colours: Sequence[Sequence[int]]) -> str:
    """PNG data URL of integer ``codes``: code i in ``colours[i]``, anything else transparent."""
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[: len(colours)] = [tuple((list(c) + [255])[:4]) for c in colours]
    return png_url(codes.astype(np.uint8), palette)


def categorical_legend(names: Sequence[str], colours: Sequence[Sequence[int]], subtitle: str = "") -> dict:
    return {"kind": "categorical", "subtitle": subtitle,
            "items": [{"label": str(n), "color": rgba_css(c)} for n, c in zip(names, colours)]}


def check_probabilities(grid: GridArray, role: str = "risk") -> None:
    v = grid.array[grid.valid()]
    if v.size and (v.min() < -1e-6 or v.max() > 1 + 1e-6):
        raise InputDataError(
            f"{role} raster {grid.source} has values in [{v.min():g}, {v.max():g}], not probabilities in "
            "[0, 1]: rescale it, or set its nodata value if that is the outlier")


def check_actions(grid: GridArray, action_names: Sequence[str]) -> None:
    """Every decision value must name an action or be nodata."""
    a = grid.array
    if not np.issubdtype(a.dtype, np.integer):
        raise InputDataError(f"decision raster {grid.source} is {a.dtype}: write integer action indices")
    n, skip = len(action_names), [v for v in (DECISION_NODATA, grid.nodata) if v is not None]
    bad = a[((a < 0) | (a >= n)) & ~np.isin(a, skip)]
    if bad.size:
        raise InputDataError(
            f"decision raster {grid.source} holds value {int(bad.max())} but only {n} action names "
            f"{list(action_names)} were given: pass one name per action index, "
            f"or mark pixels without a decision with nodata {DECISION_NODATA}")


def action_colours(grid: GridArray, n: int) -> list[tuple[int, ...]]:
    """Colours of actions 0..n-1 from the GDAL colour table, or tab10 when it has none."""
    tab10 = matplotlib.colormaps["tab10"]
    return [tuple(grid.colormap[i]) if i in grid.colormap
            else tuple(int(255 * c) for c in tab10(i % 10)) for i in range(n)]


# ---------------------------------------------------------------- click-to-inspect


def cell_pixels(cells: MercatorGrid, grid: GridArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every cell of ``cells`` (row-major), the (row, col) of the ``grid`` pixel under the cell's
    centre, and whether that pixel is inside ``grid``."""
    jj, ii = np.meshgrid(np.arange(cells.width), np.arange(cells.height))
    x = cells.left + (jj.ravel() + 0.5) * cells.dx
    y = cells.top - (ii.ravel() + 0.5) * cells.dy
    to_grid = Transformer.from_crs(WEB_MERCATOR.to_wkt(), grid.crs.to_wkt(), always_xy=True)
    gx, gy = to_grid.transform(x, y)
    fc, fr = ~grid.transform @ (np.asarray(gx), np.asarray(gy))
    cols, rows = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
    h, w = grid.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & np.isfinite(fc) & np.isfinite(fr)
    return np.where(inside, rows, 0), np.where(inside, cols, 0), inside


def b64(a: np.ndarray) -> str:
    """Little-endian bytes of ``a``, base64 (what JavaScript's typed arrays read on every usual CPU)."""
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")


@dataclass(frozen=True)
class InspectValue:
    """One value shown by click-to-inspect: a float (NaN: none) or a category (255: none) per pixel."""

    key: str
    label: str
    grid: GridArray
    digits: int = 4  # decimals shown (floats)
    names: Sequence[str] | None = None  # category names (categories); None for floats
    unit: str = ""


def inspect_data(cells: MercatorGrid, values: Sequence[InspectValue], pixel_of: GridArray,
                 pixel_label: str) -> dict:
    """The click-to-inspect table: for each cell whose centre falls on a pixel with any value, the
    exact values of that one pixel of each raster (nearest pixel — no interpolation, so every number
    shown is a number of the file), and its row/column in ``pixel_of``."""
    sampled, any_value = [], np.zeros(cells.width * cells.height, dtype=bool)
    where: dict[tuple, tuple] = {}
    for v in values:
        key = (v.grid.crs.to_wkt(), tuple(v.grid.transform), v.grid.shape)
        if key not in where:
            where[key] = cell_pixels(cells, v.grid)
        rows, cols, inside = where[key]
        ok = inside & v.grid.valid()[rows, cols]
        any_value |= ok
        sampled.append((v, v.grid.array[rows, cols], ok))
    kept = np.flatnonzero(any_value)
    layers = []
    for v, a, ok in sampled:
        a, ok = a[kept], ok[kept]
        if v.names is None:
            data = np.where(ok, a, np.nan).astype(np.float32)
            layers.append({"key": v.key, "label": v.label, "type": "float", "dtype": "f32", "digits": v.digits,
                           "unit": v.unit, "data": b64(data)})
        else:
            data = np.where(ok, a, 255).astype(np.uint8)
            layers.append({"key": v.key, "label": v.label, "type": "category", "dtype": "u8",
                           "names": [str(n) for n in v.names], "data": b64(data)})
    rows, cols, inside = cell_pixels(cells, pixel_of)
    h, w = pixel_of.shape
    flat = np.where(inside, rows * w + cols, np.iinfo(np.uint32).max).astype(np.uint32)[kept]
    layers.append({"key": "pixel", "label": pixel_label, "type": "pixel", "dtype": "u32", "width": int(w),
                   "data": b64(flat)})
    return {"left": cells.left, "top": cells.top, "dx": cells.dx, "dy": cells.dy, "width": cells.width,
            "height": cells.height, "count": int(kept.size),
            "mask": b64(np.packbits(any_value, bitorder="little")), "layers": layers}


def table_bytes(table: dict) -> int:
    return len(table["mask"]) + sum(len(lyr["data"]) for lyr in table["layers"])


def inspect_table(grid: GridArray, values: Sequence[InspectValue], pixel_label: str, max_px: int,
                  max_bytes: float) -> dict:
    """:func:`inspect_data` on the finest Web Mercator grid over ``grid`` whose long side is at most
    ``max_px`` and whose table takes at most ``max_bytes``: where forest is dense the cells get
    coarser, so the page stays bounded whatever the region holds."""
    size = max_px
    for _ in range(4):
        table = inspect_data(mercator_grid(grid, size), values, grid, pixel_label)
        used = table_bytes(table)
        if used <= max_bytes or size <= 16:
            return table
        size = max(16, int(size * np.sqrt(max_bytes / used) * 0.97))
    return table
