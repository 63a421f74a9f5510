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
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

#: The metric shown next to the loss, per task.
PLOTTED_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
_LABELS = {"accuracy": "accuracy", "r2": "R²", "loss": "loss"}
_TICK_STEPS = (1, 2, 2.5, 5, 10)  # matplotlib's default tick spacings (1, 2, 2.5, 5 times a power of ten)


def learning_curve_figure(
    history: Mapping[str, Sequence[float]],
    task: str,
    best_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Two panels: loss and the task's metric per epoch, training vs validation.

    The best epoch (lowest validation loss) is marked with a dashed vertical line; one legend
    below the panels names the lines of both.

    Drawn in a sweep's helper process for every trial, so the figure avoids what costs the
    most in matplotlib and adds little (measured: ``tests/benchmarks/bench_plots.py``): a
    legend placed by ``loc="best"`` in each panel (a search over the data), a log axis's
    minor ticks and mathtext labels (``10^{-2}`` is parsed by pyparsing), more than about six
    ticks per axis, and the default PNG compression level.
    """
    metric = PLOTTED_METRIC.get(task, "accuracy")
    # A fixed layout: matplotlib's constrained layout would double the drawing time.
    figure = Figure(figsize=(11, 4.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    title_lines = title.count("\n") + 1 if title else 0
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.2, top=0.9 - 0.06 * title_lines, wspace=0.22)
    for ax, quantity in zip(axes, ("loss", metric)):
        for split, style in (("train", "-"), ("val", "--")):
            values = list(history.get(f"{split}_{quantity}", []))
            if not values:
                continue
            epochs = range(1, len(values) + 1)
            label = "training" if split == "train" else "validation"
            ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None, markersize=3, label=label)
        if best_epoch:
            ax.axvline(best_epoch, color="tab:red", linestyle=":", linewidth=1.5, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_LABELS.get(quantity, quantity))
        # An explicit y: the title sits on the axes (no ticks above them) without matplotlib
        # measuring every tick label to place it (a tenth of the drawing time; same pixels).
        ax.set_title(_LABELS.get(quantity, quantity), y=1.0)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=_TICK_STEPS, integer=True))
        curves = [v for split in ("train", "val") for v in history.get(f"{split}_{quantity}", [])]
        if quantity == "loss" and spans_decades(curves):
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
        else:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=_TICK_STEPS))
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda hl: len(hl[1]))
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def _plain_number(value: float, _position=None) -> str:
    """A log axis's tick label as a plain number (``0.01``), not mathtext (``10^{-2}``)."""
    return f"{value:g}"


def save_learning_curve(
    path: str | os.PathLike,
    history: Mapping[str, Sequence[float]],
    task: str,
    best_epoch: int | None = None,
    title: str | None = None,
) -> str:
    """Write the learning-curve PNG to ``path`` and return the path."""
    figure = learning_curve_figure(history, task, best_epoch, title)
    # Compression level 1 of 9: a quarter less encoding time than the default 6 here, about the same file size.
    figure.savefig(path, format="png", pil_kwargs={"compress_level": 1})
    return str(path)


def spans_decades(values: Iterable[float], factor: float = 100.0) -> bool:
    """Whether the positive finite ``values`` span more than ``factor`` (a log axis reads them better)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return bool(positive) and max(positive) / min(positive) > factor
