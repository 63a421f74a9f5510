"""The sweep's leaderboard: every trial as a row, best first, with its run's fit, status and reasons.

Written as ``leaderboard/leaderboard.csv`` on the parent run (:mod:`sweeps.study.parent`),
shown by ``ann-sweep`` and ``ann-sweep-status``; the "by fit" views pick their trials from it
(:mod:`sweeps.study.fit_view`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from sweeps.config.space import SETTINGS
from sweeps.config import sweep_settings
from sweeps.core import vocabulary as V
from sweeps.study import storage as ST

_STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "FAIL": 3, "WAITING": 4}


def quote(text: str) -> str:
    """``text`` inside single quotes of an MLflow search filter."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def trial_runs(client, experiment_id: str, study_name: str) -> dict[str, Any]:
    """The trial runs of a study by run id (all pages)."""
    runs: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{V.TAG_ROLE}` = 'trial' and tags.`{V.TAG_STUDY}` = '{quote(study_name)}'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            runs[run.info.run_id] = run
        token = page.token
        if not token:
            return runs


def leaderboard(study, settings: sweep_settings.SweepSettings, runs: Mapping[str, Any] | None = None):
    """Every trial as a row of a :class:`pandas.DataFrame`, best first.

    Columns: ``rank``, ``trial``, ``state``, the metric(s) (``loss/val``, ...), the
    validation score where it is not one of them (``accuracy/val`` or ``r2/val``:
    :data:`~sweeps.core.vocabulary.LEADERBOARD_SCORES`), the trial's params, ``epochs``,
    ``pruned_at_epoch``, ``fit``, ``reason`` (why it was pruned or failed, else the fit
    reason), ``run_id``, ``run_name``, ``run_status``, ``seconds``. Ordered COMPLETE (best value first), PRUNED (best first), RUNNING, FAIL.
    """
    import pandas as pd  # lazy: start-up time of the command lines

    runs = dict(runs or {})
    by_uid = {run.data.tags.get(V.TAG_TRIAL_UID): run for run in runs.values() if run.data.tags.get(V.TAG_TRIAL_UID)}
    trials = study.get_trials(deepcopy=False)
    retried_as = {origin: trial.number for trial in trials if (origin := ST.retried_from(trial)) is not None}
    param_names: list[str] = []
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        run = runs.get(attrs.get(V.TRIAL_RUN_ID) or "") or by_uid.get(attrs.get(V.TRIAL_UID) or "")
        rows.append(_row(trial, run, settings, retried_as.get(trial.number)))
        param_names += [name for name in trial.params if name not in param_names]
    param_names.sort(key=_param_order)
    scores = [name for name in V.LEADERBOARD_SCORES if name not in settings.metrics and any(name in row for row in rows)]
    columns = ["trial", "state", *settings.metrics, *scores, *param_names, "epochs", "pruned_at_epoch", "fit",
               "fit_hint", "reason", "run_id", "run_name", "run_status", "model_uri", "seconds"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        frame.insert(0, "rank", pd.Series(dtype="int64"))
        return frame
    first, direction = settings.metrics[0], settings.directions[0]
    order = frame["state"].map(lambda s: _STATE_ORDER.get(s, 9))
    value = pd.to_numeric(frame[first], errors="coerce")
    key = value if direction == "minimize" else -value
    frame = frame.assign(_order=order, _key=key.fillna(math.inf)).sort_values(["_order", "_key", "trial"])
    frame = frame.drop(columns=["_order", "_key"]).reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame



def _row(trial, run, settings: sweep_settings.SweepSettings, retried_as: int | None) -> dict[str, Any]:
    """One trial's leaderboard row (see :func:`leaderboard`)."""
    attrs = trial.user_attrs
    tags = run.data.tags if run is not None else {}
    row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
    row.update(zip(settings.metrics, trial.values or [None] * len(settings.metrics)))
    row.update(_score(attrs.get(V.TRIAL_METRICS) or {}))
    row.update(trial.params)
    row["epochs"] = attrs.get(V.TRIAL_EPOCHS)
    row["pruned_at_epoch"] = attrs.get(V.TRIAL_PRUNED_AT)
    row["fit"] = (tags.get(V.TAG_FIT) or attrs.get(V.TRIAL_FIT)
                  or (V.PRUNED if trial.state.name == "PRUNED" else None))
    row["fit_hint"] = tags.get(V.TAG_FIT_HINT)
    row["reason"] = _reason(trial, tags, retried_as)
    row["run_id"] = run.info.run_id if run is not None else attrs.get(V.TRIAL_RUN_ID)
    row["run_name"] = run.info.run_name if run is not None else None
    row["run_status"] = run.info.status if run is not None else None
    row["model_uri"] = attrs.get(V.TRIAL_MODEL_URI)
    duration = trial.duration
    row["seconds"] = round(duration.total_seconds(), 2) if duration is not None else None
    return row


def _score(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{"accuracy/val": ...}`` (or ``r2/val``) from a trial's recorded metrics: its folds' mean
    when cross-validated, else the value at its best epoch; ``{}`` if it recorded none."""
    for name in V.LEADERBOARD_SCORES:
        for key in (V.cv_metric(name, "mean"), V.best_metric(name)):
            if key in metrics:
                return {name: metrics[key]}
    return {}


def _reason(trial, tags: Mapping[str, str], retried_as: int | None) -> str | None:
    """Why the trial was pruned or failed (and what re-ran it, or what it re-runs), else its fit reason."""
    attrs = trial.user_attrs
    reason = (attrs.get(V.TRIAL_PRUNE_REASON) or attrs.get(V.TRIAL_FAIL_REASON)
              or ("interrupted" if attrs.get(V.TRIAL_INTERRUPTED) else None) or tags.get(V.TAG_FIT_REASON))
    if trial.state.name == "FAIL" and not reason:
        reason = "no heartbeat: its worker died or stalled"
    if retried_as is not None and trial.state.name == "FAIL":
        reason = f"{reason}; re-run as trial {retried_as}"
    origin = ST.retried_from(trial)
    if origin is not None:
        reason = f"re-run of trial {origin}" + (f": {reason}" if reason else "")
    return reason


def _param_order(name: str) -> tuple:
    """n_layers, units_l1, units_l2, ..., then the other settings in the order of sweeps.config.space.SETTINGS."""

    order = list(SETTINGS)
    if name.startswith("units_l") and name[7:].isdigit():
        return (order.index("units"), int(name[7:]))
    return (order.index(name) if name in order else len(order), 0)


