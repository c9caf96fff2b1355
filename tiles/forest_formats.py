"""The forest-change formats users have, each turned block by block into the canonical code raster
of :mod:`tiles.forest_change` (codes 0 non-forest, 1..n lost in an interval, n + 1 still forest,
255 no data; what each format can and cannot express: ``docs/formats.md``).

* :class:`CodeTable` — a class raster and a value → code table: forestatrisk codes
  (:func:`forestatrisk_codes`), PRODES classes (:func:`prodes_table`);
* :class:`YearlyMasks` — one forest mask per year, separate files or bands of one file;
* :class:`HansenGFC` — Hansen GFC ``lossyear`` + ``treecover2000`` and a canopy threshold;
* :class:`LossMasks` — a forest mask in the first year and one binary loss mask per interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo_risk_errors import ConfigError

NONFOREST = 0
NODATA = 255
MAX_YEARS = 253  # codes 1..n+1 must stay below NODATA


@dataclass(frozen=True)
class RasterBand:
    """One band of a raster file, read onto the grid with nearest resampling."""

    path: Path
    band: int = 1


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
