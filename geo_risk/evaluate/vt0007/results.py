"""What the VT0007 steps return: vulnerability classes, an allocation, a validation and its cell
table, one map's score over a period, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_risk.artifacts import ValidationErrors


@dataclass(frozen=True)
class VulnerabilityClasses:
    """A vulnerability map: class 1 (lowest risk) … ``n_classes`` (highest) on forest, 0 elsewhere.

    ``n_missing`` counts forest pixels the input left without a value (NaN distance or
    probability); they are put in class 1, the lowest risk, and every later score includes them.
    ``edges`` are the class boundaries (metres for the benchmark, fraction of the map's maximum
    probability for a model), ascending.
    """

    classes: np.ndarray
    n_classes: int
    n_missing: int
    edges: np.ndarray


@dataclass(frozen=True)
class Allocation:
    """A density map after VT0007's quantity adjustment.

    ``density_ha_per_pixel_yr``: ha/pixel/yr on forest, NaN elsewhere; it sums to
    ``allocated_ha_per_yr`` (= ``expected_ha_per_yr`` unless the map cannot hold it:
    ``shortfall_ha_per_yr`` > 0). No pixel exceeds ``cap_ha_per_pixel_yr`` = pixel area / years,
    i.e. a pixel can be lost at most once over the period. ``adjustment_ratio`` is the factor
    applied to the pixels left below the cap in the last pass; ``n_capped`` pixels sit at the cap.
    """

    density_ha_per_pixel_yr: np.ndarray
    expected_ha_per_yr: float
    allocated_ha_per_yr: float
    shortfall_ha_per_yr: float
    adjustment_ratio: float
    iterations: int
    n_capped: int
    cap_ha_per_pixel_yr: float
    n_unmatched: int
    years: float
    pixel_area_ha: float

    @property
    def predicted_ha(self) -> np.ndarray:
        """Predicted loss per pixel over the whole period (ha), NaN off forest."""
        return self.density_ha_per_pixel_yr * self.years


@dataclass(frozen=True)
class CellTable:
    """Per validation cell (only the cells kept): id, area, forest, observed/predicted ha, error."""

    cell_id: np.ndarray
    cell_area_ha: np.ndarray
    forest_ha: np.ndarray
    observed_ha: np.ndarray
    predicted_ha: np.ndarray

    @property
    def error_ha(self) -> np.ndarray:
        """Predicted minus observed hectares."""
        return self.predicted_ha - self.observed_ha


@dataclass(frozen=True)
class Validation(ValidationErrors):
    """Observed vs predicted loss over a grid of cells, and the errors VT0007/riskmapjnr report.

    The errors are :class:`geo_risk.artifacts.ValidationErrors` (one definition with metrics.json's
    :class:`~geo_risk.artifacts.CellErrors`): ``medae_ha`` (VT0007's criterion), ``medae_pct_cell``
    (median of |error| / cell area, %), ``mae_ha``, ``rmse_ha``, ``wrmse_ha`` (riskmapjnr: weights =
    cell forest area / total), ``r2`` (riskmapjnr and UDef-ARP: squared Pearson correlation of
    predicted and observed; NaN with fewer than two cells or no variation). ``n_dropped`` cells had
    too little forest. Adds the per-cell table.
    """

    cells: CellTable


@dataclass(frozen=True)
class PeriodScore:
    """One map scored over one period: the density it predicts and its validation.

    ``n_missing``: forest pixels the map left without a value, scored as its lowest class.
    """

    period: str
    allocation: Allocation
    validation: Validation
    n_missing: int


@dataclass(frozen=True)
class Verdict:
    """Whether a model may replace the benchmark (VT0007 §5.5): lower MedAE in both tests."""

    passes_fit: bool
    passes_prediction: bool
    benchmark_fit_medae_ha: float
    model_fit_medae_ha: float
    benchmark_prediction_medae_ha: float
    model_prediction_medae_ha: float

    @property
    def passes(self) -> bool:
        """True only if the model beats the benchmark in the fit test and in the prediction test."""
        return self.passes_fit and self.passes_prediction
