"""The learning-curve figure of a run (matplotlib, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not
with ``pyplot``, so plotting needs no GUI backend and keeps no global state.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: The metric shown next to the loss, per task.
PLOTTED_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
_LABELS = {"accuracy": "accuracy", "r2": "R²", "loss": "loss"}


def learning_curve_figure(
    history: Mapping[str, Sequence[float]],
    task: str,
    best_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Two panels: loss and the task's metric per epoch, training vs validation.

    The best epoch (lowest validation loss) is marked with a dashed vertical line.
    """
    metric = PLOTTED_METRIC.get(task, "accuracy")
    # A fixed layout: matplotlib's constrained layout would double the drawing time.
    figure = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    title_lines = title.count("\n") + 1 if title else 0
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9 - 0.06 * title_lines, wspace=0.22)
    for ax, quantity in zip(axes, ("loss", metric)):
        drawn = False
        for split, style in (("train", "-"), ("val", "--")):
            values = list(history.get(f"{split}_{quantity}", []))
            if not values:
                continue
            epochs = range(1, len(values) + 1)
            label = "training" if split == "train" else "validation"
            ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None, markersize=3, label=label)
            drawn = True
        if best_epoch:
            ax.axvline(best_epoch, color="tab:red", linestyle=":", linewidth=1.5, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_LABELS.get(quantity, quantity))
        # An explicit y: the title sits on the axes (no ticks above them) without matplotlib
        # measuring every tick label to place it (a tenth of the drawing time; same pixels).
        ax.set_title(_LABELS.get(quantity, quantity), y=1.0)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(loc="best")
        curves = [v for split in ("train", "val") for v in history.get(f"{split}_{quantity}", [])]
        if quantity == "loss" and drawn and spans_decades(curves):
            ax.set_yscale("log")
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def save_learning_curve(
    path: str | os.PathLike,
    history: Mapping[str, Sequence[float]],
    task: str,
    best_epoch: int | None = None,
    title: str | None = None,
) -> str:
    """Write the learning-curve PNG to ``path`` and return the path."""
    figure = learning_curve_figure(history, task, best_epoch, title)
    figure.savefig(path, format="png")
    return str(path)


def spans_decades(values: Iterable[float], factor: float = 100.0) -> bool:
    """Whether the positive finite ``values`` span more than ``factor`` (a log axis reads them better)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return bool(positive) and max(positive) / min(positive) > factor
