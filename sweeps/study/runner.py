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
import multiprocessing
import os
import re
import signal
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from sweeps.core import vocabulary as V
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.core.errors import ConfigError
from sweeps.core.redaction import redact_logging
from sweeps.config.compose import compose_sweep as compose  # noqa: F401 - the public API: compose, prepare, run_sweep
from sweeps.config.space import SearchSpace, check_space_unchanged, parse_space
from sweeps.core.faults import RETRY_SECONDS, StorageOutage

log = logging.getLogger(__name__)

#: Seconds between two looks at the storage while worker processes run.
POLL_SECONDS = 1.0
#: Exit status of a worker process that stopped because the Optuna storage stayed away.
EXIT_STORAGE_OUTAGE = 4


# --------------------------------------------------------------------------- prepare


@dataclass
class PreparedSweep:
    """A sweep whose configuration was checked, ready to run."""

    config: dict[str, Any]          # the whole resolved config, ``sweep`` included
    base: dict[str, Any]            # the training config every trial starts from
    settings: sweep_settings.SweepSettings
    space: SearchSpace
    spec: Any                       # sweeps.config.run_spec.RunSpec of the base config
    task: str
    epochs: int
    n_train: int
    overrides: list[str] = field(default_factory=list)
    enqueued: list[dict[str, Any]] = field(default_factory=list)  # sweep.enqueue: run first

    @property
    def tracking(self):
        return self.spec.tracking


