"""VT0007 step 3: fitted class densities on a period's classes, adjusted to an expected total with no
pixel losing more than its own area."""

from __future__ import annotations

import math

import numpy as np

from geo_risk.evaluate.vt0007.checks import _as_mask, _check_classes, _positive
from geo_risk.evaluate.vt0007.classes import ClassDensity
from geo_risk.evaluate.vt0007.results import Allocation, VulnerabilityClasses
from geo_risk_errors import InputDataError


def allocate(classes: np.ndarray | VulnerabilityClasses, density: ClassDensity, expected_ha_per_yr: float,
             forest: np.ndarray, *, years: float, zones: np.ndarray | None = None,
             max_iterations: int = 1000) -> Allocation:
    """Density map of a period from fitted class densities, adjusted to an expected total.

    Each forest pixel gets the density of its (class, zone) in ``density``; the map is then
    multiplied by ``AR = expected / modelled`` (VT0007's adjustment ratio, UDef-ARP
    ``calculate_adjustment_ratio``). A pixel cannot lose more than its own area over the
    ``years`` of the period, so densities above ``pixel_area_ha / years`` are set to that cap and
    the ratio is recomputed on the remaining pixels for what is left of the total, until no pixel
    exceeds the cap (the iteration as the issue and UDef-ARP read VT0007: UDef-ARP repeats its
    adjustment while AR > 1, up to a user-set number of iterations; riskmapjnr applies one ratio
    and no cap). It scales down too (AR < 1). If the uncapped pixels cannot hold the total (all at the cap,
    or only zero-density pixels left) the rest is reported as ``shortfall_ha_per_yr``.

    ``expected_ha_per_yr``: the expected deforestation (config) or, when validating, the observed
    total of the period divided by its years.
    """
    forest = _as_mask(forest, "forest")
    expected = float(expected_ha_per_yr)
    if not math.isfinite(expected) or expected < 0:
        raise InputDataError(f"`expected_ha_per_yr` must be a finite number ≥ 0, got {expected_ha_per_yr}.")
    years = _positive(years, "years")
    if int(max_iterations) != max_iterations or max_iterations < 1:
        raise InputDataError(f"`max_iterations` must be an integer ≥ 1, got {max_iterations}.")
    base_map, n_unmatched = density.lookup(_check_classes(classes, forest), forest, zones)
    base = base_map[forest]
    cap = density.pixel_area_ha / years
    capped = np.zeros(base.shape, dtype=bool)
    out = np.zeros(base.shape)
    ratio = float("nan")
    for iterations in range(1, max_iterations + 1):
        free = ~capped
        remaining = expected - cap * int(capped.sum())
        modelled = float(base[free].sum())
        if remaining <= 0:  # nothing (left) to allocate
            ratio = 0.0
            break
        if modelled <= 0:  # only zero-density pixels left: the rest is a shortfall
            break
        ratio = remaining / modelled
        scaled = base * ratio
        over = free & (scaled > cap)
        if not over.any():
            out[free] = scaled[free]
            break
        capped |= over
    else:
        raise InputDataError(f"the quantity adjustment did not settle in {max_iterations} iterations.")
    out[capped] = cap
    np.minimum(out, cap, out=out)
    allocated = float(out.sum())
    shortfall = expected - allocated
    if shortfall <= 1e-9 * max(expected, 1e-300):
        shortfall = 0.0
    dens = np.full(forest.shape, np.nan)
    dens[forest] = out
    return Allocation(density_ha_per_pixel_yr=dens, expected_ha_per_yr=expected, allocated_ha_per_yr=allocated,
                      shortfall_ha_per_yr=shortfall, adjustment_ratio=ratio, iterations=iterations,
                      n_capped=int(capped.sum()), cap_ha_per_pixel_yr=cap, n_unmatched=n_unmatched, years=years,
                      pixel_area_ha=density.pixel_area_ha)
