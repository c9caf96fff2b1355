"""`geo-risk` command line: one command per stage, and `run` for all of them."""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from geo_risk.config import DEFAULT_CONFIG, RunConfig, load_config
from geo_risk_errors import ConfigError, GeoRiskError

app = typer.Typer(
    help=(
        "Deforestation-risk maps from regional rasters and vectors.\n\n"
        "Every command takes a YAML config (default: the bundled Guadeloupe demo) and works inside its "
        "run folder (`output_dir`). Stages in order: tile → train → predict → decide → evaluate → map; "
        "`run` does them all.\n\n"
        "Examples:\n\n"
        "  geo-risk run                                   # the demo, end to end\n\n"
        "  geo-risk run my-region.yaml --out runs/try2    # your region, another folder\n\n"
        "  geo-risk train --set train.epochs=8 --set loss.lambda_fair=0"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigArg = Annotated[Optional[Path], typer.Argument(
    help=f"YAML run config. Default: {DEFAULT_CONFIG} (the bundled demo region).", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config value, e.g. --set train.epochs=1 (repeatable; values parsed as YAML).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder (overrides output_dir).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def default_config() -> Path:
    """The demo config: in the working directory, else beside the installed sources."""
    here = Path(DEFAULT_CONFIG)
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[1] / DEFAULT_CONFIG


def parse_sets(sets: list[str] | None) -> dict:
    """['a.b=1', 'c=x'] → {'a': {'b': 1}, 'c': 'x'}."""
    out: dict = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=1")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _setup(config: Path | None, sets: list[str] | None, out: Path | None, verbose: bool) -> RunConfig:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("pyogrio", "rasterio", "fiona", "numcodecs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
    overrides = parse_sets(sets)
    if out is not None:
        overrides["output_dir"] = str(out)
    return load_config(config or default_config(), overrides)


def _guard(fn):
    try:
        return fn()
    except GeoRiskError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None


STAGES = [
    ("tile", "geo_risk.tiling:run_tile",
     "Align every layer on the reference grid, derive distances/labels/zones, cut training chips."),
    ("train", "geo_risk.train:run_train",
     "Train the U-Net with the composite loss on the chips; calibrate; write model.pt."),
    ("predict", "geo_risk.predict:run_predict",
     "Sliding-window inference over the forecast period, zone-fairness projection (predict.lambda_fair); "
     "write risk.tif (COG) and zone_risk.csv."),
    ("decide", "geo_risk.decide:run_decide",
     "Minimum-expected-cost action per pixel; write decision.tif and expected_cost.tif."),
    ("evaluate", "geo_risk.evaluate:run_evaluate",
     "AUC / AP of the forecast and of the distance-to-edge baseline; write metrics.json."),
    ("map", "geo_risk.pipeline:run_map", "Write map.html: an offline review map of risk, decisions and zones."),
]


def _stage_command(target: str, doc: str):
    """A CLI command running one stage (imported only when called, so --help stays fast)."""
    module, func = target.split(":")

    def command(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None, verbose: VerboseOpt = False):
        stage = getattr(importlib.import_module(module), func)
        _guard(lambda: stage(_setup(config, set_, out, verbose)))

    command.__doc__ = doc
    return command


for _name, _target, _doc in STAGES:
    app.command(_name)(_stage_command(_target, _doc))


@app.command()
def run(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None, verbose: VerboseOpt = False):
    """All stages: tile → train → predict → decide → evaluate → map."""
    from geo_risk.pipeline import run_all

    summary = _guard(lambda: run_all(_setup(config, set_, out, verbose)))
    m = summary["metrics"]
    z = m["zones"]
    before = z.get("mean_risk_std_before_projection")
    zones = (f"zone-mean risk std {before:.4f} → {z['mean_risk_std']:.4f} over {z['count']} zones "
             f"(fairness projection, λ {z['projection_lambda_fair']:g})"
             if before is not None else f"zone-mean risk std {z['mean_risk_std']:.4f} over {z['count']} zones")
    zones = zones if z["count"] else "no zones"
    typer.echo(
        f"\nforecast {m['period']}: AUC {m['model']['auc']:.3f}, AP {m['model']['ap']:.3f} "
        f"(distance-to-edge baseline: AUC {m['baseline_distance_to_edge']['auc']:.3f}, "
        f"AP {m['baseline_distance_to_edge']['ap']:.3f}); {zones}\n"
        f"timings (s): {summary['timings_s']}\n"
        f"outputs in {summary['run_dir']}/: risk.tif decision.tif expected_cost.tif zone_risk.csv map.html "
        "metrics.json model.pt config.yaml"
    )


def main() -> None:  # pragma: no cover
    sys.exit(app())
