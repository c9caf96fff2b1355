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
) -> Path:
    """Write a lazy 2-D dask array as a COG without holding it in memory (band description and units set).

    Its blocks are computed one at a time into a tiled GeoTIFF beside ``path``, which GDAL's COG
    driver then copies with overviews into ``path``. Not atomic by itself: give it a temporary path
    of ``tiles.atomic.atomic_file(s)``.
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
