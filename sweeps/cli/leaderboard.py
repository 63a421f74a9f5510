"""The leaderboard as a plain-text table that fits the terminal (``ann-sweep``, ``ann-sweep-status``)."""

from __future__ import annotations

import math
import shutil
from typing import Any, Mapping, Sequence

from sweeps.core import vocabulary as V
from sweeps.core.names import short_number

#: Rows of the leaderboard printed at the end of a sweep.
LEADERBOARD_ROWS = 10

#: Headers of a table still too wide once the others gave way (a setting's short name or last part).
ABBREVIATIONS = {"activation": "act", "batch_size": "batch", "optimizer": "opt", "dropout": "drop",
                 "weight_decay": "wd", "momentum": "mom", "schedule": "sched", "accuracy/val": "acc", "r2/val": "r2"}


def table_cell(value: Any) -> str:
    """A leaderboard or progress value as printed: ``""`` for none, integers without ``.0``, 4 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.4g}"
        return short_number(value)
    return str(value)


def leaderboard_table(board, metrics: Sequence[str], limit: int | None = LEADERBOARD_ROWS,
                      full_run_ids: bool = False, width: int | None = None, reasons: bool = False) -> str:
    """The leaderboard as a plain-text table (the first ``limit`` rows) that fits ``width``
    characters (default: the terminal's width).

    The objective(s), then the validation score where it is not one (``accuracy/val``,
    ``r2/val``; blank for a pruned trial), then one column per searched setting, with the
    layer widths in one ``units`` column (``201-52``), then ``epochs`` and the ``fit`` label (``*``: still improving when it
    stopped, train longer). With ``reasons`` (``ann-sweep-status``) a last ``reason`` column
    says why a trial was pruned or failed, cut to fit. Too wide a table drops ``run_id``,
    then ``epochs``, then names a setting searched by its config path by its last part
    (``optimizer.weight_decay`` -> ``weight_decay``, ``training.schedule.name`` -> ``schedule``),
    then leaves out the settings that are the same in every row shown (a last line names them),
    then abbreviates the headers (:data:`ABBREVIATIONS`: ``batch_size`` -> ``batch``,
    ``accuracy/val`` -> ``acc``), then leaves out ``rank`` (the rows are in rank order).
    """
    if board is None or board.empty:
        return "(no trials)"
    if width is None:
        width = shutil.get_terminal_size((160, 40)).columns
    rows = board.head(limit) if limit else board
    cells, order, params = _cells(board, rows, metrics, full_run_ids)
    if reasons:
        cells["reason"] = [table_cell(v) for v in rows["reason"]]
        order.append("reason")
    headers, same = {c: c for c in order}, []
    if not reasons:
        order, headers, same = _narrowed(cells, order, params, width)
    text_columns = {"state", "fit", "run_id", "reason", "units", *params}
    widths = {c: max(len(headers[c]), *(len(v) for v in cells[c])) for c in order}
    if reasons:
        room = max(24, width - sum(widths[c] + 2 for c in order[:-1]) - 1)
        cells["reason"] = [v if len(v) <= room else v[: room - 1] + "…" for v in cells["reason"]]
        widths["reason"] = max(len("reason"), *(len(v) for v in cells["reason"]))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(widths[c]) if c in text_columns and not _numeric(v) else v.rjust(widths[c])
                         for c, v in zip(order, values)).rstrip()

    lines = [line([headers[c] for c in order]), "  ".join("-" * widths[c] for c in order)]
    lines += [line([cells[c][i] for c in order]) for i in range(len(rows))]
    if any(cell.endswith("*") for cell in cells["fit"]):
        lines.append("* still improving when it stopped: train longer")
    if same:
        shown = (f"{headers[c]} {cells[c][0] or '(unset)'}" for c in same)
        lines.append("the same in every row shown: " + ", ".join(shown))
    more = len(board) - len(rows)
    if more > 0:
        lines.append(f"... and {more} more (the parent run's leaderboard/leaderboard.csv has them all)")
    return "\n".join(lines)


def _cells(board, rows, metrics: Sequence[str], full_run_ids: bool) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Each column's cells, the columns in order, and the searched settings' columns."""
    scores = [c for c in V.LEADERBOARD_SCORES if c in board.columns and c not in metrics]
    fixed = {"rank", "trial", "state", *metrics, *scores, "epochs", "pruned_at_epoch", "fit", "fit_hint", "reason",
             "run_id", "run_name", "run_status", "model_uri", "seconds", "n_layers"}
    unit_columns = [c for c in board.columns if c.startswith("units_l") and c[7:].isdigit()]
    params = [c for c in board.columns if c not in fixed and c not in unit_columns]
    cells: dict[str, list[str]] = {"rank": [], "trial": [], "state": []}
    for column in (*metrics, *scores):
        cells[column] = [table_cell(v) for v in rows[column]]
    if unit_columns:
        cells["units"] = ["-".join(table_cell(v) for v in row if table_cell(v)) for row in rows[unit_columns].values]
    for column in params:
        cells[column] = [table_cell(v) for v in rows[column]]
    for column in ("rank", "trial", "state", "epochs"):
        cells[column] = [table_cell(v) for v in rows[column]]
    hints = rows["fit_hint"] if "fit_hint" in rows else [None] * len(rows)
    cells["fit"] = [table_cell(fit) + ("*" if isinstance(hint, str) and hint else "")
                    for fit, hint in zip(rows["fit"], hints)]
    cells["run_id"] = [v if full_run_ids or not isinstance(v, str) else v[:8] for v in rows["run_id"].map(table_cell)]
    order = ["rank", "trial", "state", *metrics, *scores, *(["units"] if unit_columns else []), *params, "epochs",
             "fit", "run_id"]
    return cells, order, params


def _narrowed(cells: Mapping[str, Sequence[str]], order: list[str], params: Sequence[str],
              width: int) -> tuple[list[str], dict[str, str], list[str]]:
    """``(columns, headers, settings left out as the same in every row)`` of a table that fits
    ``width``, each step taken only while it does not fit (see :func:`leaderboard_table`)."""
    headers, same = {c: c for c in order}, []
    for optional in ("run_id", "epochs"):
        if _table_width(cells, order, headers) <= width:
            return order, headers, same
        order = [c for c in order if c != optional]
    if _table_width(cells, order, headers) > width:
        headers.update(_short_headers(params))
    if _table_width(cells, order, headers) > width:
        same = [c for c in params if len(cells[c]) > 1 and len(set(cells[c])) == 1]
        order = [c for c in order if c not in same]
    if _table_width(cells, order, headers) > width:
        headers.update({c: ABBREVIATIONS[headers[c]] for c in order if headers[c] in ABBREVIATIONS})
    if _table_width(cells, order, headers) > width:
        order = [c for c in order if c != "rank"]  # the rows are in rank order
    return order, headers, same


def _table_width(cells: Mapping[str, Sequence[str]], order: Sequence[str], headers: Mapping[str, str]) -> int:
    return sum(max(len(headers[c]), *(len(v) for v in cells[c])) + 2 for c in order) - 2


def _short_headers(params: Sequence[str]) -> dict[str, str]:
    """The searched settings' short headers: a config path's last part (the one before a last
    ``name``); a path keeps its name when two would read the same."""
    short = {}
    for column in params:
        parts = column.split(".")
        short[column] = parts[-2] if len(parts) > 1 and parts[-1] == "name" else parts[-1]
    taken = list(short.values())
    return {column: name for column, name in short.items() if taken.count(name) == 1 and name not in params}


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
