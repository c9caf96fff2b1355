"""`geo-risk` command line: one command per stage, and `run` for all of them."""

from __future__ import annotations

import errno
import functools
import importlib
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
import yaml

from geo_risk.config import RunConfig, default_config, load_config
from geo_risk_errors import ConfigError, GeoRiskError, OutputError

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
    help=f"YAML run config. Default: the bundled Guadeloupe demo, {default_config()}", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config value, e.g. --set train.epochs=1 (repeatable; values parsed as YAML).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder (overrides output_dir).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
SchedulerOpt = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Where dask work runs (overrides dask.scheduler): threads, synchronous, local_cluster, or "
    "the address of a running distributed scheduler, tcp://host:port (its workers must see the data and run "
    "folders at the same paths).", show_default=False)]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Rebuild tiles/ even when its config and inputs are unchanged (otherwise reused).")]


def parse_sets(sets: list[str] | None) -> dict:
    """['a.b=1', 'c=x'] → {'a': {'b': 1}, 'c': 'x'}; values are plain YAML (no tags)."""
    out: dict = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=1")
        try:
            parsed = yaml.safe_load(value)
        except yaml.constructor.ConstructorError:
            raise ConfigError(f"--set {item}: YAML tags (!!…) are not allowed — give a plain value, e.g. "
                              f"--set {key}=1, or quote text: --set {key}='{value}'") from None
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"--set {item}: the value is not valid YAML ({problem}) — fix it, or quote it "
                              f"to pass text: --set {key}='{value}'") from None
        if _has_empty_mapping(parsed):
            raise ConfigError(f"--set {item}: an empty mapping changes nothing — set the keys inside it, "
                              f"e.g. --set {key}.KEY=VALUE")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):  # a later --set a.b=… replaces an earlier --set a=…
                node[p] = {}
            node = node[p]
        node[parts[-1]] = parsed
    return out


def _has_empty_mapping(value) -> bool:
    return isinstance(value, dict) and (not value or any(_has_empty_mapping(v) for v in value.values()))