def prepare(cfg, overrides: Sequence[str] = ()) -> PreparedSweep:
    """Check the sweep's config (a composed ``ann_sweep`` config) without starting anything.

    Raises:
        UserError / ConfigError: one line naming the key at fault.
    """
    from sweeps.config.run_spec import build_run_spec, to_container
    from sweeps.training.run import build_model, prepare_data

    config = to_container(cfg)
    section = config.get("sweep")
    if not isinstance(section, Mapping):
        raise ConfigError("sweep", section, "a config group: choose one with sweep=<option> (e.g. sweep=digits)")
    settings = sweep_settings.parse_settings(section)
    space = parse_space(section.get("params"))
    base = {key: value for key, value in config.items() if key != "sweep"}
    spec = build_run_spec(base)
    data = prepare_data(spec)
    build_model(spec, data)  # the base config itself must be trainable on this data
    task, n_train = data.task, len(data.X_train)
    sweep_settings.check_metrics_for_task(settings, task, data.X_val is not None)
    _check_space_fits_data(space, n_train)
    space.check_conditions(base)
    enqueued = _enqueued(section.get("enqueue"), space)
    if settings.sampler == "grid":
        space.grid()
    if spec.tracking.enabled:
        from sweeps.tracking import client as tracking
        tracking.probe(spec.tracking.uri, spec.tracking.probe_timeout, spec.tracking.experiment_name)
    user_overrides = [o for o in overrides if not o.lstrip("+~").startswith("sweep") and not o.startswith("hydra")]
    return PreparedSweep(
        config=config, base=base, settings=settings, space=space, spec=spec, task=task,
        epochs=int(base["training"].get("epochs", 100)), n_train=n_train, overrides=user_overrides,
        enqueued=enqueued,
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


def _check_space_fits_data(space: SearchSpace, n_train: int) -> None:
    dim = space.dimensions.get("batch_size")
    if dim is None:
        return
    allowed = f"at most {n_train} (the training set has {n_train} samples)"
    if dim.type == "categorical":
        for index, choice in enumerate(dim.choices):
            if choice > n_train:
                raise ConfigError(f"sweep.params.batch_size.choices[{index}]", choice, allowed)
    elif dim.high > n_train:
        raise ConfigError("sweep.params.batch_size.high", dim.high, allowed)


# --------------------------------------------------------------------------- budget


class Budget:
    """Failures and a stop flag, shared by this process's worker processes.

    How many trials to start is not decided here but by the storage
    (:class:`sweeps.study.claims.Coordinator`), so that any number of processes, on any
    number of machines, end the study with exactly ``n_trials`` counted trials.
    """

    TIMEOUT, GRID, FAILURES, INTERRUPTED = 1, 2, 3, 4
    REASONS = {TIMEOUT: "timeout", GRID: "grid exhausted", FAILURES: "failure budget", INTERRUPTED: "interrupted"}

    def __init__(self, max_failures: int | None, context=None) -> None:
        context = context or multiprocessing.get_context("spawn")
        self._failures = context.Value("i", 0)
        self._stop = context.Value("i", 0)
        self.max_failures = max_failures

    def fail(self) -> bool:
        """Count a failed trial; True (and stop) when the failure budget is exceeded."""
        with self._failures.get_lock():
            self._failures.value += 1
            exceeded = self.max_failures is not None and self._failures.value > self.max_failures
        if exceeded:
            self.stop(self.FAILURES)
        return exceeded

    def stop(self, reason: int) -> None:
        with self._stop.get_lock():
            if not self._stop.value:
                self._stop.value = reason

    @property
    def stopped(self) -> bool:
        return bool(self._stop.value)

    @property
    def failures(self) -> int:
        return self._failures.value

    @property
    def stop_reason(self) -> str | None:
        return self.REASONS.get(self._stop.value)


# ------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """Where a sweep stands (what a progress bar shows)."""

    target: int
    finished: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    last: Any = None          # the FrozenTrial that just finished (in-process runs)


def progress_of(study, settings: sweep_settings.SweepSettings, last=None) -> Progress:
    trials = study.get_trials(deepcopy=False)
    progress = Progress(target=settings.n_trials, last=last)
    for trial in trials:
        name = trial.state.name
        if S.counts_toward_budget(trial):
            progress.finished += 1
        if name == "COMPLETE":
            progress.complete += 1
        elif name == "PRUNED":
            progress.pruned += 1
        elif name == "FAIL":
            progress.failed += 1
        elif name == "RUNNING":
            progress.running += 1
    best = S.best_trials(study)
    if best:
        trial = best[0]
        progress.best_value, progress.best_trial = trial.values[0], trial.number
    return progress


# ---------------------------------------------------------------------------- loop


def work(study, objective, budget: Budget, deadline: float | None, coordinator,
         on_trial: Callable | None = None, on_idle: Callable | None = None) -> None:
    """Run trials in this process until the study has ``n_trials`` or the sweep stops.

    Each trial is claimed through ``coordinator`` (:meth:`sweeps.study.claims.Coordinator.run_one`);
    when every slot is taken by trials still running elsewhere, the worker waits
    (``on_idle`` is called) rather than leaving, in case one of them dies and must be re-run.
    """
    import optuna

    from sweeps.study.objective import STOP, TrialFailed

    while True:
        STOP.check()
        if budget.stopped:
            return
        if deadline is not None and time.time() >= deadline:
            budget.stop(Budget.TIMEOUT)
            return
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study):
            budget.stop(Budget.GRID)
            return
        objective.wait_for_tracking()
        finished: list = []
        objective.current_trial = None
        try:
            outcome = coordinator.run_one(objective, catch=(TrialFailed,),
                                          callbacks=[lambda _study, trial: finished.append(trial)])
        except BaseException as error:
            current = getattr(objective, "current_trial", None)
            if isinstance(error, Exception) and current is not None and _lost(objective, current, error):
                log.warning("trial %d was failed by another worker while it ran here (its heartbeat was stale); "
                            "its re-run takes its place", current.number)
                objective.abandon_lost_run(current)
                continue
            # Optuna ends the trial FAILED for an Exception or Ctrl-C; SIGTERM (Terminated)
            # and SystemExit pass through it and would leave the trial RUNNING. A storage
            # outage leaves it RUNNING on purpose: it goes stale and is re-run elsewhere.
            if not isinstance(error, (Exception, KeyboardInterrupt, StorageOutage)) and current is not None:
                with contextlib.suppress(Exception):
                    study.tell(current, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        if getattr(objective, "outage", None) is not None:
            raise objective.outage  # the server stayed away for sweep.outage_wait during that trial
        if outcome == "done":
            return
        if outcome == "wait":
            if on_idle is not None:
                on_idle()
            time.sleep(POLL_SECONDS)
            continue
        trial = finished[-1] if finished else None
        if trial is not None and trial.state.name == "FAIL" and budget.fail():
            if on_trial is not None:
                on_trial(trial)
            return
        if on_trial is not None:
            on_trial(trial)


def _lost(objective, trial, error: BaseException) -> bool:
    """Whether ``error`` came from telling Optuna about a trial another worker had already failed."""
    import optuna

    if getattr(objective, "lost", False):
        return True
    if not isinstance(error, (ValueError, AssertionError, optuna.exceptions.UpdateFinishedTrialError)):
        return False
    frozen = ST.stored_trial(trial)
    return frozen is not None and frozen.state.name == "FAIL"


def _worker_main(payload: dict, index: int, budget: Budget, deadline: float | None, threads: int) -> None:
    """A worker process: its own storage connection, sampler seed, MLflow client and BLAS threads."""
    import logging as _logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _logging.basicConfig(level=_logging.WARNING, format=f"[worker {index}] %(levelname)s %(name)s: %(message)s")
    redact_logging()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    import optuna

    from sweeps.study.claims import Coordinator
    from sweeps.study.objective import STOP, Objective, TrackingOutage

    # Ctrl-C in a terminal reaches every process of the group: the main process alone
    # decides, and asks the workers to stop with SIGTERM, acted on at the end of an epoch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.request(signum))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import mlflow  # noqa: F401 - configures its loggers on import: quiet them afterwards

    for name in ("mlflow", "alembic"):
        _logging.getLogger(name).setLevel(_logging.WARNING)
    config = payload["config"]
    settings = sweep_settings.parse_settings(config["sweep"])
    space = parse_space(config["sweep"].get("params"))
    base = {key: value for key, value in config.items() if key != "sweep"}
    storage = ST.open_sweep_storage(settings)
    study = optuna.load_study(
        study_name=settings.study_name, storage=storage,
        sampler=S.make_sampler(settings, space, worker=index), pruner=S.make_pruner(settings, payload["epochs"]),
    )
    objective = Objective(base, space, settings, parent_run_id=payload["parent_run_id"],
                          overrides=payload["overrides"], worker=index,
                          budget_ends=deadline if settings.budget is not None else None)
    coordinator = Coordinator(settings, study, worker=index)
    from sweeps.training.run import Terminated

    try:
        work(study, objective, budget, deadline, coordinator)
    except (KeyboardInterrupt, Terminated):
        budget.stop(Budget.INTERRUPTED)
        raise SystemExit(143) from None
    except TrackingOutage as error:
        budget.stop(Budget.INTERRUPTED)
        _logging.getLogger(__name__).error("%s", error)
        raise SystemExit(3) from None
    except StorageOutage as error:
        _logging.getLogger(__name__).error("%s", error)
        raise SystemExit(EXIT_STORAGE_OUTAGE) from None
    finally:
        coordinator.close()


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


def run_sweep(prepared: PreparedSweep, *, progress: Callable[[Progress], None] | None = None,
              started: Callable[[dict], None] | None = None) -> SweepOutcome:
    """Run the sweep (see the module docstring).

    Args:
        progress: called with a :class:`Progress` at the start and after every trial.
        started: called once the study and the parent run are known, with ``study``,
            ``resumed``, ``finished_before``, ``remaining``, ``parent_run_id``,
            ``experiment_id``, ``first_worker``.

    Raises:
        UserError: the storage cannot be opened, or the stored study optimises something else.
        sweeps.study.objective.TrackingOutage: the tracking server stopped answering for longer
            than ``sweep.outage_wait`` (the parent run is left as it is).
        KeyboardInterrupt / sweeps.training.run.Terminated: after the parent run was ended KILLED
            (or left to the workers still running elsewhere).
    """
    from sweeps.study.claims import Coordinator
    from sweeps.study.objective import TrackingOutage
    from sweeps.study.parent import ParentRun, find_or_create_parent, leaderboard, registered_champion

    settings, space = prepared.settings, prepared.space
    t0 = time.time()
    storage = ST.open_sweep_storage(settings)
    study, resumed = S.create_or_resume(settings, storage, S.make_sampler(settings, space, worker=0),
                                        S.make_pruner(settings, prepared.epochs))
    coordinator = Coordinator(settings, study)
    try:
        space_change = check_space_unchanged(study, space, settings.allow_space_change)
        first_worker = coordinator.join(settings.workers)
        coordinator.worker = first_worker
        study.sampler = S.make_sampler(settings, space, worker=first_worker)
        if prepared.enqueued:
            with coordinator.lock:  # one copy of each, however many workers start at once
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # skip_if_exists is "experimental" in Optuna
                    for values in prepared.enqueued:
                        study.enqueue_trial(values, skip_if_exists=True)
        finished_before = S.finished_count(study)
        remaining = max(0, settings.n_trials - finished_before)

        parent: ParentRun | None = None
        if prepared.tracking.enabled:
            from sweeps.tracking import ui_views
            from sweeps.training.run import connect

            client, experiment_id = connect(prepared.spec)
            with coordinator.lock:  # one parent per study, whoever starts first
                run_id, created = find_or_create_parent(client, experiment_id, study, settings,
                                                        tags=_reproducibility(prepared))
                parent = ParentRun(client, run_id, experiment_id, settings, prepared.task)
                if not created and coordinator.census().counted < settings.n_trials:
                    parent.reopen()
            _describe_parent(parent, prepared, created)
            if space_change:
                from sweeps.tracking import client as tracking
                tracking.set_tags(client, run_id, {V.TAG_SPACE_CHANGE: space_change})
            # The trials' chart view exists from the start, so the link printed now works.
            ui_views.ensure_run_view_quietly(client, experiment_id, prepared.task, run_id)
        if started is not None:
            started({
                "study": study, "resumed": resumed, "finished_before": finished_before, "remaining": remaining,
                "parent_run_id": parent.run_id if parent else None,
                "experiment_id": parent.experiment_id if parent else None,
                "first_worker": first_worker, "space_change": space_change,
                "deadline": t0 + settings.timeout if settings.timeout is not None else None,
                "enqueued": len(prepared.enqueued),
            })

        budget = Budget(settings.max_failures)
        deadline = t0 + settings.timeout if settings.timeout is not None else None
        state = {"refreshed_at": S.finished_count(study)}

        def report(last=None) -> None:
            current = progress_of(study, settings, last)
            if progress is not None:
                progress(current)
            if parent is not None and current.finished - state["refreshed_at"] >= refresh_interval(
                    state["refreshed_at"], settings.refresh_every):
                state["refreshed_at"] = current.finished
                try:
                    parent.refresh(study)
                except Exception as error:  # a refresh is a courtesy; the sweep goes on
                    log.warning("refreshing the parent run failed: %s", error)

        report()
        status, interrupted, outage = "FINISHED", None, None
        worker_errors: list[str] = []
        try:
            if remaining > 0:
                if settings.workers == 1:
                    from sweeps.study.objective import Objective

                    objective = Objective(prepared.base, space, settings,
                                          parent_run_id=parent.run_id if parent else None,
                                          overrides=prepared.overrides, worker=first_worker,
                                          budget_ends=deadline if settings.budget is not None else None)
                    work(study, objective, budget, deadline, coordinator, on_trial=report, on_idle=report)
                else:
                    worker_errors = _run_workers(prepared, parent, budget, deadline, report, first_worker)
            if budget.stop_reason == "failure budget":
                status = "FAILED"
        except TrackingOutage as error:
            outage, status = error, "KILLED"
            budget.stop(Budget.INTERRUPTED)
        except StorageOutage:
            raise  # nothing more can be done here without the storage; the other workers go on
        except BaseException as error:
            interrupted = error
            status = "KILLED"
            budget.stop(Budget.INTERRUPTED)
        if outage is None and any("tracking server" in e for e in worker_errors):
            outage = TrackingOutage(next(e for e in worker_errors if "tracking server" in e))
        if any("Optuna storage" in e for e in worker_errors):
            raise StorageOutage("; ".join(e for e in worker_errors if "Optuna storage" in e))

        outcome_parent: dict[str, Any] = {}
        finisher = False
        finished_by: dict = {}
        others_running = 0
        if parent is not None and outage is None:
            census = coordinator.census()
            complete = census.counted >= settings.n_trials
            others_running = len(census.alive)
            if complete:
                parent_status = lambda: parent.client.get_run(parent.run_id).info.status  # noqa: E731
                finisher = coordinator.elect_finisher(parent_status)
                if not finisher:
                    finisher, finished_by = _await_finisher(coordinator, parent_status)
            else:
                # Stopped early (Ctrl-C, timeout, failures, grid): end the parent only if no
                # other worker still runs trials of this study; the last one ends it.
                finisher = others_running == 0
            if finisher:
                with coordinator.finishing():
                    try:
                        outcome_parent = parent.finish(study, "FINISHED" if complete else status)
                    except Exception as error:
                        log.warning("finishing the parent run failed: %s", error)
                        with contextlib.suppress(Exception):
                            from sweeps.tracking import client as tracking
                            tracking.terminate(parent.client, parent.run_id, "FINISHED" if complete else status)
        if outage is not None:
            raise outage
        if interrupted is not None:
            interrupted.champion = outcome_parent.get("champion")  # printed by ann-sweep
            raise interrupted
        board = outcome_parent.get("leaderboard")
        registered = outcome_parent.get("registered")
        if board is None:
            runs = None
            if parent is not None:
                with contextlib.suppress(Exception):
                    from sweeps.study.parent import trial_runs

                    runs = trial_runs(parent.client, parent.experiment_id, settings.study_name)
            board = leaderboard(study, settings, runs)
            if parent is not None and not finisher:
                registered = registered_champion(parent.client, settings)
        final = progress_of(study, settings)
        epochs_total = sum(int(t.user_attrs.get(V.TRIAL_EPOCHS) or 0) for t in study.get_trials(deepcopy=False))
        return SweepOutcome(
            study_name=settings.study_name, storage=settings.storage, resumed=resumed,
            finished_before=finished_before, progress=final, status=status, stop_reason=budget.stop_reason,
            seconds=time.time() - t0, leaderboard=board, parent_run_id=parent.run_id if parent else None,
            experiment_id=parent.experiment_id if parent else None, registered=registered,
            epochs_total=epochs_total, failures=budget.failures, worker_errors=worker_errors,
            finished_parent=finisher, first_worker=first_worker, finished_by=finished_by,
        )
    finally:
        coordinator.close()


def _await_finisher(coordinator, parent_status: Callable[[], str | None]) -> tuple[bool, dict]:
    """Not elected to finish the parent run: wait until the elected worker has, and take its
    place if it dies meanwhile (:meth:`sweeps.study.claims.Coordinator.elect_finisher`).

    Returns ``(True, {})`` when this process must finish the parent run now, else
    ``(False, record)`` with the finisher's ``sweep.finished`` record (``done`` set, unless
    a Ctrl-C / SIGTERM ended the wait).
    """
    from sweeps.study.objective import STOP

    while True:
        record = coordinator.finish_record()
        if record.get("done") or STOP.signum is not None:
            return False, record
        time.sleep(POLL_SECONDS)
        if coordinator.elect_finisher(parent_status):
            return True, {}
        with contextlib.suppress(Exception):  # ended, though its record was not marked done
            if parent_status() not in ("RUNNING", None):
                return False, coordinator.finish_record()


def _run_workers(prepared: PreparedSweep, parent, budget: Budget, deadline: float | None,
                 report: Callable[[], None], first_worker: int = 0) -> list[str]:
    """Start ``sweep.workers`` processes and watch them until they are done."""
    settings = prepared.settings
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // settings.workers)
    payload = {
        "config": prepared.config,
        "overrides": prepared.overrides,
        "parent_run_id": parent.run_id if parent else None,
        "epochs": prepared.epochs,
    }
    processes = [
        context.Process(target=_worker_main, args=(payload, first_worker + index, budget, deadline, threads),
                        name=f"ann-sweep-worker-{first_worker + index}", daemon=False)
        for index in range(settings.workers)
    ]
    for process in processes:
        process.start()
    from sweeps.study.objective import STOP

    try:
        while any(process.is_alive() for process in processes):
            time.sleep(POLL_SECONDS)
            STOP.check()
            report()
    except BaseException:
        budget.stop(Budget.INTERRUPTED)
        for process in processes:  # each ends its running trial at the end of the epoch
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        raise
    for process in processes:
        process.join()
    report()
    errors = []
    for index, process in enumerate(processes):
        if process.exitcode == 3:
            errors.append(f"worker {first_worker + index} stopped: the tracking server did not answer "
                          f"for sweep.outage_wait={settings.outage_wait:g} s")
        elif process.exitcode == EXIT_STORAGE_OUTAGE:
            errors.append(f"worker {first_worker + index} stopped: the Optuna storage {S.redact(settings.storage)} "
                          f"did not answer for {RETRY_SECONDS:g} s")
        elif process.exitcode not in (0, None):
            errors.append(f"worker {first_worker + index} exited with status {process.exitcode}")
    return errors


def _reproducibility(prepared: PreparedSweep) -> dict[str, str]:
    from sweeps.tracking.reproducibility import reproducibility_tags

    return {**reproducibility_tags(prepared.spec.model_kwargs.get("seed")), "dataset": prepared.spec.dataset,
            "task": prepared.task}


def searched_params(space) -> dict[str, str]:
    """The parent run's params for the settings the sweep searches: each config key shows its
    distribution, not the base config's value (``model.activation={relu, tanh}``,
    ``model.hidden_layers=n_layers int [1, 3]; units int [16, 128] log``)."""
    from sweeps.config.space import SETTINGS

    by_key: dict[str, list[str]] = {}
    for name, dim in space.dimensions.items():
        key = dim.key or SETTINGS[name].key  # a dimension named by its config path has its key
        by_key.setdefault(key, []).append(name)
    params = {}
    for key, names in by_key.items():
        if len(names) == 1 and (key == names[0] or key.endswith("." + names[0])):
            params[key] = space.dimensions[names[0]].describe()
        else:
            params[key] = "; ".join(f"{name} {space.dimensions[name].describe()}" for name in names)
    return params


def _describe_parent(parent, prepared: PreparedSweep, created: bool) -> None:
    """Tags, params (a new parent only: params cannot change) and the config of the sweep."""
    from omegaconf import OmegaConf

    from sweeps.tracking import client as tracking
    from sweeps.config.run_spec import run_params
    from sweeps.study.parent import parent_tags

    tracking.set_tags(parent.client, parent.run_id, parent_tags(prepared.settings, prepared.space))
    if created:
        params, searched = run_params(prepared.spec), searched_params(prepared.space)
        if "model.hidden_layers" in searched:  # the base's layer count and widths are not the sweep's
            params = {k: v for k, v in params.items() if not re.fullmatch(r"model\.(n_hidden_layers|layer_\d+_units)", k)}
        params.update(searched)
        for name, dim in prepared.space.dimensions.items():
            params[f"sweep.space.{name}"] = dim.describe()
        with contextlib.suppress(Exception):
            tracking.log_params(parent.client, parent.run_id, params)
    tracking.log_text(parent.client, parent.run_id, OmegaConf.to_yaml(OmegaConf.create(dict(prepared.config))),
                      "sweep/config.yaml")
    tracking.log_text(parent.client, parent.run_id,
                      OmegaConf.to_yaml(OmegaConf.create(list(prepared.overrides))) if prepared.overrides else "[]\n",
                      "sweep/overrides.yaml")
