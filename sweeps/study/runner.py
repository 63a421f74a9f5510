"""Running a sweep: validate everything, open the study, run the trials, finish the parent run.

:func:`prepare` checks the whole configuration before anything is started -- the search
space, the sweep settings, the training config, the data, the tracking store -- and
:func:`run_sweep` then

1. opens the Optuna storage and creates the study, or resumes it toward ``n_trials``
   (trials that count: see :func:`sweeps.study.optuna_study.counts_toward_budget`; numbering continues);
2. finds or creates the MLflow parent run (:mod:`sweeps.study.parent`);
3. runs trials: in this process (``sweep.workers=1``) or in ``workers`` processes of
   their own, each with its own worker number (handed out by the study, so that other
   ``ann-sweep`` processes joining the same study get others), sampler seed
   (``sweep.seed + worker``) and ``cores // workers`` BLAS threads. Every trial is
   claimed through the storage (:mod:`sweeps.study.claims`), so the study ends with exactly
   ``n_trials`` counted trials however many processes, on however many machines, run it;
4. stops starting trials after ``sweep.timeout`` seconds, when a grid is exhausted, when
   more than ``sweep.max_failures`` trials failed in this process, or when the tracking
   server has not answered for ``sweep.outage_wait`` seconds;
5. finishes the parent run: leaderboard, plots, curve overlay, champion model -- done
   once, by the first process that sees the study complete (or, when the sweep stops
   early, by the last process still running trials).
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from sweeps.config import sweep_settings
from sweeps.config.compose import compose_sweep as compose  # noqa: F401 - the public API: compose, prepare, run_sweep
from sweeps.config.run_spec import build_run_spec, to_container
from sweeps.config.space import SearchSpace
from sweeps.config.space_parse import check_space_unchanged, parse_space
from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError
from sweeps.core.faults import StorageOutage
from sweeps.study import optuna_study as S
from sweeps.study import storage as ST
from sweeps.study.claims import Coordinator
from sweeps.study.objective import STOP, Objective, TrackingOutage
from sweeps.study.leaderboard import leaderboard, trial_runs
from sweeps.study.parent import ParentRun
from sweeps.study.registry import registered_champion
from sweeps.study.data_scaled import resolve_cv_folds, scale_to_data
from sweeps.study.parent_setup import open_parent
from sweeps.study.prepared import PreparedSweep  # noqa: F401 - public here too: prepare() returns it
from sweeps.study.refit import check_refit, refit_and_log
from sweeps.study.cv_folds import prepare_folds
from sweeps.study.workers import POLL_SECONDS, Budget, Progress, progress_of, run_workers, work
from sweeps.tracking import client as tracking
from sweeps.tracking import helper
from sweeps.training.data import build_model, prepare_data

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------- prepare


def prepare(cfg, overrides: Sequence[str] = ()) -> PreparedSweep:
    """Check the sweep's config (a composed ``ann_sweep`` config) without starting anything.

    Raises:
        UserError / ConfigError: one line naming the key at fault.
    """
    config = to_container(cfg)
    section = config.get("sweep")
    if not isinstance(section, Mapping):
        raise ConfigError("sweep", section, "a config group: choose one with sweep=<option> (e.g. sweep=digits)")
    settings = sweep_settings.parse_settings(section)
    space = parse_space(section.get("params"))
    base = {key: value for key, value in config.items() if key != "sweep"}
    data = prepare_data(build_run_spec(base))
    task, n_train = data.task, len(data.train)
    cv_line = resolve_cv_folds(section, n_train + data.n_val, len(settings.metrics))
    if cv_line:  # sweep.cv_folds=auto, now a number (or null) in the section: the settings again, from it
        settings = sweep_settings.parse_settings(section)
    folds, refit_line = prepare_folds(settings, section, data, build_run_spec(base))
    n_train = min(len(fold.train) for fold in folds) if folds else n_train  # a trial's training rows
    space, chosen = scale_to_data(section, space, base, n_train)  # sweep.epochs=auto; batch sizes checked
    spec = build_run_spec(base)
    build_model(spec, folds[0] if folds else data)  # the base config itself must be trainable on this data
    sweep_settings.check_metrics_for_task(settings, task, data.val is not None or bool(folds))
    check_refit(settings, spec)
    chosen += cv_line + refit_line
    if data.dataset.encoding is not None:  # a CSV's text columns and empty cells (param dataset.encoding too)
        chosen.append(f"dataset {data.dataset.name}: {data.dataset.encoding.summary()}")
    space.check_conditions(base)
    enqueued = _enqueued(section.get("enqueue"), space)
    if settings.sampler == "grid":
        space.grid()
    if spec.tracking.enabled:
        tracking.probe(spec.tracking.uri, spec.tracking.probe_timeout, spec.tracking.experiment_name)
    user_overrides = [o for o in overrides if not o.lstrip("+~").startswith("sweep") and not o.startswith("hydra")]
    return PreparedSweep(
        config=config, base=base, settings=settings, space=space, spec=spec, data=data, task=task,
        epochs=int(base["training"].get("epochs", 100)), n_train=n_train, overrides=user_overrides,
        enqueued=enqueued, chosen=chosen,
    )


def _enqueued(entries: Any, space: SearchSpace) -> list[dict[str, Any]]:
    """``sweep.enqueue``: parameter sets (Optuna parameter names) to run before any sampled trial."""
    if entries is None:
        return []
    if isinstance(entries, Mapping):
        entries = [entries]
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ConfigError("sweep.enqueue", entries, "a list of parameter sets, e.g. [{n_layers: 2, units_l1: 128, units_l2: 64, lr: 0.003}]")
    return [space.check_enqueued(entry, f"sweep.enqueue[{index}]") for index, entry in enumerate(entries)]


# ---------------------------------------------------------------------------- sweep

#: The parent run is refreshed at least every ``refresh_every`` trials, and at most once per
#: this share of the trials already finished.
REFRESH_SHARE = 0.1


def refresh_interval(finished: int, every: int) -> int:
    """Finished trials between two refreshes of the parent run: ``max(every, 10 % of finished)``.

    A refresh reads and writes every trial's row (O(n)); spacing them in proportion to the
    study's size keeps their total cost O(n), so a trial costs the same in a study of 1,000
    as in one of 10.
    """
    return max(every, int(finished * REFRESH_SHARE))



@dataclass
class SweepOutcome:
    """What a sweep did."""
    study_name: str
    storage: str
    resumed: bool
    finished_before: int
    progress: Progress
    status: str                       # FINISHED, FAILED (failure budget) or KILLED
    stop_reason: str | None
    seconds: float
    leaderboard: Any = None           # pandas DataFrame
    parent_run_id: str | None = None
    experiment_id: str | None = None
    registered: tuple[str, str] | None = None
    epochs_total: int = 0
    failures: int = 0
    worker_errors: list[str] = field(default_factory=list)
    finished_parent: bool = False     # this process ended the parent run (else: another worker does)
    first_worker: int = 0             # this process's first worker number in the study
    finished_by: dict = field(default_factory=dict)  # who finished the parent run (its sweep.finished record), if another
    refit: dict | None = None         # the champion retrained on training + validation rows (sweep.refit)


def run_sweep(prepared: PreparedSweep, *, progress: Callable[[Progress], None] | None = None,
              started: Callable[[dict], None] | None = None) -> SweepOutcome:
    """Run the sweep (see the module docstring).

    Args:
        progress: called with a :class:`~sweeps.study.workers.Progress` at the start and after every trial.
        started: called once the study and the parent run are known, with ``study``, ``resumed``,
            ``finished_before``, ``remaining``, ``parent_run_id``, ``experiment_id``, ``first_worker``.

    Raises:
        UserError: the storage cannot be opened, or the stored study optimises something else.
        sweeps.study.objective.TrackingOutage: the tracking server stayed away ``sweep.outage_wait`` s.
        KeyboardInterrupt / sweeps.training.run.Terminated: after the parent run was ended KILLED
            (or left to the workers still running elsewhere).
    """
    settings, space = prepared.settings, prepared.space
    t0 = time.time()
    study, resumed = _open_study(prepared)
    coordinator, parent = Coordinator(settings, study), None
    try:
        space_change = check_space_unchanged(study, space, settings.allow_space_change)
        first_worker = _join(prepared, study, coordinator)
        finished_before = S.finished_count(study)
        remaining = max(0, settings.n_trials - finished_before)
        parent = open_parent(prepared, study, coordinator, space_change) if prepared.tracking.enabled else None
        deadline = t0 + settings.timeout if settings.timeout is not None else None
        if started is not None:
            started({"study": study, "resumed": resumed, "finished_before": finished_before, "remaining": remaining,
                     "parent_run_id": parent.run_id if parent else None, "first_worker": first_worker,
                     "experiment_id": parent.experiment_id if parent else None, "space_change": space_change,
                     "deadline": deadline, "enqueued": len(prepared.enqueued)})
        budget = Budget(settings.max_failures)
        report = _Reporter(study, settings, parent, progress)
        report()
        run = _run_trials(prepared, study, coordinator, parent, budget, deadline, report, first_worker, remaining)
        outcome_parent, finisher, finished_by = {}, False, {}
        if parent is not None and run.outage is None:
            outcome_parent, finisher, finished_by = _finish_parent(study, prepared, coordinator, parent, run.status)
        if run.outage is not None:
            raise run.outage
        if run.interrupted is not None:
            run.interrupted.champion = outcome_parent.get("champion")  # printed by ann-sweep
            raise run.interrupted
        board, registered, refit = _results(study, prepared, parent, outcome_parent, finisher, run.status)
        epochs_total = sum(int(t.user_attrs.get(V.TRIAL_EPOCHS) or 0) for t in study.get_trials(deepcopy=False))
        return SweepOutcome(
            study_name=settings.study_name, storage=settings.storage, resumed=resumed,
            finished_before=finished_before, progress=progress_of(study, settings), status=run.status,
            stop_reason=budget.stop_reason, seconds=time.time() - t0, leaderboard=board,
            parent_run_id=parent.run_id if parent else None,
            experiment_id=parent.experiment_id if parent else None, registered=registered,
            epochs_total=epochs_total, failures=budget.failures, worker_errors=run.worker_errors,
            finished_parent=finisher, first_worker=first_worker, finished_by=finished_by, refit=refit,
        )
    finally:
        if parent is not None:
            parent.session.close()
        coordinator.close()


def _open_study(prepared: PreparedSweep):
    """``(study, resumed)``, created or resumed (a tracked sweep's helper process starts first: its imports run meanwhile)."""
    settings = prepared.settings
    if prepared.tracking.enabled:
        helper.prestart()
    storage = ST.open_sweep_storage(settings)
    return S.create_or_resume(settings, storage, S.make_sampler(settings, prepared.space, worker=0),
                              S.make_pruner(settings, prepared.epochs))


def _join(prepared: PreparedSweep, study, coordinator: Coordinator) -> int:
    """This process's first worker number, its sampler seeded with it, and the enqueued trials queued once."""
    settings = prepared.settings
    first_worker = coordinator.join(settings.workers)
    coordinator.worker = first_worker
    study.sampler = S.make_sampler(settings, prepared.space, worker=first_worker)
    if prepared.enqueued:
        with coordinator.lock:  # one copy of each, however many workers start at once
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # skip_if_exists is "experimental" in Optuna
                for values in prepared.enqueued:
                    study.enqueue_trial(values, skip_if_exists=True)
    return first_worker


class _Reporter:
    """Hands the progress on after every trial, and refreshes the parent run now and then."""
    def __init__(self, study, settings: sweep_settings.SweepSettings, parent: ParentRun | None,
                 progress: Callable[[Progress], None] | None) -> None:
        self.study, self.settings, self.parent, self.progress = study, settings, parent, progress
        self.refreshed_at = S.finished_count(study)

    def __call__(self, last=None) -> None:
        current = progress_of(self.study, self.settings, last)
        if self.progress is not None:
            self.progress(current)
        if self.parent is not None and current.finished - self.refreshed_at >= refresh_interval(
                self.refreshed_at, self.settings.refresh_every):
            self.refreshed_at = current.finished
            # From the writer's thread, after the tails queued so far, while the next trial trains.
            self.parent.session.writer.submit(_refresh_quietly, self.parent, self.study)


def _refresh_quietly(parent: ParentRun, study) -> None:
    try:
        parent.refresh(study)
    except (Exception, StorageOutage) as error:  # a refresh is a courtesy; the sweep goes on
        log.warning("refreshing the parent run failed: %s", error)


@dataclass
class _TrialsRun:
    status: str = "FINISHED"
    interrupted: BaseException | None = None
    outage: BaseException | None = None
    worker_errors: list[str] = field(default_factory=list)


def _run_trials(prepared: PreparedSweep, study, coordinator: Coordinator, parent: ParentRun | None, budget: Budget,
                deadline: float | None, report: _Reporter, first_worker: int, remaining: int) -> _TrialsRun:
    """Run the remaining trials here or in worker processes; how it ended (a storage outage is raised)."""
    settings = prepared.settings
    run = _TrialsRun()
    try:
        if remaining > 0:
            if settings.workers == 1:
                objective = Objective(prepared.base, prepared.space, settings, spec=prepared.spec, data=prepared.data,
                                      session=parent.session if parent else None,
                                      parent_run_id=parent.run_id if parent else None,
                                      overrides=prepared.overrides, worker=first_worker,
                                      budget_ends=deadline if settings.budget is not None else None)
                work(study, objective, budget, deadline, coordinator, on_trial=report, on_idle=report)
            else:
                run.worker_errors = run_workers(prepared, parent, budget, deadline, report, first_worker)
        if budget.stop_reason == "failure budget":
            run.status = "FAILED"
    except TrackingOutage as error:
        run.outage, run.status = error, "KILLED"
        budget.stop(Budget.INTERRUPTED)
    except StorageOutage:
        raise  # nothing more can be done here without the storage; the other workers go on
    except BaseException as error:
        run.interrupted, run.status = error, "KILLED"
        budget.stop(Budget.INTERRUPTED)
    if run.outage is None and any("tracking server" in e for e in run.worker_errors):
        run.outage = TrackingOutage(next(e for e in run.worker_errors if "tracking server" in e))
    if any("Optuna storage" in e for e in run.worker_errors):
        raise StorageOutage("; ".join(e for e in run.worker_errors if "Optuna storage" in e))
    return run


def _finish_parent(study, prepared: PreparedSweep, coordinator: Coordinator, parent: ParentRun,
                   status: str) -> tuple[dict[str, Any], bool, dict]:
    """End the parent run if this process is its finisher, after ``sweep.refit`` (:mod:`sweeps.study.refit`):
    ``(what finishing gave, finisher?, who finished it)``."""
    settings = prepared.settings
    writer = parent.session.writer  # the trials' PNGs and model files: written before the parent reads them
    census = coordinator.census()
    complete = census.counted >= settings.n_trials
    finished_by: dict = {}
    if complete:
        parent_status = lambda: parent.client.get_run(parent.run_id).info.status  # noqa: E731
        finisher = coordinator.elect_finisher(parent_status)
        if not finisher:
            writer.drain()  # this worker's runs are whole before another process finishes the parent
            finisher, finished_by = _await_finisher(coordinator, parent_status)
    else:
        # Stopped early (Ctrl-C, timeout, failures, grid): end the parent only if no
        # other worker still runs trials of this study; the last one ends it.
        writer.drain()
        finisher = len(census.alive) == 0
    outcome: dict[str, Any] = {}
    if finisher:
        with coordinator.finishing():
            # The parent's plots are drawn by the writer's helper process (its imports are warm),
            # while this thread refits the champion (when the sweep refits).
            parent.submit_end_plots(study)
            refit = refit_and_log(study, prepared, parent) if status == "FINISHED" else None
            writer.drain()  # the last trials' tails, the plots and the refit's run
            try:
                outcome = {**parent.finish(study, "FINISHED" if complete else status, refit=refit), "refit": refit}
            except Exception as error:
                log.warning("finishing the parent run failed: %s", error)
                with contextlib.suppress(Exception):
                    tracking.terminate(parent.client, parent.run_id, "FINISHED" if complete else status)
    return outcome, finisher, finished_by


def _results(study, prepared: PreparedSweep, parent: ParentRun | None, outcome_parent: dict,
             finisher: bool, status: str):
    """The leaderboard, the registered champion and the refit (:mod:`sweeps.study.refit`): from
    finishing the parent run, or made now (a sweep without tracking refits here)."""
    settings = prepared.settings
    refit = outcome_parent.get("refit")
    if parent is None and status == "FINISHED":
        refit = refit_and_log(study, prepared, None)
    board, registered = outcome_parent.get("leaderboard"), outcome_parent.get("registered")
    if board is None:
        runs = None
        if parent is not None:
            with contextlib.suppress(Exception):
                runs = trial_runs(parent.client, parent.experiment_id, settings.study_name)
        board = leaderboard(study, settings, runs)
        if parent is not None and not finisher:
            registered = registered_champion(parent.client, settings)
    return board, registered, refit


def _await_finisher(coordinator, parent_status: Callable[[], str | None]) -> tuple[bool, dict]:
    """Not elected to finish the parent run: wait until the elected worker has, and take its
    place if it dies meanwhile (:meth:`sweeps.study.claims.Coordinator.elect_finisher`).

    Returns ``(True, {})`` when this process must finish the parent run now, else
    ``(False, record)`` with the finisher's ``sweep.finished`` record (``done`` set, unless
    a Ctrl-C / SIGTERM ended the wait).
    """

    while True:
        record = coordinator.finish_record()
        if record.get("done") or STOP.signum is not None:
            return False, record
        time.sleep(POLL_SECONDS)
        if coordinator.elect_finisher(parent_status):
            return True, {}
        with contextlib.suppress(Exception):  # ended, though its record was not marked done (yet)
            if parent_status() not in ("RUNNING", None):
                return False, _record_once_done(coordinator)


#: How long a worker that saw the parent run ended waits for its finisher to record ``done`` (just after).
RECORD_WAIT_SECONDS = 10.0


def _record_once_done(coordinator) -> dict:
    """The ``sweep.finished`` record once it says ``done``, or as it is after :data:`RECORD_WAIT_SECONDS`."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    record = coordinator.finish_record()
    while not record.get("done") and time.monotonic() < deadline and STOP.signum is None:
        time.sleep(POLL_SECONDS)
        record = coordinator.finish_record()
    return record
