"""The train and forecast periods: years of the forest-change layer."""

from __future__ import annotations

from pydantic import model_validator

from geo_risk.config.base import _Strict, _refuse_old_keys


class PeriodConfig(_Strict):
    """One transition start_year→end_year, years the forest-change layer holds. Past loss (the
    ``past_loss`` bands) is the loss during ``past_loss_start_year``→start_year: by default a window as
    long as the period, shortened to the first year the layer holds."""

    start_year: int
    end_year: int
    past_loss_start_year: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _codes_gone(cls, data):
        return _refuse_old_keys(data, ("forest_codes", "past_loss_codes", "loss_codes"),
                                "periods are years only since geo-risk 0.2 — the codes are derived from "
                                "layers.forest_change (give it a format:, docs/formats.md)")

    @model_validator(mode="after")
    def _order(self) -> PeriodConfig:
        if self.end_year <= self.start_year:
            raise ValueError(f"end_year {self.end_year} must be after start_year {self.start_year}")
        if self.past_loss_start_year is not None and self.past_loss_start_year > self.start_year:
            raise ValueError(f"past_loss_start_year {self.past_loss_start_year} must not be after start_year "
                             f"{self.start_year}")
        return self


class PeriodsConfig(_Strict):
    train: PeriodConfig
    forecast: PeriodConfig
