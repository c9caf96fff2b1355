"""The reference grid and lazy resampling of rasters onto it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from geo_risk_errors import CRSMissingError, InputDataError, MissingInputError, NoOverlapError
from tiles.errors import BandNotFoundError, ResamplingError, UnreadableRasterError

CHUNK_PX = 1024


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and shape (rasterio conventions)."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def resolution_m(self) -> float:
        return abs(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return left, bottom, right, top

    @property
    def pixel_area_ha(self) -> float:
        return abs(self.transform.a * self.transform.e) / 10_000.0

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates, as rioxarray names them."""
        x = self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a
        y = self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e
        return {"y": y, "x": x}


def gdal_reason(e: BaseException) -> str:
    """The first line of the innermost cause of a rasterio error (GDAL's own words), shortened."""
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def open_checked(path: Path, layer: str) -> rasterio.DatasetReader:
    """Open a raster, raising a clear error when it is missing, unreadable or has no CRS."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"layer '{layer}': file {path} not found — fix the path in the config")
    try:
        src = rasterio.open(path)
    except rasterio.RasterioIOError as e:
        raise UnreadableRasterError(
            f"layer '{layer}': {path} is not a readable raster ({gdal_reason(e)}) — give a GeoTIFF "
            "(or another format GDAL reads); if it is one, it is corrupt: copy or download it again") from None
    try:  # a truncated file often opens (its header is whole): read its last block, stored last
        src.read(1, window=rasterio.windows.Window(src.width - 1, src.height - 1, 1, 1))
    except rasterio.RasterioIOError as e:
        src.close()
        raise UnreadableRasterError(
            f"layer '{layer}': {path} cannot be read ({gdal_reason(e)}) — the file is corrupt or "
            "truncated; copy or download it again") from None
    if src.crs is None:
        src.close()
        raise CRSMissingError(
            f"layer '{layer}': {path} has no CRS — assign one, e.g. "
            f"`gdal_edit.py -a_srs EPSG:XXXX {path}`"
        )
    return src


def grid_from_raster(path: Path, layer: str = "grid.reference") -> Grid:
    """The grid of a reference raster (projected, north-up)."""
    with open_checked(path, layer) as src:
        if src.transform.b != 0 or src.transform.d != 0:
            raise InputDataError(f"layer '{layer}': {path} is rotated; warp it north-up with gdalwarp first")
        grid = Grid(src.crs, src.transform, src.width, src.height)
    check_projected(grid.crs, f"layer '{layer}': {path} is")
    return grid


def check_projected(crs: CRS, what: str) -> None:
    """Distances are in metres: refuse a grid in a geographic CRS (degrees), naming the fix."""
    if crs.is_geographic:
        raise InputDataError(
            f"{what} in a geographic CRS ({crs.to_string()}, degrees); distances need metres — describe the "
            "grid instead with `grid: {crs: <a projected CRS, e.g. the UTM zone's EPSG:326NN>, resolution_m: 30, "
            "bounds: [xmin, ymin, xmax, ymax]}` (or `aoi:` a polygon layer instead of bounds)"
        )


def aligned_grid(crs: CRS | str, resolution_m: float, bounds: tuple[float, float, float, float],
                 what: str = "grid") -> Grid:
    """The grid of ``resolution_m`` pixels covering ``bounds`` (in ``crs``), its edges on multiples of
    the resolution (as ``gdalwarp -tap`` aligns them)."""
    crs = CRS.from_user_input(crs)
    check_projected(crs, f"{what}: the CRS {crs.to_string()} is")
    left, bottom, right, top = bounds
    if not (right > left and top > bottom):
        raise InputDataError(f"{what}: bounds {bounds} are empty — give [xmin, ymin, xmax, ymax] in {crs.to_string()}")
    res = float(resolution_m)
    left, bottom = np.floor(left / res) * res, np.floor(bottom / res) * res
    right, top = np.ceil(right / res) * res, np.ceil(top / res) * res
    width, height = int(round((right - left) / res)), int(round((top - bottom) / res))
    return Grid(crs, Affine(res, 0.0, float(left), 0.0, -res, float(top)), width, height)


def check_overlap(layer_bounds: tuple, layer_crs: CRS, grid: Grid, layer: str, path: Path) -> None:
    """Raise NoOverlapError when a layer's footprint misses the grid."""
    left, bottom, right, top = transform_bounds(layer_crs, grid.crs, *layer_bounds, densify_pts=21)
    gl, gb, gr, gt = grid.bounds
    if left >= gr or right <= gl or bottom >= gt or top <= gb:
        raise NoOverlapError(
            f"layer '{layer}': {path} (bounds {tuple(round(v) for v in (left, bottom, right, top))} in "
            f"{grid.crs}) does not overlap the reference grid {tuple(round(v) for v in grid.bounds)} — "
            "check its CRS and that it covers the region"
        )


