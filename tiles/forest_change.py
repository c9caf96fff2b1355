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

Formats (what each can and cannot express: ``docs/formats.md``):

* :class:`CodeTable` — a class raster and a value → code table: forestatrisk codes
  (:func:`forestatrisk_codes`), PRODES classes (:func:`prodes_table`);
* :class:`YearlyMasks` — one forest mask per year, separate files or bands of one file;
* :class:`HansenGFC` — Hansen GFC ``lossyear`` + ``treecover2000`` and a canopy threshold;
* :class:`LossMasks` — a forest mask in the first year and one binary loss mask per interval.

All work on dask blocks of the inputs read onto the grid with nearest resampling (NaN = nodata).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from geo_risk_errors import ConfigError
from tiles.errors import ForestChangeError

log = logging.getLogger(__name__)

NONFOREST = 0
NODATA = 255
MAX_YEARS = 253  # codes 1..n+1 must stay below NODATA


@dataclass(frozen=True)
class RasterBand:
    """One band of a raster file, read onto the grid with nearest resampling."""

    path: Path
    band: int = 1


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


def _check_years(years, where: str) -> tuple[int, ...]:
    years = tuple(int(y) for y in years)
    if len(years) < 2:
        raise ConfigError(f"{where}: give at least two years (a transition needs a start and an end)")
    if any(b <= a for a, b in zip(years, years[1:])):
        raise ConfigError(f"{where}: years {list(years)} must be strictly increasing")
    if len(years) > MAX_YEARS:
        raise ConfigError(f"{where}: at most {MAX_YEARS} years")
    return years


def _mask(block: np.ndarray, values) -> tuple[np.ndarray, np.ndarray]:
    """(set, known): where ``block`` holds one of ``values``, and where it is not NaN."""
    known = np.isfinite(block)
    return known & np.isin(np.where(known, block, -1).astype(np.int64), list(values)), known


@dataclass(frozen=True)
class CodeTable:
    """A class raster read through a table {raw value: canonical code}; unlisted values → 0.

    ``nodata_values``: raw values that mean "no data" besides the file's own nodata value.
    """

    source: RasterBand
    years: tuple[int, ...]
    table: dict[int, int]
    format: str = "codes"
    where: str = "layers.forest_change"

    @property
    def inputs(self) -> tuple[RasterBand, ...]:
        return (self.source,)

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("forest_change",)

    def codes(self, raw: np.ndarray) -> np.ndarray:
        known = np.isfinite(raw)
        values = np.where(known, raw, -1).astype(np.int64)
        keys = np.array(sorted(self.table), dtype=np.int64)
        out = np.full(raw.shape, NONFOREST, dtype=np.uint8)
        if keys.size:
            pos = np.clip(np.searchsorted(keys, values), 0, keys.size - 1)
            hit = keys[pos] == values
            out[hit] = np.array([self.table[k] for k in keys.tolist()], dtype=np.uint8)[pos[hit]]
        out[~known] = NODATA
        return out

    def unlisted(self, raw: np.ndarray) -> np.ndarray:
        """Per block: counts of values absent from the table, as a (value, count) 2-column array."""
        known = np.isfinite(raw)
        v, c = np.unique(raw[known].astype(np.int64), return_counts=True)
        keep = ~np.isin(v, list(self.table))
        return np.stack([v[keep], c[keep]], axis=1) if keep.any() else np.zeros((0, 2), np.int64)


def forestatrisk_codes(source: RasterBand, years, where: str = "layers.forest_change") -> CodeTable:
    """forestatrisk's convention over ``years`` Y0..Yn: 0 non-forest, k (1..n) lost in (Y(k−1), Yk], n+1 forest in Yn."""
    years = _check_years(years, f"{where}.years")
    n = len(years) - 1
    return CodeTable(source, years, {k: k for k in range(0, n + 2)}, "codes", where)


_PRODES_LOSS = re.compile(r"^d(\d{4})$", re.IGNORECASE)
_PRODES_NODATA = re.compile(r"^(cloud|nodata|no_data|no data)", re.IGNORECASE)


def prodes_table(source: RasterBand, classes: dict[int, str], where: str = "layers.forest_change",
                 last_year: int | None = None) -> CodeTable:
    """PRODES classes by their legend names: ``dYYYY`` lost in PRODES year YYYY (Aug YYYY−1 – Jul YYYY),
    ``Forest`` still forest in the last year, ``Cloud…``/``NoData`` no data, anything else non-forest.

    The years run from the year before the first ``dYYYY`` class to the last one (or ``last_year``).
    """
    loss = {}
    for value, name in classes.items():
        m = _PRODES_LOSS.match(str(name).strip())
        if m:
            loss[int(value)] = int(m.group(1))
    if not loss:
        raise ConfigError(f"{where}.classes: no class named dYYYY (deforestation in year YYYY) among "
                          f"{sorted(set(map(str, classes.values())))} — name the classes as PRODES' legend does")
    if not any(str(n).strip().lower() == "forest" for n in classes.values()):
        raise ConfigError(f"{where}.classes: no class named 'Forest' — name the class of remaining forest 'Forest'")
    first, last = min(loss.values()) - 1, max(loss.values())
    if last_year is not None:
        if last_year < last:
            raise ConfigError(f"{where}.last_year {last_year} is before the last deforestation class d{last}")
        last = last_year
    years = tuple(range(first, last + 1))
    index = {y: i for i, y in enumerate(years)}
    table = {}
    for value, name in classes.items():
        name = str(name).strip()
        if int(value) in loss:
            table[int(value)] = index[loss[int(value)]]
        elif name.lower() == "forest":
            table[int(value)] = len(years)
        elif _PRODES_NODATA.match(name):
            table[int(value)] = NODATA
        else:
            table[int(value)] = NONFOREST
    return CodeTable(source, _check_years(years, where), table, "prodes", where)


