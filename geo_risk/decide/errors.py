"""What the decision stage refuses (errors) and what it only warns about."""

from __future__ import annotations

from geo_risk_errors import InputDataError


class DecisionInputError(InputDataError, ValueError):
    """A probability array, a cost array or a budget given to a decision rule cannot be used."""


class CostMatrixError(DecisionInputError):
    """Costs of the wrong shape, non-numeric, NaN, infinite or negative."""


class BudgetError(DecisionInputError):
    """A budget that is negative, not a number, names no action, or leaves no action free of budget."""


class DecisionLayerError(DecisionInputError):
    """A layer the decision reads besides risk.tif (a cost layer, uncertainty.tif) is missing, on
    another grid, or holds unusable values."""


class DecisionWarning(UserWarning):
    """Legal but probably not meant: an action never chosen, a budget that can never bind."""
