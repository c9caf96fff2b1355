"""Shared test fixtures: paths to the bundled demo data and to ../shared (present in CI), and the
tiny synthetic region of tests/data/synthetic (its layers, stack and a tiled + trained run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "guadeloupe"
DEMO_CONFIG = ROOT / "configs" / "guadeloupe-demo.yaml"
SHARED = Path(os.environ.get("GEO_RISK_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_config() -> Path:
    return DEMO_CONFIG


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def shared_guadeloupe() -> Path:
    """The full forestatrisk data with its reference distance rasters (CI has ../shared)."""
    path = SHARED / "guadeloupe"
    if not path.is_dir():
        pytest.skip(f"{path} not present (reference rasters live in ../shared/data, beside the checkout)")
    return path


# --- the synthetic region (tests/data/synthetic/data.py): every stage on 96 × 96 px, in seconds ---

@dataclass(frozen=True)
class SyntheticRun:
    """A run folder of the synthetic region after ``run_tile`` and ``run_train`` (1 epoch)."""

    cfg: Any  # geo_risk.config.RunConfig
    tile: Any  # what run_tile returned
    train: Any  # what run_train returned


@pytest.fixture(scope="session")
def synthetic_region(tmp_path_factory) -> Path:
    """The config (``region.yaml``) of the synthetic region, generated once per session."""
    from tests.data.synthetic.data import make_region

    return make_region(tmp_path_factory.mktemp("synthetic-region"))


def synthetic_config(region: Path, run_dir: Path | None = None, **overrides):
    """The synthetic region's RunConfig, with its run folder at ``run_dir`` and other overrides."""
    from geo_risk.config import load_config

    if run_dir is not None:
        overrides["output_dir"] = str(run_dir)
    return load_config(region, overrides)


@pytest.fixture(scope="session")
def synthetic_stack(synthetic_region):
    """``tiles.build_stack`` of the synthetic region, computed into memory: (stack, zones)."""
    from geo_risk.tiling import stack_spec
    from tiles import build_stack

    ds, zones = build_stack(stack_spec(synthetic_config(synthetic_region)))
    return ds.compute(), zones


@pytest.fixture(scope="session")
def synthetic_run(synthetic_region, tmp_path_factory) -> SyntheticRun:
    """Tile and train (1 epoch) the synthetic region once into a temporary run folder."""
    from geo_risk.tiling import run_tile
    from geo_risk.train import run_train

    cfg = synthetic_config(synthetic_region, tmp_path_factory.mktemp("synthetic-run") / "run")
    tile = run_tile(cfg)
    return SyntheticRun(cfg, tile, run_train(cfg))


@dataclass(frozen=True)
class SyntheticChips:
    """The training period's chip index and chip store of the synthetic stack."""

    index: Any  # GeoDataFrame from tiles.chip_index
    store: Path  # chips.zarr written by tiles.write_chip_store
    stats: dict  # what write_chip_store returned


@pytest.fixture(scope="session")
def synthetic_chips(synthetic_region, synthetic_stack, tmp_path_factory) -> SyntheticChips:
    """``tiles.chip_index`` with the region's chips settings, then ``tiles.write_chip_store``."""
    from tiles import chip_index, write_chip_store

    c = synthetic_config(synthetic_region).chips
    stack, _ = synthetic_stack
    index = chip_index(stack, "train", c.size_px, c.stride_px, c.min_valid_fraction, c.block_size_px,
                       c.val_fraction, c.buffer_px, c.seed, c.max_chips)
    store = tmp_path_factory.mktemp("synthetic-chips") / "chips.zarr"
    stats = write_chip_store(stack, "train", index, store, c.size_px)
    return SyntheticChips(index, store, stats)
