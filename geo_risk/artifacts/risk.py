"""``risk.tif``'s tags and ``zone_risk.csv`` (written by predict, read by decide, evaluate and the map)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from geo_risk_errors import InputDataError
from tiles.atomic import atomic_file


# ---------------------------------------------------------------- risk.tif
@dataclass(frozen=True)
class RiskTags:
    """GDAL metadata tags of ``risk.tif`` that later stages read back."""

    description: str
    model: str
    run: str
    zone_fairness_lambda: float
    units: str = "probability"

    def to_tags(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str], path: Path) -> RiskTags:
        try:
            return cls(description=tags["description"], model=tags["model"], run=tags["run"],
                       zone_fairness_lambda=float(tags["zone_fairness_lambda"]), units=tags.get("units", "probability"))
        except (KeyError, ValueError) as e:
            raise InputDataError(f"{path} lacks the geo-risk tag {e} — it was not written by `geo-risk predict`; "
                                 "run `geo-risk predict CONFIG` again") from None


# ---------------------------------------------------------------- zone_risk.csv
#: per counted zone: pixels, mean risk of the model and of the map (after the fairness projection), offset
ZONE_TABLE_COLUMNS = ["zone_id", "name", "pixels", "mean_risk_model", "mean_risk_map", "logit_offset"]


def write_zone_table(path: Path, table: pd.DataFrame, atomic: bool = True) -> None:
    """Write ``zone_risk.csv``, columns in the documented order; atomically unless ``path`` is
    already a temporary path (``atomic=False``, e.g. one of ``tiles.atomic.atomic_files``)."""
    with atomic_file(path) if atomic else nullcontext(Path(path)) as tmp:
        table[ZONE_TABLE_COLUMNS].to_csv(tmp, index=False, float_format="%.6g")


def read_zone_table(path: Path) -> pd.DataFrame:
    """Read ``zone_risk.csv``; a clear error when it is missing a column."""
    try:
        table = pd.read_csv(path, dtype={"name": str}, keep_default_na=False, na_values={"name": []})
    except (OSError, pd.errors.ParserError) as e:
        raise InputDataError(f"{path} is unreadable ({e}) — run `geo-risk predict CONFIG` again") from e
    missing = [c for c in ZONE_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{path} lacks the columns {missing} — run `geo-risk predict CONFIG` again")
    return table[ZONE_TABLE_COLUMNS]
