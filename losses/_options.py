"""Validation of loss constructor options (shared by the functions and the modules)."""

from __future__ import annotations

import math
import numbers

from geo_risk_errors import LossInputError

FAIRNESS_KINDS = ("variance", "range", "fnr_parity")
ECO_FORMS = ("log", "linear")


def _number(name, value, ok, rule: str) -> None:
    try:
        good = math.isfinite(float(value)) and ok(float(value))
    except (TypeError, ValueError):
        good = False
    if not good:
        raise LossInputError(f"{name}={value!r}: {rule}")


def check_options(**opts) -> None:
    """Raise LossInputError for an invalid constructor option (only the names given)."""
    for name in ("lambda_eco", "lambda_fair"):
        if name in opts:
            _number(name, opts[name], lambda v: v >= 0, "weights must be finite and >= 0 (0 switches the term off).")
    if opts.get("fairness", "variance") not in FAIRNESS_KINDS:
        raise LossInputError(f"fairness={opts['fairness']!r} is unknown; use one of {FAIRNESS_KINDS}.")
    if opts.get("eco_form", "log") not in ECO_FORMS:
        raise LossInputError(f"eco_form={opts['eco_form']!r} is unknown; use one of {ECO_FORMS}.")
    for name, rule in (("min_zone_pixels", "valid pixels a zone needs to count"), ("num_zones", "max zone id + 1")):
        v = opts.get(name)
        if name in opts and (v is not None or name == "min_zone_pixels") and (
                isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise LossInputError(f"{name}={v!r}: must be an integer >= 1 ({rule}).")
    if opts.get("ema_momentum") is not None:
        _number("ema_momentum", opts["ema_momentum"], lambda v: 0 < v < 1,
                "must lie strictly between 0 and 1, or be None to disable smoothing.")
    if opts.get("pos_weight") is not None:
        _number("pos_weight", opts["pos_weight"], lambda v: v > 0, "must be a finite number > 0, or None.")
    if opts.get("focal_gamma") is not None:
        _number("focal_gamma", opts["focal_gamma"], lambda v: v >= 0, "must be a finite number >= 0, or None.")
