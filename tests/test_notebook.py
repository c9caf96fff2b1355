"""The walkthrough notebook: stored without outputs, and it runs top to bottom (slow: the whole chain
on a 1,000 × 800 px window of the demo, ≈ 3 min on 2 cores; `pytest -m slow`)."""

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 10
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert NOTEBOOK.stat().st_size < 50_000


@pytest.mark.slow
def test_walkthrough_runs(tmp_path, monkeypatch):
    nb = json.loads(NOTEBOOK.read_text())
    work = tmp_path / "notebooks"
    work.mkdir()
    (tmp_path / "configs").symlink_to(NOTEBOOK.parents[1] / "configs")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    scope: dict = {}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}, cell {i}", "exec"), scope)
    run = work / "runs" / "notebook-demo"
    # what the notebook showed, and what it wrote
    assert scope["tile"].num_train >= 20 and scope["tile"].num_val >= 5
    assert len(scope["log"]) == 5 and np.isfinite(scope["log"].val_auc).all()
    m = scope["metrics"]
    assert m.period == "2010-2015" and 400_000 < m.pixels < 800_000 and 0.6 < m.model.auc <= 1
    assert json.loads((run / "metrics.json").read_text())["model"]["auc"] == pytest.approx(m.model.auc)
    assert len(scope["audit"]) >= 3 and scope["audit"]["forest ha"].sum() > 0
    # the replayed projection: λ = 0 gives back the model's zone means of zone_risk.csv, and a larger
    # λ a smaller spread with the same mean risk
    zt, z, zone, scored = (scope[k] for k in ("zone_table", "z_model", "zone", "scored"))
    from scipy.special import expit

    from geo_risk.zone_stats import zone_mean_risk
    means = zone_mean_risk(expit(z), zone[scored], 1)
    for row in zt.itertuples():
        assert means[row.zone_id] == pytest.approx(row.mean_risk_model, rel=2e-3, abs=1e-5)
    sweep = scope["sweep"]
    assert list(sweep.index) == [0, 5, 20, 100]
    assert (np.diff(sweep["std of zone means"]) < 0).all()
    assert np.ptp(sweep["mean risk"]) < 1e-4
    page = (run / "map.html").read_text()
    assert "Risk of forest loss" in page and (run / "map.html").stat().st_size < 5e6
