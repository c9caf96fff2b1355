"""Band names of the layer stack, and the check that no two layers end up with the same one."""

from __future__ import annotations

from collections.abc import Iterable

from geo_risk_errors import ConfigError

FOREST = "forest"
PAST_LOSS = "past_loss"
DIST_EDGE = "dist_edge_m"
DIST_PAST_LOSS = "dist_past_loss_m"
MISSING_SUFFIX = "_missing"
#: the scaled ecological weight as an input band (``layers.eco_weight.as_input``)
ECO_BAND = "eco_weight"
#: bands derived from the forest-change codes, in this order, before distances and rasters
FOREST_BANDS = [FOREST, PAST_LOSS, DIST_EDGE, DIST_PAST_LOSS]

_DERIVED = {
    FOREST: "forest at the period's start",
    PAST_LOSS: "past forest loss",
    DIST_EDGE: "distance to the forest edge",
    DIST_PAST_LOSS: "distance to past forest loss",
}


def distance_band(name: str) -> str:
    """Band of the distance to the ``layers.distance_to`` layer ``name``."""
    return f"dist_{name}_m"


def share_bands(windows_px: Iterable[int], past_loss: bool = True) -> list[str]:
    """Bands of the window shares (``layers.context_windows_px``): ``forest_share_<w>px`` and, with past
    loss, ``past_loss_share_<w>px`` per window."""
    out = []
    for w in windows_px:
        out += [f"{FOREST}_share_{w}px"] + ([f"{PAST_LOSS}_share_{w}px"] if past_loss else [])
    return out


def band_names(distance_names: Iterable[str], raster_names: Iterable[str], past_loss: bool = True,
               missing: Iterable[str] = (), eco: bool = False, windows_px: Iterable[int] = ()) -> list[str]:
    """Derived bands (the window shares of ``windows_px`` after them), then ``dist_<name>_m`` per distance
    layer, then the rasters, then a ``<name>_missing`` band per raster in ``missing``, then ``eco_weight``
    when ``eco``; refuses duplicates.

    ``past_loss`` False: the past-loss bands are left out (a period starts in the first year the
    forest-change layer holds, so no loss is known before it).
    """
    owners = {band: f"the derived {what} (from layers.forest_change)" for band, what in _DERIVED.items()}
    bands = [b for b in FOREST_BANDS if past_loss or b not in (PAST_LOSS, DIST_PAST_LOSS)]
    shares = share_bands(windows_px, past_loss)
    owners.update({b: "a window share of the forest or past loss (layers.context_windows_px)" for b in shares})
    bands += shares
    raster_names = list(raster_names)
    layers = [(distance_band(n), f"layers.distance_to.{n}") for n in distance_names]
    layers += [(n, f"layers.rasters.{n}") for n in raster_names]
    layers += [(f"{n}{MISSING_SUFFIX}", f"layers.rasters.{n} (its missing-value band)") for n in missing]
    if eco:  # registered first, so a raster of that name is the one asked to change
        owners[ECO_BAND] = "the scaled ecological weight (layers.eco_weight with as_input: true)"
    for band, key in layers:
        if band in owners:
            raise ConfigError(
                f"{key} makes band '{band}', which is already {owners[band]}: "
                f"rename {key.split(' ')[0]} in the config (e.g. to '{key.split(' ')[0].rsplit('.', 1)[1]}_2')"
            )
        owners[band] = f"the band of {key}"
        bands.append(band)
    return bands + [ECO_BAND] if eco else bands
