"""The walkthrough notebook runs top to bottom (slow: a full small pipeline; `pytest -m slow`)."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_runs(tmp_path, monkeypatch):
    nb = json.loads(NOTEBOOK.read_text())
    work = tmp_path / "notebooks"
    work.mkdir()
    (tmp_path / "configs").symlink_to(NOTEBOOK.parents[1] / "configs")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}", "exec"), scope)
    run = work / "runs" / "notebook-demo"
    # what the notebook showed, and what it wrote
    assert scope["tile"].num_train > 50 and scope["tile"].num_val > 10
    m = scope["metrics"]
    assert m.period == "2010-2015" and m.pixels > 800_000 and 0.6 < m.model.auc <= 1
    assert json.loads((run / "metrics.json").read_text())["model"]["auc"] == pytest.approx(m.model.auc)
    zones = scope["zones"]
    assert len(zones) >= 20 and zones.mean_risk_map.std(ddof=0) < zones.mean_risk_model.std(ddof=0)
    with rasterio.open(run / "risk.tif") as src:
        risk = src.read(1)
    finite = risk[np.isfinite(risk)]
    assert finite.size > 800_000 and 0 <= finite.min() and finite.max() <= 1
    assert "Risk of forest loss" in (run / "map.html").read_text()
