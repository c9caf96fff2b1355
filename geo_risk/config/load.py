"""Reading a YAML config (with command-line overrides) into a validated RunConfig, its errors one line
per key, the resolved config back as YAML, and where the bundled demo config lies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from geo_risk.config.run import RunConfig
from geo_risk_errors import ConfigError

DEFAULT_CONFIG = "configs/guadeloupe-demo.yaml"


def default_config() -> Path:
    """The demo config: the checkout's ``configs/`` when run from source (editable install), else the
    copy a regular install ships in ``geo_risk/_bundled/`` (beside its data, ``_bundled/data/``)."""
    source = Path(__file__).resolve().parents[2] / DEFAULT_CONFIG
    if source.is_file():
        return source
    return Path(str(resources.files("geo_risk").joinpath("_bundled", *DEFAULT_CONFIG.split("/"))))


def _override_labels(overrides: Mapping, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path, ``--set a.b=value``) for every leaf of an overrides mapping."""
    for k, v in overrides.items():
        key = (*prefix, str(k))
        if isinstance(v, Mapping) and v:
            yield from _override_labels(v, key)
        else:
            text = yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
            yield key, f"--set {'.'.join(key)}={text}"


def _format_errors(path: Path, err: ValidationError, labels: Mapping[tuple[str, ...], str]) -> str:
    """One line per error; an error caused by an override names the override, not the file."""
    lines, from_file = [], False
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        where = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key — check its spelling against {DEFAULT_CONFIG}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        given = [key for key in labels if loc[:len(key)] == key]  # overrides of this key or a parent
        inside = [lb for key, lb in labels.items() if key[:len(loc)] == loc and len(key) > len(loc)]
        if given:
            lines.append(f"  {labels[max(given, key=len)]}: {msg}")
        elif inside:
            from_file = True
            lines.append(f"  {where}: {msg} (with {', '.join(inside)})")
        else:
            from_file = True
            lines.append(f"  {where}: {msg}")
    head = f"invalid config {path}:" if from_file else "invalid command-line value:"
    return head + "\n" + "\n".join(lines)


def load_config(path: str | Path, overrides: dict | None = None, *,
                labels: Mapping[str, str] | None = None) -> RunConfig:
    """Read and validate a YAML run config; relative data paths resolve against its folder.

    ``overrides`` (nested like the YAML) replace the file's values; an invalid one is reported as
    ``--set key=value``, or by ``labels`` ({dotted key: how the user gave it}, e.g.
    ``{"output_dir": "--out x"}``) when the caller passes them for every override.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found — pass the path of a YAML config (e.g. {DEFAULT_CONFIG})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys at its top level")
    raw = _merge(raw, overrides or {})
    if isinstance(raw.get("data_dir", "."), str):  # anything else is refused by validation, below
        data_dir = Path(raw.get("data_dir", "."))
        raw["data_dir"] = data_dir if data_dir.is_absolute() else (path.parent / data_dir).resolve()
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        given = ({tuple(k.split(".")): v for k, v in labels.items()} if labels is not None
                 else dict(_override_labels(overrides or {})))
        raise ConfigError(_format_errors(path, e, given)) from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config_to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (paths as strings), for the run folder and checkpoints."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
