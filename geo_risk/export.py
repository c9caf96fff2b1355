"""Stage 5 — export: Cloud-Optimized GeoTIFFs through GDAL's COG driver, written atomically."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError  # GDAL's errors, e.g. "No space left on device"
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile

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