@dataclass(frozen=True)
class YearlyMasks:
    """One forest mask per year (``values`` mean forest). Forest only ever gets lost here: a pixel
    is forest in a year when it is forest in that year's mask and every earlier one; a mask that
    gains forest is counted (:meth:`gains`) and warned about."""

    masks: tuple[RasterBand, ...]
    years: tuple[int, ...]
    values: tuple[int, ...] = (1,)
    format: str = "yearly_masks"
    where: str = "layers.forest_change"

    @property
    def inputs(self) -> tuple[RasterBand, ...]:
        return self.masks

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f"forest_change.{y}" for y in self.years)

    def codes(self, *blocks: np.ndarray) -> np.ndarray:
        n = len(blocks) - 1
        out = np.full(blocks[0].shape, n + 1, dtype=np.uint8)
        still = np.ones(blocks[0].shape, dtype=bool)
        unknown = np.zeros(blocks[0].shape, dtype=bool)
        for k, b in enumerate(blocks):
            forest, known = _mask(b, self.values)
            unknown |= still & ~known  # a pixel already lost stays known whatever later masks say
            out[still & known & ~forest] = k  # k = 0: not forest in Y0
            still &= forest
        out[unknown] = NODATA
        return out

    def gains(self, *blocks: np.ndarray) -> np.ndarray:
        """Per block and year after the first: pixels forest in that mask but not in an earlier one."""
        seen_lost = np.zeros(blocks[0].shape, dtype=bool)
        counts = []
        for b in blocks:
            forest, known = _mask(b, self.values)
            counts.append(int((forest & seen_lost).sum()))
            seen_lost |= known & ~forest
        return np.array([counts[1:]], dtype=np.int64)


@dataclass(frozen=True)
class HansenGFC:
    """Hansen Global Forest Change: forest in 2000 = ``treecover2000 ≥ canopy_cover_pct``; ``lossyear``
    0 = no loss, v = lost during year 2000 + v. Years 2000..``last_year``; loss after it is none yet."""

    lossyear: RasterBand
    treecover2000: RasterBand
    canopy_cover_pct: float
    last_year: int
    format: str = "hansen"
    where: str = "layers.forest_change"

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(2000, self.last_year + 1))

    @property
    def inputs(self) -> tuple[RasterBand, ...]:
        return (self.lossyear, self.treecover2000)

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("forest_change.lossyear", "forest_change.treecover2000")

    def codes(self, lossyear: np.ndarray, treecover: np.ndarray) -> np.ndarray:
        n = self.last_year - 2000
        known = np.isfinite(lossyear) & np.isfinite(treecover)
        ly = np.where(known, lossyear, 0).astype(np.int64)
        forest = known & (np.where(known, treecover, 0) >= self.canopy_cover_pct)
        out = np.where(forest, np.where((ly >= 1) & (ly <= n), ly, n + 1), NONFOREST).astype(np.uint8)
        out[~known] = NODATA
        return out

    def loss_outside_forest(self, lossyear: np.ndarray, treecover: np.ndarray) -> np.ndarray:
        known = np.isfinite(lossyear) & np.isfinite(treecover)
        below = known & (np.where(known, treecover, 0) < self.canopy_cover_pct) & (np.where(known, lossyear, 0) > 0)
        return np.array([[int(below.sum())]], dtype=np.int64)


@dataclass(frozen=True)
class LossMasks:
    """A forest mask in ``years[0]`` and one binary loss mask per interval (years[k−1], years[k]]."""

    forest: RasterBand
    losses: tuple[RasterBand, ...]
    years: tuple[int, ...]
    forest_values: tuple[int, ...] = (1,)
    loss_values: tuple[tuple[int, ...], ...] = field(default_factory=tuple)
    format: str = "loss_masks"
    where: str = "layers.forest_change"

    @property
    def inputs(self) -> tuple[RasterBand, ...]:
        return (self.forest, *self.losses)

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("forest_change.forest",
                *(f"forest_change.loss_{a}_{b}" for a, b in zip(self.years, self.years[1:])))

    def _loss_values(self, k: int) -> tuple[int, ...]:
        return self.loss_values[k] if k < len(self.loss_values) else (1,)

    def codes(self, forest_block: np.ndarray, *loss_blocks: np.ndarray) -> np.ndarray:
        n = len(loss_blocks)
        forest, unknown = _mask(forest_block, self.forest_values)
        unknown = ~unknown
        out = np.where(forest, n + 1, NONFOREST).astype(np.uint8)
        still = forest.copy()
        for k, b in enumerate(loss_blocks):
            lost, known = _mask(b, self._loss_values(k))
            unknown |= still & ~known
            out[still & lost] = k + 1
            still &= ~lost
        out[unknown] = NODATA
        return out

    def loss_outside_forest(self, forest_block: np.ndarray, *loss_blocks: np.ndarray) -> np.ndarray:
        """Per block and mask: loss pixels where there was no forest any more (ignored)."""
        forest, _ = _mask(forest_block, self.forest_values)
        counts = []
        for k, b in enumerate(loss_blocks):
            lost, _ = _mask(b, self._loss_values(k))
            counts.append(int((lost & ~forest).sum()))
            forest &= ~lost
        return np.array([counts], dtype=np.int64)


ForestChangeSpec = CodeTable | YearlyMasks | HansenGFC | LossMasks


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
