"""What the decide stage reads beside its cost matrix: risk.tif's grid, rasters that must lie on it, and
the stack's layers the per-pixel cost multipliers need (read once each, flattened over the decided
pixels)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from geo_risk.config import CostScaleConfig, RunConfig
from geo_risk.decide.costs import multiplier
from geo_risk.decide.errors import DecisionLayerError
from geo_risk.export import true_values
from geo_risk.paths import RunPaths


@dataclass(frozen=True)
class RiskGrid:
    """risk.tif's grid: CRS, transform and shape, with what a user needs to put another raster on it."""

    crs: object
    transform: object
    shape: tuple[int, int]

    def same(self, other: RiskGrid) -> bool:
        return (self.shape == other.shape and self.crs == other.crs
                and self.transform.almost_equals(other.transform, precision=1e-6 * abs(self.transform.a)))

    def describe(self) -> str:
        t = self.transform
        h, w = self.shape
        return (f"{w}×{h} px of {abs(t.a):g}×{abs(t.e):g}, origin ({t.c:g}, {t.f:g}), "
                f"{self.crs.to_string() if self.crs else 'no CRS'}")

    def warp_hint(self) -> str:
        t = self.transform
        h, w = self.shape
        xmin, ymax = t.c, t.f
        xmax, ymin = xmin + w * t.a, ymax + h * t.e
        srs = self.crs.to_string() if self.crs else "?"
        return f"gdalwarp -t_srs {srs} -te {xmin:g} {ymin:g} {xmax:g} {ymax:g} -ts {w} {h} -r bilinear IN.tif OUT.tif"


def read_raster(path: Path, what: str) -> tuple[np.ndarray, RiskGrid]:
    """A raster's first band as true values and its grid."""
    with rasterio.open(path) as src:  # true values: nodata → NaN, scale/offset applied (uint16 risk.tif)
        data = true_values(src)
        grid = RiskGrid(src.crs, src.transform, (src.height, src.width))
    return data, grid


def on_grid(path: Path, what: str, risk_grid: RiskGrid, risk_path: Path) -> np.ndarray:
    """Read a raster that must lie on risk.tif's grid, or say how to put it there."""
    if not Path(path).is_file():
        raise DecisionLayerError(f"{what}: {path} not found — give an existing raster on the grid of {risk_path}")
    try:
        data, grid = read_raster(path, what)
    except rasterio.errors.RasterioError as e:
        raise DecisionLayerError(f"{what}: cannot read {path} ({e}) — give a GeoTIFF on the grid of {risk_path}") \
            from None
    if not grid.same(risk_grid):
        raise DecisionLayerError(
            f"{what}: {path} is on another grid ({grid.describe()}) than {risk_path.name} ({risk_grid.describe()}) — "
            f"resample it onto the run's grid, e.g. `{risk_grid.warp_hint()}`")
    return data


class CostLayers:
    """The layers the cost multipliers need, read once each and flattened over the decided pixels."""

    def __init__(self, cfg: RunConfig, paths: RunPaths, grid: RiskGrid, valid: np.ndarray):
        self.cfg, self.paths, self.grid, self.valid = cfg, paths, grid, valid
        self._stack = None
        self._names: dict[str, int] | None = None

    def stack(self, key: str):
        if self._stack is None:
            from tiles import open_store

            if not self.paths.stack.exists():
                raise DecisionLayerError(f"{key} needs the layer stack {self.paths.stack}, which is missing — run "
                                         "`geo-risk tile CONFIG` first, or remove the key")
            ds = open_store(self.paths.stack, "layer stack")
            h, w = self.grid.shape
            t = self.grid.transform
            xs, ys = t.c + (np.arange(w) + 0.5) * t.a, t.f + (np.arange(h) + 0.5) * t.e
            tol = 1e-6 * abs(t.a)
            if (ds.sizes.get("y"), ds.sizes.get("x")) != (h, w) or not (
                    np.allclose(ds["x"].values, xs, atol=tol) and np.allclose(ds["y"].values, ys, atol=tol)):
                raise DecisionLayerError(f"{key}: the layer stack {self.paths.stack} is on another grid than "
                                         f"{self.paths.probability} — run `geo-risk tile` and `geo-risk predict` "
                                         "again so both come from the same config")
            self._stack = ds
        return self._stack

    def eco(self, key: str) -> np.ndarray:
        return np.asarray(self.stack(key)["eco"].values, dtype=np.float64)[self.valid]

    def band(self, name: str, key: str) -> np.ndarray:
        ds = self.stack(key)
        bands = [str(b) for b in ds["band"].values]
        if name not in bands:
            raise DecisionLayerError(f"{key}: band {name!r} is not in the stack {self.paths.stack} — one of "
                                     f"{[b for b in bands if b.endswith('_m')]}")
        period = "forecast" if "forecast" in [str(p) for p in ds["period"].values] else ds["period"].values[-1]
        return np.asarray(ds["features"].sel(period=period, band=name).values, dtype=np.float64)[self.valid]

    def zone(self, key: str) -> np.ndarray:
        return np.asarray(self.stack(key)["zone"].values)[self.valid]

    def zone_ids(self, factors: dict, key: str) -> dict[int, float]:
        out = {}
        for k, v in factors.items():
            if isinstance(k, int) or (isinstance(k, str) and k.isdigit()):
                out[int(k)] = float(v)
                continue
            if self._names is None:
                import geopandas as gpd

                if not self.paths.zones.is_file():
                    raise DecisionLayerError(f"{key}: zone {k!r} is named but {self.paths.zones} is missing — run "
                                             "`geo-risk tile CONFIG` with layers.zones, or give zone ids")
                t = gpd.read_file(self.paths.zones, columns=["zone_id", "name"], ignore_geometry=True)
                self._names = {str(n): int(i) for i, n in zip(t.zone_id, t.name)}
            if k not in self._names:
                raise DecisionLayerError(f"{key}: no zone is named {k!r} in {self.paths.zones} — zones: "
                                         f"{sorted(self._names)}")
            out[self._names[k]] = float(v)
        return out

    def raster(self, path: Path, key: str) -> np.ndarray:
        return on_grid(self.cfg.data_path(path), key, self.grid, self.paths.probability)[self.valid]

    def multiplier(self, sc: CostScaleConfig, key: str) -> np.ndarray | None:
        if sc.is_identity:
            return None
        n = int(self.valid.sum())
        return multiplier(
            n,
            eco=self.eco(f"{key}.eco_factor") if sc.eco_factor else None, eco_factor=sc.eco_factor,
            distance_m=self.band(sc.distance_band, f"{key}.distance_band") if sc.per_km else None, per_km=sc.per_km,
            zone=self.zone(f"{key}.zones") if sc.zones else None,
            zone_factors=self.zone_ids(dict(sc.zones), f"{key}.zones") if sc.zones else None,
            raster=self.raster(sc.raster, f"{key}.raster") if sc.raster else None,
            names={"eco": f"{key}.eco_factor (the stack's eco layer)",
                   "distance": f"{key}.distance_band ({sc.distance_band})",
                   "zone": f"{key}.zones", "raster": f"{key}.raster ({sc.raster})"})


def pixel_area_ha(grid: RiskGrid) -> float:
    """A pixel's area in hectares, NaN on a grid not in metres."""
    if grid.crs is None or not grid.crs.is_projected:
        return math.nan
    metres = grid.crs.linear_units_factor[1]
    return abs(grid.transform.a * grid.transform.e) * metres ** 2 / 10_000
