"""What a study holds -- its trials with state, value and MLflow run, its orphans -- and reconciling them.

:func:`study_status` reads the Optuna storage and, when tracking is on, the MLflow
experiment of the sweep. Orphans are what a killed process leaves behind:

* **trials left RUNNING** -- a trial whose process died (SIGKILL, a lost machine) stays
  RUNNING in the storage until its heartbeat is found stale. While a sweep is running,
  its current trials are RUNNING too: the report gives each one's age, who runs it (host,
  pid, worker) and its run's status, so a stale one stands out.
* **runs without a trial** -- an MLflow run tagged with the study whose trial does not
  exist (the storage was reset while the runs stayed).
* **trials whose run is missing** -- a trial links to a run the tracking store lacks.

**Reconciling** (the default; ``reconcile=False`` / ``ann-sweep-status --dry-run`` only
says what it would do):

* a RUNNING trial whose heartbeat is older than ``sweep.grace_period`` is failed, and its
  re-run queued (``sweep.max_retries``), exactly as a sweep's worker would -- under the
  study's storage lock, so the trial counts stay exact (:mod:`sweeps.study.claims`);
* an MLflow run still RUNNING whose trial has ended (FAIL, PRUNED -- or stale, above) is
  ended KILLED (FINISHED for a COMPLETE trial), with ``sweep.state`` set to the trial's
  state and ``killed_by`` saying why; a FINISHED run whose trial did not complete (its
  worker stalled after the last epoch and the trial was failed meanwhile) is marked
  KILLED the same way; a run whose ``sweep.state`` tag is not its trial's state (a
  worker that lost the tracking server could not write it) is tagged. The run is
  matched to its trial by the run's own ``sweep.trial_number`` tag: a re-run of a trial
  is a new trial with a new run, so the dead worker's run keeps pointing at the trial
  that failed;
* the parent run of a complete study left RUNNING by a finisher that died is finished
  (leaderboard, plots, champion), unless its finisher is still alive.

Every change is listed in :attr:`StatusReport.reconciled`.

Reading creates nothing: a storage or tracking file that does not exist is reported (the
storage) or left out (the tracking store), never created empty. A tracking server is
probed first, with the same ``tracking.probe_timeout`` as ``ann-train``: one that does not
answer is a :class:`~sweeps.core.errors.TrackingError`, not hundreds of seconds of retries.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.study.claims import Coordinator, claim_of
from sweeps.study.finisher import finisher_label
from sweeps.study.leaderboard import leaderboard, trial_runs
from sweeps.study.parent import ParentRun
from sweeps.tracking import client as tracking
from sweeps.core.storage import absolute_path, sqlite_path, storage_kind
from sweeps.core.errors import UserError, one_line
from sweeps.core.redaction import redact


@dataclass
class StatusReport:
    study_name: str
    storage: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    counts: dict[str, int]
    finished: int
    leaderboard: Any                                  # pandas DataFrame (sweeps.study.leaderboard.leaderboard)
    parent_run_id: str | None = None
    experiment_id: str | None = None
    orphans: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)  # every study in the storage
    reconciled: list[str] = field(default_factory=list)  # what was (or, dry run, would be) changed


def study_status(settings: sweep_settings.SweepSettings, tracking_uri: str | None = None,
                 experiment_name: str | None = None, *, reconcile: bool = True,
                 probe_timeout: float = 5.0) -> StatusReport:
    """The report of study ``settings.study_name`` in ``settings.storage``, reconciled unless ``reconcile=False``.

    Raises:
        UserError: the storage does not exist, cannot be opened or holds no study of that name.
        TrackingError: the tracking store does not answer within ``probe_timeout`` seconds.
    """
    _check_storage_exists(settings)
    tracking_uri = _readable_tracking_store(tracking_uri, experiment_name, probe_timeout)
    study, names = _load_study(settings)
    metrics = tuple(study.user_attrs.get(V.ATTR_METRICS) or settings.metrics)
    directions = tuple(d.name.lower() for d in study.directions)
    if len(metrics) != len(directions):
        metrics = tuple(f"value_{i}" for i in range(len(directions))) if len(directions) > 1 else ("value",)
    stored = dataclasses.replace(settings, metrics=metrics, directions=directions)
    reconciled, stale_numbers = _fail_stale(settings, study, reconcile)
    parent_run_id = study.user_attrs.get(V.ATTR_PARENT_RUN)
    experiment_id = study.user_attrs.get(V.ATTR_EXPERIMENT)
    orphans: list[str] = []
    client, runs, experiment_id = _tracked_runs(settings, tracking_uri, experiment_name, experiment_id, orphans)
    trials = study.get_trials(deepcopy=False)
    by_number = {trial.number: trial for trial in trials}
    if client is not None and runs:
        reconciled += _reconcile_runs(client, runs, by_number, stale_numbers, reconcile)
    if client is not None and parent_run_id and experiment_id is not None:
        reconciled += _reconcile_parent(client, parent_run_id, experiment_id, study, stored, reconcile)
    board = leaderboard(study, stored, runs)
    orphans += _orphans(trials, runs, stale_numbers, checked=client is not None and experiment_id is not None)
    return StatusReport(
        study_name=settings.study_name, storage=settings.storage, metrics=metrics, directions=directions,
        counts=S.state_counts(study), finished=S.finished_count(study), leaderboard=board,
        parent_run_id=parent_run_id, experiment_id=experiment_id, orphans=orphans, studies=names,
        reconciled=reconciled,
    )


def _load_study(settings: sweep_settings.SweepSettings):
    """The study and the names of every study in the storage; a name it does not hold is a UserError."""
    storage = ST.open_sweep_storage(settings)
    names = sorted(optuna.study.get_all_study_names(storage))
    if settings.study_name not in names:
        held = ("one of " + ", ".join(names)) if names else "none: the storage holds no study yet"
        if settings.study_name.endswith("-tabular") and any(name.endswith("-mlp") for name in names):
            held += " (the studies of sweep=digits, the default sweep until 2026-12-01, are <dataset>-mlp: add sweep=digits)"
        raise UserError(
            f"sweep.study_name={settings.study_name!r} is not allowed: expected a study in "
            f"sweep.storage={redact(settings.storage)!r}: {held}"
        )
    return optuna.load_study(study_name=settings.study_name, storage=storage), names


def _fail_stale(settings: sweep_settings.SweepSettings, study, reconcile: bool) -> tuple[list[str], set[int]]:
    """Fail (or, without ``reconcile``, list) the trials whose heartbeat is stale: the lines and their numbers."""
    coordinator = Coordinator(settings, study)
    try:
        stale = _stale_trials(coordinator, study, reconcile)
    finally:
        coordinator.close()
    grace = settings.grace_seconds
    lines = [f"trial {trial.number} has had no heartbeat for more than {grace} s "
             f"({_who(claim_of(trial))}): {'failed' if reconcile else 'would be failed'}"
             + ("" if not settings.max_retries else f", its re-run queued (sweep.max_retries={settings.max_retries})")
             for trial in stale]
    return lines, {trial.number for trial in stale}


def _tracked_runs(settings, tracking_uri: str | None, experiment_name: str | None, experiment_id: str | None,
                  problems: list[str]):
    """``(client or None, the trial runs by id, the experiment id)``; a store that cannot be read is a problem."""
    if not tracking_uri:
        return None, {}, experiment_id
    client = MlflowClient(tracking_uri=tracking_uri)
    if experiment_id is None and experiment_name:
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment is not None else None
    runs: dict[str, Any] = {}
    if experiment_id is not None:
        try:
            runs = trial_runs(client, experiment_id, settings.study_name)
        except Exception as error:
            problems.append(f"the tracking store could not be read: {one_line(error, 200)}")
    return client, runs, experiment_id


def _orphans(trials, runs: dict[str, Any], stale_numbers: set[int], checked: bool) -> list[str]:
    """Trials left RUNNING, trials whose run is gone (``checked``: the store was read), runs without a trial."""
    now = datetime.datetime.now()
    orphans, linked, uids = [], set(), {}
    by_number = {trial.number: trial for trial in trials}
    for trial in trials:
        run_id = trial.user_attrs.get(V.TRIAL_RUN_ID)
        uid = trial.user_attrs.get(V.TRIAL_UID)
        if uid:
            uids[uid] = trial.number
        if run_id:
            linked.add(run_id)
        if trial.state.name == "RUNNING" and trial.number not in stale_numbers:
            age = now - trial.datetime_start if trial.datetime_start else None
            run = runs.get(run_id or "")
            if run is None and uid:
                run = next((r for r in runs.values() if r.data.tags.get(V.TAG_TRIAL_UID) == uid), None)
            run_status = run.info.status if run is not None else "no run"
            verdict = "orphaned" if run is not None and run.info.status != "RUNNING" else "running or orphaned"
            orphans.append(
                f"trial {trial.number} left RUNNING ({verdict}): started {_ago(age)} ago by {_who(claim_of(trial))}, "
                f"run {run.info.run_id if run else '-'} {run_status}"
            )
        if checked and run_id and runs and run_id not in runs:
            orphans.append(f"trial {trial.number} links to run {run_id}, which the tracking store does not hold")
    for run_id, run in runs.items():
        if run_id in linked or run.data.tags.get(V.TAG_TRIAL_UID) in uids or _number(run) in by_number:
            continue
        orphans.append(f"run {run_id} ({run.info.run_name}, {run.info.status}) has no trial: it says trial "
                       f"{run.data.tags.get(V.TAG_TRIAL, '?')}")
    return orphans


def _check_storage_exists(settings: sweep_settings.SweepSettings) -> None:
    """A storage file that does not exist holds no study: say so instead of creating it."""
    kind = storage_kind(settings.storage)
    path = (Path(absolute_path(settings.storage)) if kind == "journal"
            else sqlite_path(settings.storage) if kind == "sqlite" else None)
    if path is not None and not Path(absolute_path(path)).exists():
        raise UserError(f"sweep.storage={redact(settings.storage)!r} holds no study: the file {absolute_path(path)} "
                        "does not exist (give the sweep.storage that ann-sweep used)")


def _readable_tracking_store(uri: str | None, experiment_name: str | None, timeout: float) -> str | None:
    """``uri`` once it answered within ``timeout`` seconds; None for a SQLite file that does not exist."""
    if not uri:
        return None
    path = sqlite_path(uri) if storage_kind(uri) == "sqlite" else None
    if path is not None and not Path(absolute_path(path)).exists():
        return None
    tracking.probe(uri, timeout, experiment_name or "ann")
    return uri


def _stale_trials(coordinator, study, reconcile: bool) -> list:
    """RUNNING trials with a stale heartbeat: failed (and re-run queued) when reconciling."""
    if not coordinator.heartbeats:
        return []
    if reconcile:
        with coordinator.lock:
            return coordinator.fail_stale()
    try:  # a dry run: ask the storage which ones it would fail
        backend = getattr(ST.storage_of(study), "_backend", ST.storage_of(study))
        ids = set(backend._get_stale_trial_ids(study._study_id))
    except Exception:
        return []
    return [trial for trial in study.get_trials(deepcopy=False) if trial._trial_id in ids]


def _reconcile_parent(client, run_id: str, experiment_id: str, study, settings: sweep_settings.SweepSettings,
                      apply: bool) -> list[str]:
    """Finish the parent run of a complete study that was left RUNNING by a finisher that died.

    The election goes through the study's lock like a worker's
    (:meth:`sweeps.study.claims.Coordinator.elect_finisher`): a finisher still alive (its
    process on this host, its beat from another) keeps its job.
    """

    if S.finished_count(study) < settings.n_trials:
        return []
    try:
        parent = client.get_run(run_id)
    except Exception:
        return []  # reported among the orphans when the run is missing
    if parent.info.status != "RUNNING":
        return []
    coordinator = Coordinator(settings, study, worker=None)  # not a worker: the record names host and pid
    try:
        record = coordinator.finish_record()
        gone = (f"its finisher {finisher_label(record)} is gone" if record and not record.get("done")
                else "no worker finished it")
        if record and not record.get("done") and coordinator.finisher_alive(record):
            return []  # being finished right now
        if not apply:
            return [f"parent run {run_id} is RUNNING though all {settings.n_trials} trials are done ({gone}): "
                    "would be finished (leaderboard, plots, champion)"]
        if not coordinator.elect_finisher(lambda: client.get_run(run_id).info.status):
            return []
        task = parent.data.tags.get("task") or "multiclass"
        with coordinator.finishing():
            ParentRun(client, run_id, experiment_id, settings, task).finish(study, "FINISHED")
        return [f"parent run {run_id} was RUNNING though all {settings.n_trials} trials are done ({gone}): "
                "finished (leaderboard, plots, champion)"]
    finally:
        coordinator.close()


def _number(run) -> int | None:
    try:
        return int(run.data.tags.get(V.TAG_TRIAL))
    except (TypeError, ValueError):
        return None


def _reconcile_runs(client, runs: dict, by_number: dict, stale: set, apply: bool) -> list[str]:
    """Make each run of an ended trial say how its trial ended (see the module docstring).

    A run must not be RUNNING once its trial has ended, must not be FINISHED unless its
    trial is COMPLETE (a FAIL trial whose worker stalled after the last epoch keeps a
    finished run), and its ``sweep.state`` tag must be the trial's state (a worker that
    lost the tracking server could not write it).
    """
    done = []
    for run_id, run in sorted(runs.items(), key=lambda item: _number(item[1]) or -1):
        number = _number(run)
        trial = by_number.get(number)
        if trial is None:
            continue
        state = "FAIL" if number in stale else trial.state.name
        if state in ("RUNNING", "WAITING"):
            continue
        was, tag = run.info.status, run.data.tags.get(V.TAG_STATE)
        if state == "COMPLETE":
            status = "FINISHED" if was == "RUNNING" else was
        else:
            status = was if was in ("KILLED", "FAILED") else "KILLED"
        if status == was and tag == state:
            continue
        why = (trial.user_attrs.get(V.TRIAL_FAIL_REASON) or trial.user_attrs.get(V.TRIAL_PRUNE_REASON)
               or ("interrupted" if trial.user_attrs.get(V.TRIAL_INTERRUPTED) else None)
               or "no heartbeat: its worker died or stalled")
        before = "RUNNING" if was == "RUNNING" else f"{was} with sweep.state={tag or '-'}"
        change = f"marked {status}" if status != was else f"tagged sweep.state={state}"
        line = f"run {run_id} ({run.info.run_name}) was {before} but trial {number} is {state} ({why}): " + (
            change if apply else f"would be {change}")
        if apply:
            try:
                tags = {V.TAG_STATE: state}
                if status != was:
                    tags[V.TAG_KILLED_BY] = f"ann-sweep-status: trial {number} is {state} ({why})"
                tracking.set_tags(client, run_id, tags)
                if status != was:
                    tracking.terminate(client, run_id, status)
            except Exception as error:
                line = f"run {run_id} ({run.info.run_name}): could not be {change}: {' '.join(str(error).split())[:160]}"
        done.append(line)
    return done


def _who(claim: dict) -> str:
    if not claim:
        return "an unknown process"
    parts = [f"host {claim.get('host', '?')}", f"pid {claim.get('pid', '?')}"]
    if claim.get("worker") is not None:
        parts.append(f"worker {claim['worker']}")
    return " ".join(parts)


def _ago(delta: datetime.timedelta | None) -> str:
    if delta is None:
        return "?"
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
