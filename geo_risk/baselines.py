"""Baselines in the box: distance to forest edge, forestatrisk's GLM and gradient boosting.

Every baseline sees what the U-Net sees, one pixel at a time and without spatial context:

* **pixels** — sampled from the valid pixels of the chip store's ``train`` chips (the training
  period and the spatial blocks the U-Net trained on); every grid pixel counts once even where
  chips overlap. The ``val`` chips give the gradient-boosting model its early stopping;
* **covariates** — the stack's bands after the U-Net's own normalisation
  (:func:`tiles.chips.normalise` with the chip store's ``band_stats``: distances log1p, then
  standardised); bands constant over the sampled pixels (``forest``, ``past_loss``: fixed on
  forest pixels by construction) are left out;
* **sampling** — case-control: every positive is kept (up to half the cap), negatives fill the
  rest; the models are fitted on the sample as drawn and their logits shifted by
  ``log(rate_negative / rate_positive)`` (the prior correction, exact by Bayes' rule for any
  classifier), so the maps are probabilities of the full population. ``PixelSample.weight``
  records the inverse inclusion rates.

The three baselines (:data:`BASELINES`):

``distance_to_edge``  a logistic curve of the (normalised log) distance to the forest edge at the
                      period's start — a strictly monotone map of that distance, so it ranks
                      pixels exactly as the distance does (the VT0007 benchmark's covariate).
``glm``               forestatrisk's GLM without its spatial random effect (no iCAR term): a
                      binomial logistic regression on every informative band, scikit-learn
                      ``LogisticRegression(solver="lbfgs")`` as forestatrisk fits its ``glm``.
``gbm``               ``HistGradientBoostingClassifier``, early-stopped on the validation pixels.

:func:`score_baselines` maps fitted baselines over a period of the stack block by block (dask),
NaN off the valid pixels; :func:`fit_and_score` does it all for a run folder. docs/baselines.md
says why and measures the baselines against the U-Net on the demo.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from geo_risk.config import RunConfig
from geo_risk.paths import RunPaths
from geo_risk.pixel_sample import MAX_PIXELS, PixelSample, sample_pixels  # noqa: F401  (re-exported)
from geo_risk_errors import ChipStoreError, InputDataError
from tiles.bands import DIST_EDGE
from tiles.chips import normalise
from tiles.store import open_store

#: the baselines, in the order they are fitted and reported
BASELINES: tuple[str, ...] = ("distance_to_edge", "glm", "gbm")
#: one line per baseline, for tables and reports
DESCRIPTIONS: dict[str, str] = {
    "distance_to_edge": "distance to forest edge (a logistic curve of it: same ranking)",
    "glm": "GLM à la forestatrisk (logistic regression, no iCAR spatial effect)",
    "gbm": "gradient boosting (scikit-learn HistGradientBoostingClassifier)",
}
Model = LogisticRegression | HistGradientBoostingClassifier


# -------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FittedBaseline:
    """One fitted baseline: a scikit-learn model on some of the store's bands, prior-corrected."""

    name: str
    bands: tuple[str, ...]  # covariates used, in the model's column order
    columns: tuple[int, ...]  # their positions among the store's bands
    model: Model
    logit_offset: float  # prior correction added to the model's logit
    fit_seconds: float
    iterations: int  # solver iterations (GLM) or boosting rounds kept (GBM)

    def logit(self, features: np.ndarray) -> np.ndarray:
        """Population logit of (n, C) normalised features holding every store band."""
        x = np.asarray(features, dtype=np.float64)[:, list(self.columns)]
        return self.model.decision_function(x) + self.logit_offset

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probability of loss (float32) of (n, C) normalised features holding every store band."""
        return expit(self.logit(features)).astype(np.float32)

    @property
    def coefficients(self) -> dict[str, float]:
        """Per-band coefficient of a logistic model (normalised covariates); empty for the GBM."""
        if not isinstance(self.model, LogisticRegression):
            return {}
        return {b: float(v) for b, v in zip(self.bands, self.model.coef_[0])}


@dataclass(frozen=True)
class Baselines:
    """The fitted baselines and what they were fitted on."""

    bands: tuple[str, ...]  # every band of the chip store, in order (what ``FittedBaseline.columns`` index)
    stats: dict[str, dict]  # the chip store's normalisation statistics
    models: dict[str, FittedBaseline]
    train_pixels: int
    train_positives: int
    val_pixels: int
    seed: int

    def __getitem__(self, name: str) -> FittedBaseline:
        return self.models[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)


def informative_bands(sample: PixelSample) -> tuple[str, ...]:
    """Bands that vary over the sampled pixels (the others carry no information for a per-pixel model)."""
    spread = sample.features.max(axis=0) - sample.features.min(axis=0) if len(sample) else np.zeros(len(sample.bands))
    return tuple(b for b, s in zip(sample.bands, spread) if s > 1e-6)


def _check_fit(sample: PixelSample, bands: Sequence[str]) -> list[int]:
    if len(sample) == 0 or sample.label.min() == sample.label.max():
        raise InputDataError(f"the '{sample.split}' pixels of the chip store hold {int(sample.label.sum())} lost "
                             f"of {len(sample)} pixels: a baseline needs both lost and kept forest — "
                             "tile a region or period with observed loss")
    unknown = [b for b in bands if b not in sample.bands]
    if unknown or not bands:
        raise InputDataError(f"baseline covariates {list(bands)}: {unknown or 'none given'} not among the chip "
                             f"store's bands {list(sample.bands)}")
    return [sample.bands.index(b) for b in bands]


def fit_glm(sample: PixelSample, bands: Sequence[str] | None = None, *, name: str = "glm",
            C: float = 1.0) -> FittedBaseline:
    """forestatrisk's GLM (no spatial random effect): logistic regression on ``bands`` (default:
    every informative band), fitted on the sample as drawn, then prior-corrected."""
    bands = tuple(bands) if bands is not None else informative_bands(sample)
    cols = _check_fit(sample, bands)
    t0 = time.perf_counter()
    model = LogisticRegression(solver="lbfgs", C=C, max_iter=1000)
    model.fit(sample.features[:, cols].astype(np.float64), sample.label)
    return FittedBaseline(name, bands, tuple(cols), model, sample.logit_offset, time.perf_counter() - t0,
                          int(np.max(model.n_iter_)))


def fit_distance_to_edge(sample: PixelSample) -> FittedBaseline:
    """Distance to the forest edge at the period's start, made a probability by a one-covariate
    logistic curve: a strictly monotone map of the distance, so its ranking is the distance's."""
    return fit_glm(sample, (DIST_EDGE,), name="distance_to_edge")


