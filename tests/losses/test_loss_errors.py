"""Every invalid option or input raises LossInputError with a message that says what to fix."""

import ast
import pathlib

import pytest
import torch

from geo_risk_errors import GeoRiskError, LossInputError
from losses import CompositeLoss, ZoneFairnessLoss, masked_bce

SHAPE = (2, 1, 4, 4)


def inputs(**over):
    args = {"logits": torch.zeros(SHAPE), "label": torch.ones(SHAPE), "valid": torch.ones(SHAPE, dtype=torch.bool),
            "eco": torch.ones(SHAPE), "zone": torch.ones(SHAPE, dtype=torch.long)}
    args.update(over)
    return args


def raises(match, fn, *args, **kwargs):
    with pytest.raises(LossInputError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, (GeoRiskError, ValueError))
    return str(info.value)


@pytest.mark.parametrize("name", ["label", "valid", "eco", "zone"])
def test_shape_mismatch_names_tensor_and_both_shapes(name):
    bad = torch.zeros(2, 1, 4, 5, dtype=torch.long if name == "zone" else torch.float32)
    msg = raises(name, CompositeLoss(), **inputs(**{name: bad}))
    assert "(2, 1, 4, 5)" in msg and "(2, 1, 4, 4)" in msg and "(N, 1, H, W) or (N, H, W)" in msg


def test_logits_with_several_channels_rejected():
    raises(r"logits has shape \(2, 3, 4, 4\)", CompositeLoss(), **inputs(logits=torch.zeros(2, 3, 4, 4)))


def test_zone_must_be_integer_dtype():
    raises("integer dtype", CompositeLoss(), **inputs(zone=torch.ones(SHAPE)))


def test_negative_eco_weights():
    eco = torch.ones(SHAPE)
    eco[0, 0, 1, 1] = -0.5
    raises(r"eco has negative .* must be >= 0", CompositeLoss(), **inputs(eco=eco))


def test_negative_zone_ids():
    zone = torch.ones(SHAPE, dtype=torch.long)
    zone[1, 0, 2, 2] = -1
    raises(r"zone has negative ids .* must be >= 0", CompositeLoss(), **inputs(zone=zone))


def test_zone_id_beyond_num_zones():
    raises(r"zone has id 7 .* num_zones >= 8", CompositeLoss(num_zones=3), **inputs(zone=torch.full(SHAPE, 7)))


def test_label_outside_0_1():
    raises(r"label has values outside \[0, 1\]", masked_bce, torch.zeros(SHAPE), torch.full(SHAPE, 255),
           torch.ones(SHAPE))


@pytest.mark.parametrize("name", ["lambda_eco", "lambda_fair"])
def test_negative_lambda(name):
    raises(f"{name}=-0.1: weights must be finite and >= 0", CompositeLoss, **{name: -0.1})


def test_unknown_fairness_kind():
    raises(r"fairness='gini' is unknown; use one of \('variance', 'range', 'fnr_parity'\)", CompositeLoss,
           fairness="gini")


def test_unknown_eco_form():
    raises(r"eco_form='square' is unknown; use one of \('log', 'linear'\)", CompositeLoss, eco_form="square")


@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_min_zone_pixels_below_one(value):
    raises("min_zone_pixels=.*: must be an integer >= 1", CompositeLoss, min_zone_pixels=value)


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.2])
def test_ema_momentum_outside_open_unit_interval(value):
    raises("ema_momentum=.*: must lie strictly between 0 and 1", ZoneFairnessLoss, ema_momentum=value)


def test_other_options():
    raises("pos_weight=0: must be a finite number > 0", CompositeLoss, pos_weight=0)
    raises("focal_gamma=-1: must be a finite number >= 0", CompositeLoss, focal_gamma=-1)
    raises("num_zones=0: must be an integer >= 1", CompositeLoss, num_zones=0)
    int_logits = torch.zeros(SHAPE, dtype=torch.long)
    raises("logits must be a floating-point tensor", CompositeLoss(), **inputs(logits=int_logits))


PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "losses"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_package_is_torch_only_and_never_asserts(path):
    tree = ast.parse(path.read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and not node.level}
    assert not roots & {"rasterio", "geopandas", "xarray", "dask", "rioxarray", "numpy"}
    assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree))
    assert len(path.read_text().splitlines()) <= 210
