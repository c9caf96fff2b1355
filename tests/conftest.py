"""Shared test fixtures: paths to the bundled demo data and to ../shared (present in CI)."""

from __future__ import annotations

import os
from pathlib import Path

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
