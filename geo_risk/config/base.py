"""The base of every config model (unknown keys refused, frozen) and the refusal of old keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


def _refuse_old_keys(data, keys: tuple[str, ...], why: str):
    """A ``mode="before"`` validator body: refuse keys of an older config layout, saying what replaced them."""
    old = [k for k in keys if isinstance(data, dict) and k in data]
    if old:
        raise ValueError(f"{', '.join(old)}: {why}")
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
