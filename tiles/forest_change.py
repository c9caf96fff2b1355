"""Forest change in the formats users have, turned block by block into one canonical code raster.

Every format says, per pixel, in which of its years the pixel was forest. Over the format's years
``Y0 < Y1 < … < Yn`` each is turned into forestatrisk-style codes (``uint8``):

    0          not forest in Y0
    k (1..n)   forest in Y(k−1), not forest any more in Yk (lost in (Y(k−1), Yk])
    n + 1      still forest in Yn
    255        no data (a nodata value of the inputs, a cloud class…)

A period ``start → end`` (both years of the format) is then a set of codes (:func:`period_codes`):
forest at the start ``code > i``, loss during the period ``i < code ≤ j``, past loss
``h < code ≤ i`` (``Yi = start``, ``Yj = end``, ``Yh`` the start of the past-loss window). No
data counts as "not forest" in every derived layer, as forestatrisk's code 0 does, and is never
valid.

Formats (:mod:`tiles.forest_formats`; what each can and cannot express: ``docs/formats.md``):

* :class:`CodeTable` — a class raster and a value → code table: forestatrisk codes
  (:func:`forestatrisk_codes`), PRODES classes (:func:`prodes_table`);
* :class:`YearlyMasks` — one forest mask per year, separate files or bands of one file;
* :class:`HansenGFC` — Hansen GFC ``lossyear`` + ``treecover2000`` and a canopy threshold;
* :class:`LossMasks` — a forest mask in the first year and one binary loss mask per interval.

All work on dask blocks of the inputs read onto the grid with nearest resampling (NaN = nodata).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from geo_risk_errors import ConfigError
from tiles.errors import ForestChangeError
from tiles.forest_formats import (  # noqa: F401 — the formats are part of this module's interface
    MAX_YEARS,
    NODATA,
    NONFOREST,
    CodeTable,
    ForestChangeSpec,
    HansenGFC,
    LossMasks,
    RasterBand,
    YearlyMasks,
    forestatrisk_codes,
    prodes_table,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodCodes:
    """A transition start→end as sets of canonical codes (see the module docstring)."""

    name: str
    start_year: int
    end_year: int
    forest_codes: list[int]
    past_loss_codes: list[int]
    loss_codes: list[int]
    past_loss_start_year: int | None = None



def _years_text(years: tuple[int, ...]) -> str:
    if len(years) > 6 and list(years) == list(range(years[0], years[-1] + 1)):
        return f"every year from {years[0]} to {years[-1]}"
    return ", ".join(map(str, years))


def period_codes(fc: ForestChangeSpec, name: str, start: int, end: int, past_start: int | None = None,
                 where: str = "periods") -> PeriodCodes:
    """The codes of the period ``start → end`` of a forest-change format; refuses years it does not hold.

    Past loss is the loss during ``past_start → start``; by default a window as long as the period
    (forestatrisk's convention), shortened to the format's first year; none when the period starts
    in the first year.
    """
    years = fc.years
    held = {y: i for i, y in enumerate(years)}
    key = f"{where}.{name}"
    for label, y in (("start_year", start), ("end_year", end)):
        if y not in held:
            raise ConfigError(
                f"{key}.{label} {y}: {fc.where} (format {fc.format}) holds the forest state in "
                f"{_years_text(years)} only — give one of those years")
    if end <= start:
        raise ConfigError(f"{key}: end_year {end} must be after start_year {start}")
    i, j = held[start], held[end]
    if past_start is None:
        before = [y for y in years if y <= start - (end - start)]
        past_start = before[-1] if before else years[0]
    elif past_start not in held or past_start > start:
        raise ConfigError(
            f"{key}.past_loss_start_year {past_start}: give a year of {fc.where} ({_years_text(years)}) "
            f"not after the period's start {start}")
    h = held[past_start]
    n = len(years) - 1
    return PeriodCodes(
        name, start, end,
        forest_codes=list(range(i + 1, n + 2)),
        past_loss_codes=list(range(h + 1, i + 1)),
        loss_codes=list(range(i + 1, j + 1)),
        past_loss_start_year=past_start if h < i else None,
    )


def _per_block(fn, arrays: list[da.Array], width: int) -> np.ndarray:
    """Sum over blocks of ``fn(*blocks)``, which returns a (1, ``width``) int64 array per block."""
    chunks = arrays[0].chunks
    out = da.map_blocks(lambda *b: fn(*b).reshape(1, width), *arrays, dtype="int64",
                        chunks=((1,) * len(chunks[0]), (width,) * len(chunks[1])))
    return out.compute().reshape(len(chunks[0]), len(chunks[1]), width).sum(axis=(0, 1))


def _files(fc: ForestChangeSpec) -> str:
    paths = sorted({str(b.path) for b in fc.inputs})
    return paths[0] if len(paths) == 1 else "[" + ", ".join(paths) + "]"


def check_forest_change(fc: ForestChangeSpec, codes: da.Array, inputs: list[da.Array],
                        periods: list[PeriodCodes]) -> dict:
    """Count every code (one pass over the inputs) and refuse what cannot make a usable stack.

    Raises InputDataError when every pixel is nodata, or when a period has no forest at its start
    or no loss during it (the model would see no positive pixel); warns, with the count, about what
    the format cannot express (a yearly mask gaining forest, loss outside forest, values outside
    a class table). Returns a summary for the stack's attributes (forest pixels per year).
    """
    hist = _per_block(lambda c: np.bincount(c.ravel(), minlength=256), [codes], 256)
    total = int(hist.sum())
    files = _files(fc)
    if hist[NODATA] == total:
        raise ForestChangeError(
            f"layer '{fc.where}': every pixel of {files} on the grid is nodata — check that the file covers "
            "the region of the grid and that its nodata value is right (`gdalinfo -stats`)")
    n = len(fc.years) - 1
    forest_px = {str(y): int(hist[k + 1:n + 2].sum()) for k, y in enumerate(fc.years)}
    for p in periods:
        forest = int(hist[p.forest_codes].sum())
        loss = int(hist[p.loss_codes].sum())
        what = f"period '{p.name}' ({p.start_year}→{p.end_year})"
        if forest == 0:
            raise ForestChangeError(
                f"{what}: no pixel of {fc.where} ({files}, format {fc.format}) is forest in {p.start_year} — "
                f"check the period's years and {fc.where} (forest pixels per year: {forest_px})")
        if loss == 0:
            raise ForestChangeError(
                f"{what}: no pixel of {fc.where} ({files}, format {fc.format}) was lost between "
                f"{p.start_year} and {p.end_year}, so the model would have no positive pixel — check the "
                f"period's years and {fc.where} (forest pixels per year: {forest_px})")
    if isinstance(fc, YearlyMasks):
        gains = _per_block(fc.gains, inputs, n)
        for y, g in zip(fc.years[1:], gains):
            if g:
                log.warning("%s: %d pixel(s) are forest in the %d mask but not in an earlier one; yearly masks "
                            "express loss only, so they stay non-forest from their first non-forest year "
                            "(docs/formats.md)", fc.where, int(g), y)
    elif isinstance(fc, (HansenGFC, LossMasks)):
        width = 1 if isinstance(fc, HansenGFC) else n
        outside = _per_block(fc.loss_outside_forest, inputs, width)
        if outside.sum():
            where = ("below the canopy threshold in 2000" if isinstance(fc, HansenGFC)
                     else "outside the forest left at the interval's start")
            log.warning("%s: %d loss pixel(s) of %s lie %s and are ignored", fc.where, int(outside.sum()),
                        files, where)
    elif isinstance(fc, CodeTable):
        raw = inputs[0]
        values, counts = da.unique(da.where(da.isfinite(raw), raw, -1).astype("int64"), return_counts=True)
        values, counts = dask.compute(values, counts)
        extra = {int(v): int(c) for v, c in zip(values, counts) if v >= 0 and int(v) not in fc.table}
        if extra:
            log.warning("%s: values %s of %s are not in the format's table (%d pixel(s)); they count as "
                        "non-forest", fc.where, sorted(extra), files, sum(extra.values()))
    summary = {"forest_px": forest_px, "nodata_px": int(hist[NODATA]), "grid_px": total}
    log.info("%s (format %s; %s): forest pixels per year %s; %d pixel(s) nodata", fc.where, fc.format,
             _years_text(fc.years), forest_px, summary["nodata_px"])
    return summary
