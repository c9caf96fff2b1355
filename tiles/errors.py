"""The bad inputs ``tiles`` refuses, as subclasses of the one hierarchy (``geo_risk_errors``).

Each message names the file, the layer (the config key) and the fix; each is raised before
anything is written (``geo-risk tile`` stages its output and renames it in only on success).
"""

from __future__ import annotations

from geo_risk_errors import ChipStoreError, ConfigError, InputDataError


class UnreadableRasterError(InputDataError):
    """A raster that cannot be opened or read: not a raster (e.g. a text file named .tif), corrupt, truncated."""


class UnreadableVectorError(InputDataError):
    """A vector file that cannot be opened or read."""


class BandNotFoundError(InputDataError):
    """A band that the file does not have, or a multi-band file read without ``band:``."""


class VectorLayerNotFoundError(InputDataError):
    """A ``layer:`` that the file does not hold, or a file of several layers read without ``layer:``."""


class EmptyLayerError(InputDataError):
    """A layer with nothing to use: a vector without features, a raster with no value on the region's forest."""


class InvalidGeometryError(InputDataError):
    """A geometry that stays invalid or empty once repaired, or a layer of the wrong geometry type."""


class ForestChangeError(InputDataError):
    """Forest change that cannot make a usable stack: nodata everywhere, a period without forest or loss."""


class ResamplingError(ConfigError):
    """A resampling method that the layer's kind forbids (blending the classes of a categorical layer)."""


class ChipLayoutError(ChipStoreError):
    """Chips that do not fit the region, or a split that leaves a set empty."""


class SchedulerError(ConfigError):
    """A dask scheduler (``dask.scheduler``) that cannot be used: unreachable, or workers that do not see the folders."""
