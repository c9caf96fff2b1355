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
