"""The walkthrough notebook runs top to bottom (slow: a full small pipeline; `pytest -m slow`)."""

import json
import os
from pathlib import Path

import pytest

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
    assert {"risk.tif", "decision.tif", "map.html", "metrics.json"} <= set(os.listdir(run))
