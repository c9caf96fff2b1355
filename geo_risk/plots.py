"""Figures people would rather look at than read: learning curves of a training run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.pyplot as plt  # noqa: E402

from tiles.atomic import atomic_file  # noqa: E402


def plot_learning_curves(rows: list[dict], path: Path) -> Path:
    """Loss parts (train) and validation loss / AUC / AP per epoch, as one PNG."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_parts, ax_val) = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    ax_loss.plot(epochs, [r["train_total"] for r in rows], "o-", label="train total")
    ax_loss.plot(epochs, [r["val_total"] for r in rows], "s-", label="validation total")
    ax_loss.set(title="composite loss", xlabel="epoch")
    ax_loss.legend()
    for key, label in (("train_accuracy", "accuracy (BCE)"), ("train_eco", "eco false negatives"),
                       ("train_fairness", "zone fairness")):
        ax_parts.semilogy(epochs, [max(r[key], 1e-12) for r in rows], "o-", label=label)
    ax_parts.set(title="loss parts (unweighted, train)", xlabel="epoch")
    ax_parts.legend()
    ax_val.plot(epochs, [r["val_auc"] for r in rows], "o-", label="AUC")
    ax_val.plot(epochs, [r["val_ap"] for r in rows], "s-", label="average precision")
    ax_val.set(title="validation (held-out blocks)", xlabel="epoch", ylim=(0, 1))
    ax_val.legend()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
