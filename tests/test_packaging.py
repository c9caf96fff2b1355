"""A regular (non-editable) install ships every module, the demo config and the demo data, so
`pip install .` then `geo-risk run` works from any folder."""

from __future__ import annotations

import email
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the build reads; tests/, docs/, runs/ and .venv/ stay out of the copy
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "geo_risk_errors.py", "geo_risk", "tiles", "losses",
           "configs", "data"]
CODE = ["geo_risk", "tiles", "losses"]


def _setuptools_ok() -> bool:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        return False


def _files(folder: Path) -> list[Path]:
    return [p.relative_to(ROOT) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    if not _setuptools_ok():
        pytest.skip("building offline needs setuptools>=77 in this environment (pip install 'setuptools>=77')")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "BuildBackendWarning" not in build.stdout + build.stderr, build.stderr
    (whl,) = out.glob("geo_risk-*.whl")
    return whl


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def _in_package(f: Path) -> bool:
    """Whether every folder of ``f`` (relative to the root) is a regular package."""
    return all((ROOT / parent / "__init__.py").is_file() for parent in f.parents if parent != Path("."))


def test_wheel_ships_every_module(names):
    code = [f for d in CODE for f in _files(ROOT / d) if f.suffix == ".py" and _in_package(f)]
    assert len(code) > 20
    missing = sorted(str(f) for f in code if f.as_posix() not in names)
    assert missing == [], f"add their packages to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert "geo_risk_errors.py" in names


def test_wheel_ships_demo_config_and_data(names):
    assert "geo_risk/_bundled/configs/guadeloupe-demo.yaml" in names
    data = _files(ROOT / "data" / "demo")
    assert any(f.name == "fcc12345.tif" for f in data)
    missing = sorted(str(f) for f in data if f"geo_risk/_bundled/{f.as_posix()}" not in names)
    assert missing == []
    assert not [n for n in names if n.startswith(("tests/", "docs/", "runs/", "configs/", "data/"))]


def test_rio_cogeo_is_a_test_dependency_only(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = email.message_from_bytes(z.read("geo_risk-0.1.0.dist-info/METADATA"))
    requires = meta.get_all("Requires-Dist")
    cogeo = [r for r in requires if r.startswith("rio-cogeo")]
    assert cogeo and all('extra == "test"' in r for r in cogeo), cogeo
    assert any(r.startswith("torch") and "extra" not in r for r in requires)


def test_installed_wheel_finds_demo_config_and_data_from_any_folder(wheel, tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target), "COLUMNS": "400"}
    check = (
        "import geo_risk\n"
        "from geo_risk.config import default_config, load_config\n"
        f"assert geo_risk.__file__.startswith({str(target)!r}), geo_risk.__file__\n"
        "c = load_config(default_config())\n"
        "L = c.layers\n"
        "files = [c.grid.reference, *L.paths()]\n"
        "missing = [str(c.data_path(f)) for f in files if not c.data_path(f).is_file()]\n"
        "assert not missing, missing\n"
        "print(default_config())\n"
    )
    out = subprocess.run([sys.executable, "-c", check], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    bundled = target / "geo_risk" / "_bundled" / "configs" / "guadeloupe-demo.yaml"
    assert out.stdout.strip() == str(bundled)

    helped = subprocess.run([sys.executable, "-m", "geo_risk", "run", "--help"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0, helped.stderr
    assert str(bundled) in " ".join(helped.stdout.split())