def _setup(config: Path | None, sets: list[str] | None, out: Path | None, verbose: bool,
           scheduler: str | None = None) -> RunConfig:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("pyogrio", "rasterio", "fiona", "numcodecs", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
    overrides = parse_sets(sets)
    labels = {item.partition("=")[0].strip(): f"--set {item}" for item in sets or []}
    if out is not None:
        overrides["output_dir"] = str(out)
        labels["output_dir"] = f"--out {out}"
    if scheduler is not None:
        overrides.setdefault("dask", {})
        if not isinstance(overrides["dask"], dict):  # --set dask=… : --scheduler replaces it
            overrides["dask"] = {}
        overrides["dask"]["scheduler"] = scheduler
        labels["dask.scheduler"] = f"--scheduler {scheduler}"
    cfg = load_config(config or default_config(), overrides, labels=labels)
    if cfg.run_dir.exists() and not cfg.run_dir.is_dir():
        given = f"--out {out}" if out is not None else f"output_dir {cfg.run_dir}"
        raise OutputError(f"{given}: {cfg.run_dir} is a file, not a folder — pass --out DIR naming a folder "
                          "(it is created if missing)")
    return cfg


_PERMISSION = "check its permissions (the run folder must be writable), or pass --out DIR to a folder you can write"
_FILE_IN_WAY = "a file stands where a folder is needed: move it away, or pass --out DIR naming a folder"
#: what to do about an OSError, by errno
_OS_FIXES = {
    errno.ENOSPC: "free disk space, or pass --out DIR on a disk with room",
    errno.EDQUOT: "free space within your disk quota, or pass --out DIR elsewhere",
    errno.EACCES: _PERMISSION,
    errno.EPERM: _PERMISSION,
    errno.EROFS: "the file system is read-only: pass --out DIR on a writable one",
    errno.EEXIST: _FILE_IN_WAY,
    errno.ENOTDIR: _FILE_IN_WAY,
    errno.EISDIR: "a folder stands where a file is needed: move it away, or pass another --out DIR",
}


def output_error(exc: OSError) -> OutputError:
    """An OSError that reached the stage boundary, as an error naming the path and the fix."""
    from tiles.atomic import target_of  # here: importing tiles pulls in rasterio and dask

    path = target_of(exc.filename) if exc.filename is not None else "a file"
    what = exc.strerror or str(exc)
    fix = _OS_FIXES.get(exc.errno, "check that path and the run folder (--out DIR), then run the stage again")
    return OutputError(f"cannot use {path}: {what} — {fix}")


def _crash_log(exc: BaseException) -> str:
    """Write the traceback to a log file outside the run folder; return its path (or why not)."""
    try:
        fd, path = tempfile.mkstemp(prefix=f"geo-risk-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(f"geo-risk {' '.join(sys.argv[1:])}\n\n")
            f.write("".join(traceback.format_exception(exc)))
        return path
    except OSError as e:
        return f"no file (cannot write in {tempfile.gettempdir()}: {e.strerror})"


def _guard(fn):
    """Run ``fn``; any error becomes one line on stderr and a nonzero exit, never a traceback."""
    try:
        return fn()
    except (typer.Exit, click.exceptions.Exit, click.ClickException, click.Abort):  # already handled
        raise
    except GeoRiskError as e:
        _fail(f"error: {e}", 2)
    except OSError as e:
        _fail(f"error: {output_error(e)}", 2)
    except KeyboardInterrupt:
        _fail("error: interrupted — the outputs of the interrupted stage were not written", 130)
    except Exception as e:
        msg = " ".join(str(e).split())
        msg = msg if len(msg) <= 300 else msg[:297] + "..."
        _fail(f"error: unexpected {type(e).__name__}: {msg} — full traceback in {_crash_log(e)}", 1)


def _fail(message: str, code: int):
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code) from None


def guarded(command):
    """A CLI command whose whole body runs inside :func:`_guard`."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return _guard(lambda: command(*args, **kwargs))
    return wrapper


STAGES = [
    ("tile", "geo_risk.tiling:run_tile",
     "Align every layer on the reference grid, derive distances/labels/zones, cut training chips."),
    ("train", "geo_risk.train:run_train",
     "Train the U-Net with the composite loss on the chips; calibrate; write model.pt."),
    ("predict", "geo_risk.predict:run_predict",
     "Seamless block inference over the forecast period with test-time views, zone-fairness projection "
     "(predict.lambda_fair); write risk.tif, uncertainty.tif (COGs) and zone_risk.csv."),
    ("decide", "geo_risk.decide:run_decide",
     "Minimum-expected-cost action per pixel under the config's budgets; write decision.tif, expected_cost.tif "
     "and decision_summary.json."),
    ("evaluate", "geo_risk.evaluate:run_evaluate",
     "Score the map over every forest pixel: AUC/AP/calibration/FOM, Verra VT0007 benchmark and validation, "
     "per-zone audit, decision value; write metrics.json, report.html, density.tif."),
    ("map", "geo_risk.pipeline:run_map", "Write map.html: an offline review map of risk, decisions and zones."),
]


def _stage_command(target: str, doc: str):
    """A CLI command running one stage (imported only when called, so --help stays fast)."""
    module, func = target.split(":")

    def command(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None, verbose: VerboseOpt = False,
                scheduler: SchedulerOpt = None):
        _guard(lambda: getattr(importlib.import_module(module), func)(_setup(config, set_, out, verbose, scheduler)))

    def tile_command(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None,
                     verbose: VerboseOpt = False, scheduler: SchedulerOpt = None, force: ForceOpt = False):
        _guard(lambda: getattr(importlib.import_module(module), func)(_setup(config, set_, out, verbose, scheduler),
                                                                      force=force))

    command = tile_command if func == "run_tile" else command
    command.__doc__ = doc
    return command


ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="Continue from the run folder's train_state.pt (written every epoch, and every "
    "train.checkpoint_every_steps steps) exactly where an interrupted run stopped; refused when it was written "
    "with another config or band set.")]


def train_command(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None, verbose: VerboseOpt = False,
                  resume: ResumeOpt = False):
    """Train the segmentation model with the composite loss on the chips; calibrate; write model.pt.
    Several processes or GPUs: torchrun --nproc_per_node=N -m geo_risk train CONFIG (docs/training.md)."""
    _guard(lambda: importlib.import_module("geo_risk.train").run_train(_setup(config, set_, out, verbose),
                                                                       resume=resume))


for _name, _target, _doc in STAGES:
    app.command(_name)(train_command if _name == "train" else _stage_command(_target, _doc))


@app.command()
@guarded
def run(config: ConfigArg = None, set_: SetOpt = None, out: OutOpt = None, verbose: VerboseOpt = False,
        scheduler: SchedulerOpt = None, force: ForceOpt = False):
    """All stages: tile → train → predict → decide → evaluate → map."""
    from geo_risk.pipeline import run_all

    summary = _guard(lambda: run_all(_setup(config, set_, out, verbose, scheduler), force=force))
    typer.echo(summary_text(summary))


def summary_text(summary) -> str:
    """What `geo-risk run` prints at the end: the forecast's scores, zones, timings and outputs."""
    m = summary.metrics
    z = m.zones
    if not z.count:
        zones = "no zones"
    elif z.mean_risk_std_before_projection is not None:
        zones = (f"zone-mean risk std {z.mean_risk_std_before_projection:.4f} → {z.mean_risk_std:.4f} over {z.count} "
                 f"zones (fairness projection, λ {z.projection_lambda_fair:g})")
    else:
        zones = f"zone-mean risk std {z.mean_risk_std:.4f} over {z.count} zones"
    b = m.baseline_distance_to_edge
    vt = m.vt0007
    if vt is None or vt.skipped or not vt.models:
        verra = f"VT0007: not run ({vt.skipped})" if vt is not None and vt.skipped else ""
    else:
        def verdict(v):
            return {True: "passes", False: "does not pass", None: "undetermined"}[v.passes]

        verra = "VT0007 (beats the distance-to-edge benchmark in both tests?): " + ", ".join(
            f"{v.name} {verdict(v)}" for v in vt.models)
    return (f"\nforecast {m.period}: AUC {m.model.auc:.3f}, AP {m.model.ap:.3f} "
            f"(distance-to-edge baseline: AUC {b.auc:.3f}, AP {b.ap:.3f}); {zones}\n"
            + (f"{verra}\n" if verra else "")
            + f"timings (s): {summary.timings_s}\n"
            f"outputs in {summary.run_dir}/: risk.tif uncertainty.tif decision.tif expected_cost.tif zone_risk.csv "
            "map.html report.html metrics.json density.tif model.pt config.yaml")
