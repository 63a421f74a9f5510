"""The trial loop of a sweep: in this process (:func:`work`) or in worker processes (:func:`run_workers`).

Every trial is claimed through the storage (:meth:`sweeps.study.claims.Coordinator.run_one`),
so the study ends with exactly ``n_trials`` counted trials however many processes run it;
:class:`Budget` holds this process's failures and the reason the sweep stopped, shared with
its worker processes; :class:`Progress` is where the sweep stands.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from threadpoolctl import threadpool_limits

from sweeps.config import sweep_settings
from sweeps.config.space_parse import parse_space
from sweeps.core.faults import RETRY_SECONDS, StorageOutage
from sweeps.core.redaction import redact, redact_logging
from sweeps.study import optuna_study as S
from sweeps.study import storage as ST
from sweeps.study.claims import Coordinator
from sweeps.study.prepared import PreparedSweep
from sweeps.study.objective import STOP, Objective, TrackingOutage, TrialFailed
from sweeps.training.run import Terminated

log = logging.getLogger(__name__)

#: Seconds between two looks at the storage while worker processes run.
POLL_SECONDS = 1.0
#: Exit status of a worker process that stopped because the Optuna storage stayed away.
EXIT_STORAGE_OUTAGE = 4


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
    if getattr(objective, "lost", False):
        return True
    if not isinstance(error, (ValueError, AssertionError, optuna.exceptions.UpdateFinishedTrialError)):
        return False
    frozen = ST.stored_trial(trial)
    return frozen is not None and frozen.state.name == "FAIL"


def _worker_main(payload: dict, index: int, budget: Budget, deadline: float | None, threads: int) -> None:
    """A worker process: its own storage connection, sampler seed, MLflow client and BLAS threads."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.WARNING, format=f"[worker {index}] %(levelname)s %(name)s: %(message)s")
    redact_logging()
    threadpool_limits(limits=threads)
    # Ctrl-C in a terminal reaches every process of the group: the main process alone
    # decides, and asks the workers to stop with SIGTERM, acted on at the end of an epoch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.request(signum))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import mlflow  # noqa: F401 - lazy: it configures its loggers when imported; quiet them afterwards

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
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
    try:
        work(study, objective, budget, deadline, coordinator)
    except (KeyboardInterrupt, Terminated):
        budget.stop(Budget.INTERRUPTED)
        raise SystemExit(143) from None
    except TrackingOutage as error:
        budget.stop(Budget.INTERRUPTED)
        logging.getLogger(__name__).error("%s", error)
        raise SystemExit(3) from None
    except StorageOutage as error:
        logging.getLogger(__name__).error("%s", error)
        raise SystemExit(EXIT_STORAGE_OUTAGE) from None
    finally:
        objective.close()  # the last runs' PNGs and model files, before the process exits
        coordinator.close()


def run_workers(prepared: PreparedSweep, parent, budget: Budget, deadline: float | None,
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
            errors.append(f"worker {first_worker + index} stopped: the Optuna storage {redact(settings.storage)} "
                          f"did not answer for {RETRY_SECONDS:g} s")
        elif process.exitcode not in (0, None):
            errors.append(f"worker {first_worker + index} exited with status {process.exitcode}")
    return errors
