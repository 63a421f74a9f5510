"""The sweep-wide fit figures: the fit map and the curve overlay (matplotlib, no display needed).

* :func:`fit_map_figure`: every trial a point on the study's two most important searched
  parameters, coloured by fit label (:mod:`sweeps.study.fit_view`), pruned trials marked;
* :func:`curves_figure`: chosen trials' training and validation curves, coloured by label
  (log scale for a loss that spans decades);
* :func:`fit_pngs` draws both as the parent run's PNGs, :func:`fit_pngs_of` from data in
  memory (the tracking writer's helper process, while the sweep refits its champion).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sweeps.core import vocabulary as V
from sweeps.study import optuna_study as S
from sweeps.study.fit_view import FIT_COLOURS, label_counts, labels
from sweeps.training.plots import PLOTTED_METRIC, spans_decades

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------ fit map


def map_axes(study, param_names: Sequence[str]) -> list[str]:
    """The two of ``param_names`` that matter most (Optuna's importances), else the first two."""
    names = [name for name in param_names if name]
    if len(names) <= 2:
        return names
    try:
        # PED-ANOVA: fast, and defined with few completed trials.
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        with warnings.catch_warnings():  # PED-ANOVA's note that it ranks for low target values
            warnings.simplefilter("ignore", UserWarning)
            importances = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=lambda trial: sign * trial.values[0])
        ranked = [name for name in importances if name in names]
        if len(ranked) >= 2:
            return ranked[:2]
    except Exception as error:  # too few completed trials, a single-valued parameter, ...
        log.debug("parameter importances unavailable: %s", error)
    return names[:2]


def _axis_values(column: Sequence[Any], distribution) -> tuple[np.ndarray, list[str] | None, bool]:
    """Plot positions of a parameter's values, the category names (or None) and whether to use a log axis."""
    categories = getattr(distribution, "choices", None)
    if isinstance(distribution, optuna.distributions.IntDistribution) and not distribution.log \
            and distribution.high - distribution.low <= 10:
        categories = list(range(distribution.low, distribution.high + 1, distribution.step))  # a few counts: n_layers
    if categories is not None:
        names = [str(c) for c in categories]
        index = {name: i for i, name in enumerate(names)}
        positions = np.array([index.get(_category_name(v), np.nan) for v in column], dtype=float)
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(positions))
        return positions + jitter, names, False
    values = np.array([float(v) if v is not None else np.nan for v in column], dtype=float)
    return values, None, bool(getattr(distribution, "log", False))


def _category_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a pandas column of ints with a gap is float
    return str(value)


def fit_map_figure(study, board, title: str | None = None) -> Figure | None:
    """Each trial a point on the two most important searched parameters, coloured by fit label."""
    if board is None or board.empty:
        return None
    distributions: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            distributions.setdefault(name, distribution)
    # Conditional parameters (units_l2 exists only for two layers or more) would leave trials off the map.
    everywhere = [c for c in board.columns if c in distributions and board[c].notna().all()]
    axes_names = map_axes(study, everywhere)
    if not axes_names or not label_counts(board):  # nothing searched, or no trial with a label
        return None
    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.11, top=0.9)
    ax = figure.subplots()
    x, x_names, x_log = _axis_values(board[axes_names[0]].tolist(), distributions[axes_names[0]])
    if len(axes_names) > 1:
        y, y_names, y_log = _axis_values(board[axes_names[1]].tolist(), distributions[axes_names[1]])
    else:
        y, y_names, y_log = np.random.default_rng(1).uniform(-0.3, 0.3, len(x)), None, False
    trial_labels = labels(board)
    counts = label_counts(board)
    for label in V.LABEL_ORDER:
        rows = [i for i, value in enumerate(trial_labels) if value == label]
        if not rows:
            continue
        pruned = label == V.PRUNED
        style = {"marker": "x"} if pruned else {"marker": "o", "edgecolors": "black"}
        ax.scatter(x[rows], y[rows], s=40 if pruned else 70, c=FIT_COLOURS[label], linewidths=0.5,
                   label=f"{label} ({counts[label]})", zorder=2 if pruned else 3, **style)
        if not pruned:
            for i in rows:
                ax.annotate(str(int(board["trial"].iloc[i])), (x[i], y[i]), textcoords="offset points",
                            xytext=(5, 4), fontsize=7, color="dimgray")
    _format_axis(ax.xaxis, ax.set_xscale, axes_names[0], x_names, x_log)
    if len(axes_names) > 1:
        _format_axis(ax.yaxis, ax.set_yscale, axes_names[1], y_names, y_log)
    else:
        ax.set_yticks([])
    ax.set_xlabel(axes_names[0])
    ax.set_ylabel(axes_names[1] if len(axes_names) > 1 else "")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, title="fit (trials)")
    figure.suptitle(title or "Fit map: where trials over- and underfit")
    return figure


