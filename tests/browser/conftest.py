"""Fixtures of the browser tests: headless Chromium, and review maps of the synthetic run.

Every test here needs Chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run
installs them) and Selenium (the ``test`` extra); without them the tests skip and say so — unless
``GEO_RISK_REQUIRE_BROWSER`` is set (.ci/run sets it), when they fail.
Screenshots are kept in the run folder, ``<run>/screenshots/`` (and copied to
``$GEO_RISK_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.chrome import Browser, missing
from tests.conftest import synthetic_config


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    why = missing()
    if why and os.environ.get("GEO_RISK_REQUIRE_BROWSER"):  # .ci/run installed Chromium: it must work
        pytest.fail(f"GEO_RISK_REQUIRE_BROWSER is set but {why}")
    if why:
        pytest.skip(why)
    b = Browser(tmp_path_factory.mktemp("downloads"))
    yield b
    b.close()


@pytest.fixture(scope="session")
def review_run(synthetic_run, tmp_path_factory):
    """A copy of the tiled and trained synthetic run, predicted, decided, evaluated and mapped."""
    from geo_risk.decide import run_decide
    from geo_risk.evaluate import run_evaluate
    from geo_risk.pipeline import run_map
    from geo_risk.predict import run_predict

    run_dir = tmp_path_factory.mktemp("review-run") / "run"
    shutil.copytree(synthetic_run.cfg.run_dir, run_dir)
    cfg = synthetic_config(synthetic_run.cfg.data_dir / "region.yaml", run_dir)
    for stage in (run_predict, run_decide, run_evaluate, run_map):
        stage(cfg)
    return cfg


def keep(browser: Browser, run_dir: Path, name: str) -> Path:
    """Screenshot into ``run_dir/screenshots/name.png`` (and ``$GEO_RISK_SCREENSHOTS``)."""
    path = browser.screenshot(Path(run_dir) / "screenshots" / f"{name}.png")
    extra = os.environ.get("GEO_RISK_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path
