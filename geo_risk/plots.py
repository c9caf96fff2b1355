"""Figures people would rather look at than read: learning curves of a training run.

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot, so importing this
module never changes the backend of a notebook or script that imports geo-risk.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from losses import LOSS_PARTS
from tiles.atomic import atomic_file

PART_LABELS = {"accuracy": "accuracy (BCE)", "eco": "eco false negatives", "fairness": "zone fairness"}


def plot_learning_curves(rows: list[dict], path: Path) -> Path:
    """Loss parts (train) and validation loss / AUC / AP per epoch, as one PNG."""
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(13, 3.6), constrained_layout=True)
    ax_loss, ax_parts, ax_val = fig.subplots(1, 3)
    ax_loss.plot(epochs, [r["train_total"] for r in rows], "o-", label="train total")
    ax_loss.plot(epochs, [r["val_total"] for r in rows], "s-", label="validation total")
    ax_loss.set(title="composite loss", xlabel="epoch")
    ax_loss.legend()
    for part in LOSS_PARTS:
        ax_parts.semilogy(epochs, [max(r[f"train_{part}"], 1e-12) for r in rows], "o-", label=PART_LABELS[part])
    ax_parts.set(title="loss parts (unweighted, train)", xlabel="epoch")
    ax_parts.legend()
    ax_val.plot(epochs, [r["val_auc"] for r in rows], "o-", label="AUC")
    ax_val.plot(epochs, [r["val_ap"] for r in rows], "s-", label="average precision")
    ax_val.set(title="validation (held-out blocks)", xlabel="epoch", ylim=(0, 1))
    ax_val.legend()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
