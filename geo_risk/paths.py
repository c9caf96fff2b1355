"""Where each stage reads and writes inside a run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def tiles(self) -> Path:
        return self.root / "tiles"

    @property
    def stack(self) -> Path:
        return self.tiles / "stack.zarr"

    @property
    def chips(self) -> Path:
        return self.tiles / "chips.zarr"

    @property
    def zones_dir(self) -> Path:
        return self.tiles / "zones"

    @property
    def zones(self) -> Path:
        return self.zones_dir / "zones.gpkg"

    @property
    def checkpoint(self) -> Path:
        return self.root / "model.pt"

    @property
    def probability(self) -> Path:
        return self.root / "risk.tif"

    @property
    def uncertainty(self) -> Path:
        return self.root / "uncertainty.tif"

    @property
    def zone_risk(self) -> Path:
        return self.root / "zone_risk.csv"

    @property
    def decision(self) -> Path:
        return self.root / "decision.tif"

    @property
    def expected_cost(self) -> Path:
        return self.root / "expected_cost.tif"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def density(self) -> Path:
        """VT0007 allocated deforestation density of the forecast period, ha/pixel/yr (evaluate)."""
        return self.root / "density.tif"

    @property
    def zones_csv(self) -> Path:
        """Per-zone audit of the map and the decision (evaluate)."""
        return self.root / "zones.csv"

    @property
    def zones_geojson(self) -> Path:
        """The per-zone audit joined to the zone polygons, WGS 84 (evaluate)."""
        return self.root / "zones.geojson"

    def plot(self, name: str) -> Path:
        """A figure of the evaluation report, ``<name>.png`` (e.g. reliability, vt0007_cells)."""
        return self.root / f"{name}.png"

    @property
    def map(self) -> Path:
        return self.root / "map.html"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.csv"

    @property
    def learning_curves(self) -> Path:
        return self.root / "learning_curves.png"
