"""What a study holds: its trials with state, value and MLflow run, and its orphans.

:func:`study_status` reads the Optuna storage and, when tracking is on, the MLflow
experiment of the sweep. Orphans are what a killed process leaves behind:

* **trials left RUNNING** -- a trial whose process died (SIGKILL, a lost machine) stays
  RUNNING in the storage. While a sweep is running, its current trials are RUNNING too:
  the report gives each one's age and its run's status, so a stale one stands out (a
  RUNNING trial whose run has ended is certainly orphaned). With
  ``sweep.heartbeat_interval`` set, Optuna fails such trials by itself.
* **runs without a trial** -- an MLflow run tagged with the study whose trial does not
  point to it (the trial was lost, or the storage was reset while the runs stayed).
* **trials whose run is missing** -- a trial links to a run the tracking store lacks.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

from sweeps import study as S
from sweeps.errors import UserError


@dataclass
class StatusReport:
    study_name: str
    storage: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    counts: dict[str, int]
    finished: int
    leaderboard: Any                                  # pandas DataFrame (sweeps.parent.leaderboard)
    parent_run_id: str | None = None
    experiment_id: str | None = None
    orphans: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)  # every study in the storage


def study_status(settings: S.SweepSettings, tracking_uri: str | None = None,
                 experiment_name: str | None = None) -> StatusReport:
    """The report of study ``settings.study_name`` in ``settings.storage``.

    Raises:
        UserError: the storage cannot be opened or holds no study of that name.
    """
    import optuna

    from sweeps.parent import leaderboard, trial_runs

    storage = S.open_storage(settings.storage)
    names = sorted(optuna.study.get_all_study_names(storage))
    if settings.study_name not in names:
        held = ("one of " + ", ".join(names)) if names else "none: the storage holds no study yet"
        raise UserError(
            f"sweep.study_name={settings.study_name!r} is not allowed: expected a study in "
            f"sweep.storage={S.redact(settings.storage)!r}: {held}"
        )
    study = optuna.load_study(study_name=settings.study_name, storage=storage)
    metrics = tuple(study.user_attrs.get(S.ATTR_METRICS) or settings.metrics)
    directions = tuple(d.name.lower() for d in study.directions)
    if len(metrics) != len(directions):
        metrics = tuple(f"value_{i}" for i in range(len(directions))) if len(directions) > 1 else ("value",)
    stored = dataclasses.replace(settings, metrics=metrics, directions=directions)

    runs: dict[str, Any] = {}
    parent_run_id = study.user_attrs.get(S.ATTR_PARENT_RUN)
    experiment_id = study.user_attrs.get(S.ATTR_EXPERIMENT)
    orphans: list[str] = []
    client = None
    if tracking_uri:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        if experiment_id is None and experiment_name:
            experiment = client.get_experiment_by_name(experiment_name)
            experiment_id = experiment.experiment_id if experiment is not None else None
        if experiment_id is not None:
            try:
                runs = trial_runs(client, experiment_id, settings.study_name)
            except Exception as error:
                orphans.append(f"the tracking store could not be read: {' '.join(str(error).split())[:200]}")
    board = leaderboard(study, stored, runs)

    now = datetime.datetime.now()
    linked: set[str] = set()
    uids = {}
    for trial in study.get_trials(deepcopy=False):
        run_id = trial.user_attrs.get(S.TRIAL_RUN_ID)
        uid = trial.user_attrs.get("sweep.trial_uid")
        if uid:
            uids[uid] = trial.number
        if run_id:
            linked.add(run_id)
        if trial.state.name == "RUNNING":
            age = now - trial.datetime_start if trial.datetime_start else None
            run = runs.get(run_id or "")
            if run is None and uid:
                run = next((r for r in runs.values() if r.data.tags.get("sweep.trial_uid") == uid), None)
            run_status = run.info.status if run is not None else "no run"
            verdict = "orphaned" if run is not None and run.info.status != "RUNNING" else "running or orphaned"
            orphans.append(
                f"trial {trial.number} left RUNNING ({verdict}): started {_ago(age)} ago, run {run.info.run_id if run else '-'} {run_status}"
            )
        if client is not None and run_id and runs and run_id not in runs and experiment_id is not None:
            orphans.append(f"trial {trial.number} links to run {run_id}, which the tracking store does not hold")
    for run_id, run in runs.items():
        uid = run.data.tags.get("sweep.trial_uid")
        if run_id in linked or (uid in uids):
            continue
        number = run.data.tags.get("sweep.trial_number", "?")
        orphans.append(f"run {run_id} ({run.info.run_name}, {run.info.status}) has no trial: it says trial {number}")
    counts = S.state_counts(study)
    return StatusReport(
        study_name=settings.study_name, storage=settings.storage, metrics=metrics, directions=directions,
        counts=counts, finished=S.finished_count(study), leaderboard=board, parent_run_id=parent_run_id,
        experiment_id=experiment_id, orphans=orphans, studies=names,
    )


def _ago(delta: datetime.timedelta | None) -> str:
    if delta is None:
        return "?"
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
