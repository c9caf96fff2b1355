"""Stage 5 — export: Cloud-Optimized GeoTIFFs through GDAL's COG driver, written atomically."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError  # GDAL's errors, e.g. "No space left on device"
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.windows import Window

from geo_risk_errors import OutputError
from tiles.atomic import atomic_file

DECISION_NODATA = 255
#: ``predict.probability_dtype: uint16``: p is stored as round(p · UINT16_STEPS) with scale 1/UINT16_STEPS
#: and offset 0 (GDAL/QGIS show true values); UINT16_NODATA marks pixels without a value
UINT16_STEPS = 65534
UINT16_NODATA = 65535


def quantize_probability(p: da.Array) -> da.Array:
    """A lazy float probability array (NaN = no value) as scaled uint16 (absolute error ≤ 0.5/UINT16_STEPS)."""
    q = da.round(da.clip(p, 0.0, 1.0) * UINT16_STEPS)
    return da.where(da.isfinite(p), q, UINT16_NODATA).astype(np.uint16)


def true_values(src, band: int = 1) -> np.ndarray:
    """Band ``band`` of an open rasterio dataset as float64 true values: nodata → NaN, then the band's
    scale and offset applied as GDAL does (value · scale + offset) — float or scaled-integer rasters alike."""
    arr = src.read(band, masked=True)
    data = np.ma.filled(arr.astype(np.float64), np.nan)
    scale, offset = src.scales[band - 1], src.offsets[band - 1]
    if scale != 1.0 or offset != 0.0:
        data = data * scale + offset
    return data


def write_cog(
    path: Path, array: np.ndarray, crs, transform, *, nodata: float | int | None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None, tags: dict[str, str] | None = None,
    overview_resampling: str = "average", blocksize: int = 512, atomic: bool = True,
) -> Path:
    """Write a single-band array as a COG (tiled, DEFLATE, overviews) via a temporary file + rename.

    ``atomic=False`` writes straight to ``path``: for a temporary path of ``tiles.atomic.atomic_files``.
    """
    with atomic_file(path) if atomic else nullcontext(Path(path)) as dest:
        with MemoryFile() as mem:
            profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1,
                           dtype=array.dtype, crs=crs, transform=transform, nodata=nodata)
            with mem.open(**profile) as ds:
                ds.write(array, 1)
                if colormap:
                    ds.write_colormap(1, colormap)
                if tags:
                    ds.update_tags(**{k: str(v) for k, v in tags.items()})
            with mem.open() as src:
                try:
                    rasterio.shutil.copy(
                        src, str(dest), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=blocksize,
                        OVERVIEW_RESAMPLING=overview_resampling.upper(), PREDICTOR="YES", BIGTIFF="IF_SAFER",
                    )
                except (CPLE_BaseError, RasterioError) as e:  # writing the file failed
                    detail = " ".join(str(e).split())[:300]
                    raise OutputError(f"cannot write {path}: {detail} — check free disk space and that its "
                                      "folder is writable, or pass --out DIR elsewhere") from e
    return Path(path)


def write_cog_blocks(
    path: Path, array: da.Array, crs, transform, *, nodata: float | int | None, tags: dict[str, str] | None = None,
    description: str = "", units: str = "", overview_resampling: str = "average", blocksize: int = 512,
    scale: float = 1.0, offset: float = 0.0,
) -> Path:
    """Write a lazy 2-D dask array as a COG without holding it in memory (band description and units set).

    Its blocks are computed one at a time into a tiled GeoTIFF beside ``path``, which GDAL's COG
    driver then copies with overviews into ``path``. Not atomic by itself: give it a temporary path
    of ``tiles.atomic.atomic_file(s)``. ``scale``/``offset``: GDAL's band scaling (true value = stored ·
    scale + offset), for integer-coded values such as :func:`quantize_probability`.
    """
    path = Path(path)
    source = path.with_name(f"{path.name}.blocks.tif")
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1, dtype=array.dtype,
                   crs=crs, transform=transform, nodata=nodata, tiled=True, blockxsize=blocksize,
                   blockysize=blocksize, compress="DEFLATE", BIGTIFF="IF_SAFER")
    rows, cols = np.cumsum((0, *array.chunks[0])), np.cumsum((0, *array.chunks[1]))
    try:
        with rasterio.open(source, "w", **profile) as dst:
            for i in range(len(rows) - 1):
                for j in range(len(cols) - 1):
                    block = np.asarray(array.blocks[i, j].compute(), dtype=array.dtype)
                    dst.write(block, 1, window=Window(cols[j], rows[i], cols[j + 1] - cols[j], rows[i + 1] - rows[i]))
            if description:
                dst.set_band_description(1, description)
            if units:
                dst.set_band_unit(1, units)
            if scale != 1.0 or offset != 0.0:
                dst.scales, dst.offsets = (scale,), (offset,)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
        rasterio.shutil.copy(source, str(path), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=blocksize,
                             OVERVIEW_RESAMPLING=overview_resampling.upper(), PREDICTOR="YES", BIGTIFF="IF_SAFER")
    except (CPLE_BaseError, RasterioError) as e:
        detail = " ".join(str(e).split())[:300]
        raise OutputError(f"cannot write {path}: {detail} — check free disk space and that its folder is writable, "
                          "or pass --out DIR elsewhere") from e
    finally:
        source.unlink(missing_ok=True)
    return path
