"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.json_types import JSONMapping

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn
    from matplotlib.figure import Figure


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: Sequence[JSONMapping], path: Path, note: str | None = None) -> Path | None:
    """Training loss per task and validation metrics per epoch."""
    if not history:
        return None
    plt = _pyplot()
    epochs = [record["epoch"] for record in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    tasks = sorted({task for record in history for task in record.get("train_losses", {})})
    for task in tasks:
        left.plot(epochs, [r["train_losses"].get(task, np.nan) for r in history], marker="o", label=f"train {task}")
        key = f"val/loss/{task}"
        if any(key in r.get("val", {}) for r in history):
            left.plot(epochs, [r["val"].get(key, np.nan) for r in history], ls="--", marker="x", label=f"val {task}")
    for name in sorted({name for record in history for name in record.get("extra_losses", {})}):
        # A schedule's extra losses (consistency, distillation) beside the task losses they are added to.
        left.plot(epochs, [r.get("extra_losses", {}).get(name, np.nan) for r in history], ls=":", marker=".",
                  label=f"extra {name}")
    left.set(xlabel="epoch", ylabel="unweighted loss", title="losses")
    left.set_yscale("log")
    left.legend()
    for key in sorted({k for r in history for k in r.get("val", {}) if "loss" not in k}):
        right.plot(epochs, [r["val"].get(key, np.nan) for r in history], marker="o", label=key.removeprefix("val/"))
    right.set(xlabel="epoch", ylabel="score", title="validation", ylim=(0, 1))
    right.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path, plt, note)


def weights_plot(history: Sequence[JSONMapping], path: Path, note: str | None = None) -> Path | None:
    """Effective task weight (``Weighting.effective_weights``) and unweighted training loss per task and epoch, side
    by side: how the weights evolve and what each task's loss does meanwhile (000's analysis)."""
    tasks = sorted({task for record in history for task in record.get("weights", {})})
    if not tasks:
        return None
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = [record["epoch"] for record in history]
    values = []
    for task in tasks:
        weights = [r.get("weights", {}).get(task, np.nan) for r in history]
        values += [w for w in weights if np.isfinite(w)]
        left.plot(epochs, weights, marker="o", label=task)
        right.plot(epochs, [r.get("train_losses", {}).get(task, np.nan) for r in history], marker="o", label=task)
    # Base weights like alpha = 0.001 put one task three decades under the other: a linear axis hides it at zero.
    if values and min(values) > 0 and max(values) / min(values) >= 20:
        left.set_yscale("log")
    left.set(xlabel="epoch", ylabel="effective weight", title="task weights")
    right.set(xlabel="epoch", ylabel="unweighted training loss", title="task losses")
    right.set_yscale("log")
    left.legend()
    right.legend()
    fig.tight_layout()
    return _save(fig, path, plt, note)


def confusion_plot(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, note: str | None = None) -> Path:
    """Row-normalised confusion matrix (reference rows, predicted columns) with counts."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="reference", title="scene confusion")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(counts[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _save(fig, path, plt, note)


#: Event-roll layout: label font size (points) and height of one class row (inches), so that 25 class names (001's
#: TUT set) are readable at the saved 100 dpi.
ROLL_LABEL_POINTS = 9
ROLL_ROW_INCHES = 0.2


def event_roll_plot(
    clip_ids: Sequence[str], scores: np.ndarray, targets: np.ndarray, labels: Sequence[str], hop_seconds: float,
    threshold: float | np.ndarray, path: Path, note: str | None = None,
) -> Path | None:
    """Reference roll, thresholded prediction and score for a few clips (one row of panels per clip).

    Reference and prediction sit side by side to compare; the score panels come last, next to their colour bar,
    which marks the decision threshold when it is one value for all classes.
    """
    if len(clip_ids) == 0:
        return None
    plt = _pyplot()
    n, n_labels = len(clip_ids), len(labels)
    height = n * (ROLL_ROW_INCHES * n_labels + 0.9) + 0.6
    fig, axes = plt.subplots(n, 3, figsize=(15, height), squeeze=False, sharex=True, layout="constrained")
    decisions = scores > np.asarray(threshold)
    extent = (0, scores.shape[1] * hop_seconds, n_labels - 0.5, -0.5)
    score_image = None
    for row, clip_id in enumerate(clip_ids):
        panels = ((targets[row], "reference", "Greys"), (decisions[row], "prediction", "Greys"),
                  (scores[row], "score", "viridis"))
        for col, (data, title, cmap) in enumerate(panels):
            ax = axes[row, col]
            image = ax.imshow(np.asarray(data, dtype=float).T, aspect="auto", interpolation="nearest", cmap=cmap,
                              vmin=0, vmax=1, extent=extent)
            if col == 2:
                score_image = image
            ax.set_yticks(range(n_labels), labels if col == 0 else [""] * n_labels, fontsize=ROLL_LABEL_POINTS)
            # Faint lines between class rows: the eye follows a row across the three panels.
            ax.set_yticks(np.arange(n_labels + 1) - 0.5, minor=True)
            ax.grid(which="minor", axis="y", color="0.85" if cmap == "Greys" else "0.35", linewidth=0.5)
            ax.tick_params(which="minor", length=0)
            ax.set_title(f"{clip_id}: {title}", fontsize=10)
            if row == n - 1:
                ax.set_xlabel("time (s)")
    bar = fig.colorbar(score_image, ax=axes[:, 2], pad=0.01, aspect=60)
    bar.set_label("event score (probability)")
    values = np.unique(np.asarray(threshold, dtype=float))
    if values.size == 1:
        bar.ax.axhline(float(values[0]), color="red", linewidth=1.5)
        bar.ax.text(1.05, float(values[0]), "threshold", transform=bar.ax.get_yaxis_transform(), color="red",
                    va="bottom", ha="left", fontsize=8, rotation=90)
    return _save(fig, path, plt, note)


def _save(fig: Figure, path: Path, plt: ModuleType, note: str | None = None) -> Path:
    if note:  # e.g. the data was a synthetic stand-in: say so on every figure that shows a number
        fig.suptitle(note, fontsize=9, color="firebrick")
        from matplotlib.layout_engine import TightLayoutEngine

        # A figure laid out by another engine (the event roll's colour bar) places the title itself.
        if fig.get_layout_engine() is None or isinstance(fig.get_layout_engine(), TightLayoutEngine):
            fig.tight_layout(rect=(0, 0, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
