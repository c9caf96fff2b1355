"""The one exception hierarchy of geo-risk.

It lives in a module of its own, below every package, so that ``tiles`` (no torch) and
``losses`` (torch only) raise the same errors as the application without importing it.
Messages name the file, the layer and the fix.
"""

from __future__ import annotations


class GeoRiskError(Exception):
    """Base class of every error geo-risk raises on purpose."""


class ConfigError(GeoRiskError, ValueError):
    """A configuration file is missing, malformed, or names an unknown key."""


class InputDataError(GeoRiskError):
    """An input raster or vector cannot be used as given."""


class MissingInputError(InputDataError, FileNotFoundError):
    """An input file named by the configuration does not exist."""


class CRSMissingError(InputDataError):
    """A layer carries no coordinate reference system."""


class NoOverlapError(InputDataError):
    """A layer does not overlap the reference grid."""


class OutputError(GeoRiskError):
    """An output cannot be written: run folder not writable, disk full, a file where a folder goes."""


class ChipStoreError(GeoRiskError):
    """The chip store or layer stack on disk is missing or inconsistent."""


class CheckpointError(GeoRiskError):
    """A model checkpoint is missing, unreadable or does not fit the data."""


class LossInputError(GeoRiskError, ValueError):
    """Tensors given to a loss have wrong shapes, dtypes or values."""


class TrainingError(GeoRiskError):
    """Training could not produce a usable model (e.g. every validation loss was NaN)."""
