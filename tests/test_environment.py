"""environment.yml cannot be tried here (no conda): keep it in step with pyproject.toml instead."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: conda-forge names of PyPI packages that are published under another name
CONDA_NAME = {"torch": "pytorch", "dask[array]": "dask"}


def split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*?)\s*(#.*)?$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    wanted = {CONDA_NAME.get(k, k): v for k, v in wanted.items()}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have.update(split(d) for d in dep["pip"] if not d.startswith("-"))
        elif not dep.startswith(("python", "pip")):
            have.update([split(dep)])
    assert have == wanted