def fit_gbm(sample: PixelSample, val: PixelSample | None = None, *, seed: int = 0,
            bands: Sequence[str] | None = None, learning_rate: float = 0.1, max_iter: int = 1000,
            max_leaf_nodes: int = 31, min_samples_leaf: int = 20, n_iter_no_change: int = 20) -> FittedBaseline:
    """Histogram gradient boosting on ``bands`` (default: every informative band).

    Early stopping on log loss over the validation pixels, weighted so their class mix is the
    training sample's; without validation pixels holding both classes, 100 rounds and no early
    stopping (scikit-learn's own early stopping would hold out random, spatially leaking pixels).
    """
    bands = tuple(bands) if bands is not None else informative_bands(sample)
    cols = _check_fit(sample, bands)
    use_val = val is not None and len(val) > 0 and val.label.min() != val.label.max()
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate, max_iter=max_iter if use_val else 100, max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf, early_stopping=use_val, scoring="loss",
        n_iter_no_change=n_iter_no_change, random_state=seed,
    )
    extra = {}
    if use_val:
        missing = [b for b in bands if b not in val.bands]
        if missing:
            raise InputDataError(f"validation pixels lack the bands {missing}")
        w = np.where(val.label == 1, sample.rate_positive / val.rate_positive,
                     sample.rate_negative / val.rate_negative)
        extra = dict(X_val=val.features[:, [val.bands.index(b) for b in bands]], y_val=val.label,
                     sample_weight_val=w)
    t0 = time.perf_counter()
    model.fit(sample.features[:, cols], sample.label, **extra)
    return FittedBaseline("gbm", bands, tuple(cols), model, sample.logit_offset, time.perf_counter() - t0,
                          int(model.n_iter_))


