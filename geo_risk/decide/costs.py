"""Spatially varying costs: one cost matrix per pixel from the config's matrix and two multipliers.

Read the config's matrix ``C[a, s]`` as an action cost and a damage::

    k_a = C[a, stays_forest]                  what action a costs (paid whatever happens)
    d_a = C[a, lost] − C[a, stays_forest]     the damage of a loss that action a does not prevent

and scale them per pixel i by ``t_i`` (action-cost multiplier, e.g. travel cost from distance to
roads) and ``v_i`` (damage multiplier, e.g. ecological value)::

    C_i[a, stays_forest] = k_a·t_i        C_i[a, lost] = k_a·t_i + d_a·v_i

With t = v = 1 this is the config's matrix. Each multiplier is a product of factors built from
layers on the grid (:func:`multiplier`): ``1 + eco_factor·eco``, ``1 + per_km·distance_km``, a
factor per zone and any raster.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from geo_risk.decide.errors import DecisionLayerError
from geo_risk.decide.rules import check_cost


def pixel_costs(cost: np.ndarray, action_scale: np.ndarray | None = None,
                damage_scale: np.ndarray | None = None) -> np.ndarray:
    """``(actions, 2, n)`` costs per pixel from the ``(actions, 2)`` matrix and the multipliers
    ``t`` (``action_scale``) and ``v`` (``damage_scale``), each ``(n,)`` or None (= 1).

    Returns the matrix itself when both are None (it is then the same at every pixel).
    """
    c = check_cost(cost)
    if action_scale is None and damage_scale is None:
        return c
    n = len(action_scale if action_scale is not None else damage_scale)
    t = np.ones(n) if action_scale is None else np.asarray(action_scale, dtype=np.float64)
    v = np.ones(n) if damage_scale is None else np.asarray(damage_scale, dtype=np.float64)
    if t.shape != (n,) or v.shape != (n,):
        raise DecisionLayerError(f"cost multipliers must both be flat arrays of {n} pixels; got {t.shape} and "
                                 f"{v.shape}")
    k, d = c[:, 0], c[:, 1] - c[:, 0]
    stays = np.multiply.outer(k, t)
    return np.stack([stays, stays + np.multiply.outer(d, v)], axis=1)


def _factor(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        raise DecisionLayerError(f"{name}: {int(bad.sum())} forest pixel(s) have no value (NaN/nodata) — fill them, "
                                 "or drop this layer from the decision's cost scaling")
    if (v < 0).any():
        raise DecisionLayerError(f"{name}: {int((v < 0).sum())} forest pixel(s) are negative (min {v.min():.4g}) "
                                 "— a cost multiplier is ≥ 0")
    return v


def multiplier(n: int, *, eco: np.ndarray | None = None, eco_factor: float = 0.0,
               distance_m: np.ndarray | None = None, per_km: float = 0.0,
               zone: np.ndarray | None = None, zone_factors: Mapping[int, float] | None = None,
               raster: np.ndarray | None = None, names: Mapping[str, str] | None = None) -> np.ndarray | None:
    """The per-pixel multiplier ``(1 + eco_factor·eco) · (1 + per_km·distance_m/1000) · f[zone] · raster``
    over ``n`` pixels (flat arrays); None when every factor is 1. ``names`` name the layers in
    messages (keys ``eco``, ``distance``, ``zone``, ``raster``)."""
    names = dict(names or {})
    out = np.ones(n)
    used = False
    if eco_factor:
        out *= 1 + eco_factor * _factor(eco, names.get("eco", "eco"))
        used = True
    if per_km:
        out *= 1 + per_km * _factor(distance_m, names.get("distance", "distance")) / 1000
        used = True
    if zone_factors:
        z = np.asarray(zone)
        f = np.ones(n)
        for zid, value in zone_factors.items():
            f[z == zid] = value
        out *= _factor(f, names.get("zone", "zone factors"))
        used = True
    if raster is not None:
        out *= _factor(raster, names.get("raster", "raster"))
        used = True
    return out if used else None