def _format_axis(axis, set_scale: Callable[[str], None], name: str, categories: list[str] | None, log: bool) -> None:
    if categories is not None:
        axis.set_ticks(range(len(categories)))
        axis.set_ticklabels(categories)
    elif log:
        set_scale("log")


# ----------------------------------------------------------------- curve overlay


def curves_figure(histories: Callable[[str, str], list[tuple[int, float]]], board, rows: Sequence[int], task: str,
                  title: str | None = None) -> Figure | None:
    """Training (solid) and validation (dashed) curves of the chosen trials, coloured by label.

    ``histories(run_id, metric)`` returns ``(step, value)`` pairs. Each validation curve
    ends with its trial number; the loss axis is logarithmic when it spans decades.
    """
    chosen = board.iloc[list(rows)]
    if chosen.empty:
        return None
    figure = Figure(figsize=(12, 5), dpi=100)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.86, wspace=0.18)
    axes = figure.subplots(1, 2)
    seen: list[str] = []
    for _, row in chosen.iterrows():
        label = row["fit"]
        colour = FIT_COLOURS.get(label, "tab:blue")
        if label not in seen:
            seen.append(label)
        for ax, quantity in zip(axes, _plotted(task)):
            for split, style in (("train", "-"), ("val", "--")):
                points = histories(row["run_id"], f"{quantity}/{split}")
                if not points:
                    continue
                steps, values = zip(*points)
                ax.plot(steps, values, style, color=colour, alpha=0.85, linewidth=1.4)
                if split == "val":
                    ax.annotate(f"t{int(row['trial'])}", (steps[-1], values[-1]), textcoords="offset points",
                                xytext=(3, 0), fontsize=9, color=colour, va="center")
    for ax, quantity in zip(axes, _plotted(task)):
        shown = {"r2": "R²"}.get(quantity, quantity)
        ax.set_xlabel("epoch")
        ax.set_ylabel(shown)
        ax.set_title(shown)
        ax.grid(True, alpha=0.3)
        if quantity == "loss" and spans_decades(v for line in ax.get_lines() for v in line.get_ydata()):
            ax.set_yscale("log")
        if quantity != "loss":
            _clip_score_axis(ax)
    handles = [Line2D([], [], color=FIT_COLOURS.get(label, "tab:blue"), linewidth=2.5, label=label) for label in seen]
    handles += [Line2D([], [], color="black", linestyle="-", label="training"),
                Line2D([], [], color="black", linestyle="--", label="validation")]
    axes[0].legend(handles=handles, loc="best", fontsize=9)
    figure.suptitle(title or "The best trial of each fit label, then the best overall: training vs validation")
    return figure


def _plotted(task: str) -> tuple[str, str]:
    """The overlay's two quantities: the loss and the task's score."""
    return "loss", PLOTTED_METRIC.get(task, "accuracy")


def curve_metrics(task: str) -> list[str]:
    """The metrics :func:`curves_figure` asks ``histories`` for."""
    return [f"{quantity}/{split}" for quantity in _plotted(task) for split in ("train", "val")]


# ------------------------------------------------------------------------ the parent run's PNGs


#: The parent run's fit figures, ``plots/<name>``.
CURVES_PNG, FIT_MAP_PNG = "top_trials_curves.png", "fit_map.png"


def fit_pngs(study, board, histories: Callable[[str, str], list[tuple[int, float]]], rows: Sequence[int],
             task: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The curve overlay of the leaderboard's ``rows`` and the fit map as PNG bytes, and the
    error of each figure that could not be drawn (one with nothing to show is left out)."""
    pngs: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    for name, draw in ((CURVES_PNG, lambda: curves_figure(histories, board, rows, task)),
                       (FIT_MAP_PNG, lambda: fit_map_figure(study, board))):
        try:
            figure = draw()
            if figure is not None:
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png")
                pngs[name] = buffer.getvalue()
        except Exception as error:  # noqa: BLE001 - one figure less is a warning, not a failed sweep
            errors[name] = f"{type(error).__name__}: {error}"
    return pngs, errors


def fit_pngs_of(trials, directions, board, curves: dict[tuple[str, str], list[tuple[int, float]]],
                rows: Sequence[int], task: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """:func:`fit_pngs` from data in memory -- finished ``FrozenTrial``s, the study's
    ``directions``, and the ``curves`` of the chosen runs by ``(run_id, metric)`` -- so that a
    process without the stores (:mod:`sweeps.tracking.helper`) can draw them."""
    study = S.in_memory_study(trials, directions)
    return fit_pngs(study, board, lambda run_id, metric: curves.get((run_id, metric), []), rows, task)


def _clip_score_axis(ax) -> None:
    """Keep a diverged trial's score (an R² of -1e6, say) from flattening every other curve."""
    low, high = ax.get_ylim()
    if low < -1.0:
        ax.set_ylim(max(low, -1.0), high)