def fit_baselines(train: PixelSample, val: PixelSample | None = None, *, seed: int = 0,
                  names: Sequence[str] = BASELINES) -> Baselines:
    """Fit the baselines ``names`` (default: all of :data:`BASELINES`, in that order) on the same training pixels."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        raise InputDataError(f"unknown baselines {unknown or 'none given'}: choose among {list(BASELINES)}")
    fitters = {
        "distance_to_edge": lambda: fit_distance_to_edge(train),
        "glm": lambda: fit_glm(train),
        "gbm": lambda: fit_gbm(train, val, seed=seed),
    }
    models = {n: fitters[n]() for n in BASELINES if n in names}
    return Baselines(bands=train.bands, stats=train.stats, models=models, train_pixels=len(train),
                     train_positives=int(train.label.sum()), val_pixels=len(val) if val is not None else 0,
                     seed=seed)


# -------------------------------------------------------------------------------------- scoring
def _score_block(features: np.ndarray, valid: np.ndarray, *, models: tuple[FittedBaseline, ...],
                 bands: list[str], stats: dict) -> np.ndarray:
    """(len(models), h, w) float32 probabilities of one (C, h, w) block; NaN where not valid."""
    m = valid[0].astype(bool)
    out = np.full((len(models),) + m.shape, np.nan, dtype=np.float32)
    if m.any():
        x = normalise(features[:, m][:, :, None], bands, stats)[:, :, 0].T  # (n, C)
        for i, f in enumerate(models):
            out[i][m] = f.predict_proba(x)
    return out


def score_baselines(baselines: Baselines, period: xr.Dataset) -> xr.DataArray:
    """Lazy probability maps (baseline, y, x) float32 of one period of the stack, NaN off its valid pixels.

    ``period`` is the stack with one period selected (``stack.sel(period="forecast")``), normalised
    with the statistics the baselines were fitted with. Computed block by block over the stack's chunks
    (dask ``map_blocks``), each block read once for every baseline, so memory does not grow with
    the region; ``.compute()`` or ``.to_zarr()`` the result.
    """
    bands = list(baselines.bands)
    have = [str(b) for b in period.band.values]
    missing = [b for b in bands if b not in have]
    if missing:
        raise InputDataError(f"the stack lacks the bands {missing} the baselines were fitted on — tile and fit again")
    feats = period["features"].sel(band=bands).data
    feats = feats.rechunk({0: -1})
    valid = period["valid"].data.rechunk(feats.chunks[1:])[None]
    models = tuple(baselines.models.values())
    probs = da.map_blocks(
        partial(_score_block, models=models, bands=bands, stats=baselines.stats), feats, valid,
        dtype=np.float32, chunks=((len(models),),) + feats.chunks[1:],
    )
    return xr.DataArray(probs, dims=("baseline", "y", "x"),
                        coords={"baseline": list(baselines.names), "y": period.y, "x": period.x},
                        name="probability")


# ------------------------------------------------------------------------------------- run folder
@dataclass(frozen=True)
class BaselineMaps:
    """The baselines of a run folder fitted on its training period and mapped over ``period``."""

    period: str
    maps: dict[str, np.ndarray]  # name → (y, x) float32 probability, NaN off the period's valid pixels
    fitted: Baselines
    score_seconds: float
    fit_seconds: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.maps[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.maps)


def fit_run_baselines(paths: RunPaths, *, max_pixels: int = MAX_PIXELS, seed: int = 0,
                      names: Sequence[str] = BASELINES) -> Baselines:
    """Sample a run folder's chip store (train; val, a quarter as many, for early stopping) and fit the baselines.

    The validation pixels are drawn only when the GBM is among ``names`` (nothing else uses them).
    """
    train = sample_pixels(paths.chips, "train", max_pixels, seed)
    val = None
    if "gbm" in names:
        try:
            val = sample_pixels(paths.chips, "val", max(2, max_pixels // 4), seed + 1)
        except ChipStoreError:
            val = None
    return fit_baselines(train, val, seed=seed, names=names)


def fit_and_score(cfg: RunConfig, *, period: str = "forecast", max_pixels: int = MAX_PIXELS,
                  seed: int | None = None) -> BaselineMaps:
    """Fit the baselines on the run folder's training chips and map them over ``period`` of its stack.

    ``seed`` defaults to ``cfg.train.seed``. Needs ``<run>/tiles/`` (``geo-risk tile``).
    """
    seed = cfg.train.seed if seed is None else seed
    return fit_and_score_run(cfg.run_dir, period=period, max_pixels=max_pixels, seed=seed)


def fit_and_score_run(run_dir: Path, *, period: str = "forecast", max_pixels: int = MAX_PIXELS,
                      seed: int = 0) -> BaselineMaps:
    """:func:`fit_and_score` given the run folder alone (what scripts use on any run's ``tiles/``)."""
    paths = RunPaths(Path(run_dir))
    fitted = fit_run_baselines(paths, max_pixels=max_pixels, seed=seed)
    stack = open_store(paths.stack, "layer stack")
    if period not in [str(p) for p in stack.period.values]:
        raise InputDataError(f"the layer stack {paths.stack} has no period '{period}'")
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        probs = score_baselines(fitted, stack.sel(period=period)).values
    return BaselineMaps(
        period=period, maps={name: probs[i] for i, name in enumerate(fitted.names)}, fitted=fitted,
        score_seconds=time.perf_counter() - t0,
        fit_seconds={name: m.fit_seconds for name, m in fitted.models.items()},
    )