def pick_band(src: rasterio.DatasetReader, band: int | None, layer: str, path: Path) -> int:
    """The band to read: ``band`` (1-based) when given and present; band 1 of a single-band file."""
    if band is None:
        if src.count > 1:
            raise BandNotFoundError(
                f"layer '{layer}': {path} has {src.count} bands — say which one to read with `band:` (1 to "
                f"{src.count}) in the config"
            )
        return 1
    if not 1 <= band <= src.count:
        raise BandNotFoundError(f"layer '{layer}': band {band} not found in {path}, which has {src.count} band(s) — "
                             f"give a band from 1 to {src.count}")
    return band


#: resampling methods that blend neighbouring values: meaningless on classes
BLENDING = ("bilinear", "cubic", "average")


def source_pixel_m(src: rasterio.DatasetReader, grid: Grid) -> float:
    """The source's pixel size measured in the grid's CRS (mean of both axes)."""
    left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    return 0.5 * ((right - left) / src.width + (top - bottom) / src.height)


def choose_resampling(src: rasterio.DatasetReader, grid: Grid, resampling: str, kind: str, layer: str) -> str:
    """``auto``: continuous layers bilinear, or average when the source is finer than the grid;
    categorical ones nearest, or mode when finer. A blending method on a categorical layer is refused."""
    if resampling == "auto":
        finer = source_pixel_m(src, grid) < 0.75 * grid.resolution_m
        if kind == "categorical":
            return "mode" if finer else "nearest"
        return "average" if finer else "bilinear"
    if kind == "categorical" and resampling in BLENDING:
        raise ResamplingError(
            f"layer '{layer}': resampling {resampling} blends the classes of a categorical layer into values that "
            "are no class — use nearest (or mode when the layer is finer than the grid), or auto")
    return resampling


def read_on_grid(path: Path, grid: Grid, layer: str, resampling: str = "nearest",
                 band: int | None = None, kind: str = "continuous", nodata: float | None = None) -> xr.DataArray:
    """Lazily warp one band of a raster onto the grid (WarpedVRT + dask); nodata becomes NaN.

    Float32 result, dims ``(y, x)``. The raster's nodata value (or ``nodata`` for a file that lacks
    one) is masked before resampling: GDAL's warper leaves nodata pixels out of every kernel, so no
    nodata value is blended into a neighbour. A multi-band file needs ``band``. ``resampling`` may be
    ``auto`` (:func:`choose_resampling`, by ``kind``).
    """
    path = Path(path)
    with open_checked(path, layer) as src:
        check_overlap(src.bounds, src.crs, grid, layer, path)
        band = pick_band(src, band, layer, path)
        resampling = choose_resampling(src, grid, resampling, kind, layer)
    vrt_opts = dict(
        crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
        resampling=Resampling[resampling],
    )

    def load_block(block_info=None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        try:
            with rasterio.open(path) as src:
                value = nodata if nodata is not None else src.nodata
                nodata_opts = {"src_nodata": value, "nodata": value} if value is not None else {"add_alpha": True}
                with WarpedVRT(src, **nodata_opts, **vrt_opts) as vrt:
                    data = vrt.read(band, window=window).astype("float32")
                    data[vrt.read_masks(band, window=window) == 0] = np.nan
        except rasterio.RasterioIOError as e:
            raise UnreadableRasterError(
                f"layer '{layer}': {path} cannot be read (rows {r0}–{r1}, columns {c0}–{c1} of the grid: "
                f"{gdal_reason(e)}) — the file is corrupt or truncated; copy or download it again"
            ) from None
        return data

    arr = da.map_blocks(load_block, chunks=da.core.normalize_chunks(CHUNK_PX, grid.shape), dtype="float32")
    return xr.DataArray(arr, dims=("y", "x"), coords=grid.coords(), name=layer)
