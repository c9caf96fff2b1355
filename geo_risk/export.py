"""Stage 5 — export: Cloud-Optimized GeoTIFFs through GDAL's COG driver, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile

from tiles.atomic import atomic_file

DECISION_NODATA = 255


def write_cog(
    path: Path, array: np.ndarray, crs, transform, *, nodata: float | int | None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None, tags: dict[str, str] | None = None,
    overview_resampling: str = "average", blocksize: int = 512,
) -> Path:
    """Write a single-band array as a COG (tiled, DEFLATE, overviews) via a temporary file + rename."""
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1, dtype=array.dtype,
                   crs=crs, transform=transform, nodata=nodata)
    with atomic_file(path) as tmp, MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(array, 1)
            if colormap:
                ds.write_colormap(1, colormap)
            if tags:
                ds.update_tags(**{k: str(v) for k, v in tags.items()})
        with mem.open() as src:
            rasterio.shutil.copy(
                src, str(tmp), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=blocksize,
                OVERVIEW_RESAMPLING=overview_resampling.upper(), PREDICTOR="YES", BIGTIFF="IF_SAFER",
            )
    return Path(path)
