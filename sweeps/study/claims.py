"""Exactly ``n_trials``, whoever runs them: the storage-side claim of the next trial.

Any number of ``ann-sweep`` processes -- on one machine or on several sharing one
PostgreSQL study -- may work on the same study. Each one starts its next trial only
through :meth:`Coordinator.run_one`, which

1. takes the study's **lock**, a lock the storage's own database or machine hands out
   (:class:`sweeps.core.locks.StorageLock`): a PostgreSQL advisory lock (``pg_advisory_lock``), a MySQL
   ``GET_LOCK``, or an exclusive ``flock`` for an SQLite or journal file (processes of
   one machine). The lock dies with its holder's connection or process;
2. fails the trials whose heartbeat is stale (their worker died), which queues their
   re-runs (Optuna's retry callback, see :func:`sweeps.study.storage.open_storage`);
3. counts: trials that count toward ``n_trials`` (:func:`sweeps.study.optuna_study.counts_toward_budget`)
   plus trials still **alive** (:meth:`Coordinator.alive`: RUNNING with heartbeats, or
   RUNNING in a process of this machine that still exists). A trial is started only while
   that sum is below ``n_trials``; a queued re-run (WAITING) is taken before a new trial;
4. creates the trial (``study.ask()`` inside ``study.optimize``), records who claimed it
   (user attribute ``sweep.claim``: host, pid, worker, heartbeats on or off), and only
   then releases the lock and runs the objective.

So the count a worker sees can never be raced: the check and the creation happen under
one lock, and a trial counts as taken from the moment it exists until it ends or its
worker is declared dead (then its re-run takes the slot over). When every slot is taken
but trials still run elsewhere, a worker **waits** instead of leaving: if one of those
workers dies, its trial is failed after the grace period and the waiting worker runs the
re-run, so the study still ends with exactly ``n_trials`` counted trials.

Without heartbeats (a journal file, or ``sweep.heartbeat_interval=null``) a RUNNING trial
is alive only while its process exists on this machine; a trial of another machine then
cannot be told from a dead one and is not counted: exact counts across machines need
heartbeats.

The same lock serialises the other decisions that must be made once per study: the
worker numbers (:meth:`Coordinator.join`, so every worker's sampler gets its own seed),
the MLflow parent run (found or created under the lock), and which worker finishes the
parent run when the study is complete (:meth:`Coordinator.elect_finisher`).
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import optuna
import sqlalchemy
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from sweeps.core import vocabulary as V
from sweeps.core.locks import HOST, StorageLock, pid_alive
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.study.finisher import FinisherElection

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------- coordinator


@dataclass
class Census:
    """What the storage holds right now, as far as the budget is concerned."""

    counted: int                                   # trials that count toward n_trials
    alive: list = field(default_factory=list)      # RUNNING trials whose worker is (presumed) alive
    leftover: list = field(default_factory=list)   # RUNNING trials of workers known or presumed dead
    waiting: list = field(default_factory=list)    # queued trials (re-runs, enqueued by hand)

    def room(self, n_trials: int) -> int:
        return n_trials - self.counted - len(self.alive)


class Coordinator(FinisherElection):
    """The storage-side coordination of one process's workers on a study (see the module docstring).

    Args:
        settings: the sweep's settings (``n_trials``, heartbeats).
        study: the loaded study, opened with :func:`sweeps.study.storage.open_sweep_storage`.
        worker: this process's worker number (recorded in each claim).
        lock: the study's lock (default: :meth:`StorageLock.for_storage`).
    """

    def __init__(self, settings: sweep_settings.SweepSettings, study, worker: int = 0, lock: StorageLock | None = None) -> None:
        self.settings = settings
        self.study = study
        self.worker = worker
        self.lock = lock or self._study_lock()
        self.heartbeats = settings.heartbeats and _storage_has_heartbeat(study)

    def _study_lock(self) -> StorageLock:
        """The study's lock; a holder that cannot run loses it after the grace period (or a minute)."""
        lease = self.settings.grace_seconds or ST.IDLE_IN_TRANSACTION_TIMEOUT
        return StorageLock.for_storage(self.settings.storage, f"ann-sweep:study:{self.settings.study_name}", lease)

    # ------------------------------------------------------------------ census

    def alive(self, trial) -> bool:
        """Whether a RUNNING trial's worker is alive, as far as this process can tell."""
        claim = trial.user_attrs.get(V.ATTR_CLAIM)
        if not isinstance(claim, dict):
            return False  # not started by a claim: left over by an older version, or by hand
        if claim.get("heartbeat") and self.heartbeats:
            return True  # until its heartbeat goes stale: then it is failed (fail_stale)
        if claim.get("host") == HOST and claim.get("pid") is not None:
            return pid_alive(claim["pid"])
        return False

    def census(self) -> Census:
        census = Census(counted=0)
        for trial in self.study.get_trials(deepcopy=False):
            if S.counts_toward_budget(trial):
                census.counted += 1
            elif trial.state == TrialState.RUNNING:
                (census.alive if self.alive(trial) else census.leftover).append(trial)
            elif trial.state == TrialState.WAITING:
                census.waiting.append(trial)
        return census

    def fail_stale(self) -> list:
        """Fail the RUNNING trials whose worker is presumed dead (their re-runs are queued); call under the lock.

        Those are the trials whose heartbeat is older than the grace period (Optuna's own
        test), and the trials claimed by a worker that writes heartbeats but that have no
        heartbeat at all and were started more than the grace period ago (the worker died
        between its claim and its first heartbeat; Optuna skips such trials, so without
        this test they would hold their slot for ever). Returns the trials it failed (as
        they were before).
        """
        if not self.heartbeats:
            return []
        running = {t._trial_id: t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        if not running:
            return []
        storage = ST.storage_of(self.study)
        dead = set(storage._get_stale_trial_ids(self.study._study_id)) | set(self._claims_without_heartbeat(running))
        failed = []
        for trial_id in sorted(dead):
            try:
                if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    failed.append(running[trial_id])
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # failed (or finished) meanwhile by another process
        callback = storage.get_heartbeat_stale_trial_callback()
        for trial in failed:
            log.warning("trial %d had no heartbeat for more than %s s (its worker is gone): failed%s",
                        trial.number, self.settings.grace_seconds,
                        "" if self.settings.max_retries else " (sweep.max_retries=0: not re-run)")
            if callback is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    callback(self.study, storage.get_trial(trial._trial_id))
        return failed

    def _claims_without_heartbeat(self, running: dict) -> list[int]:
        """Ids of RUNNING trials claimed with heartbeats, without a heartbeat row, older than the grace period."""
        grace = datetime.timedelta(seconds=self.settings.grace_seconds)
        now = datetime.datetime.now()
        suspects = [trial_id for trial_id, trial in running.items()
                    if claim_of(trial).get("heartbeat") and trial.datetime_start is not None
                    and now - trial.datetime_start > grace]
        if not suspects:
            return []
        backend = getattr(ST.storage_of(self.study), "_backend", ST.storage_of(self.study))
        with backend.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(
                sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids")
                .bindparams(sqlalchemy.bindparam("ids", expanding=True)), {"ids": suspects})}
        return [trial_id for trial_id in suspects if trial_id not in beating]

    # ------------------------------------------------------------------- claims

    def run_one(self, objective: Callable, *, catch: tuple = (), callbacks: Sequence[Callable] = ()) -> str:
        """Run one trial if the budget has room: ``"ran"``, ``"wait"`` (all taken, some still
        running elsewhere: look again soon) or ``"done"`` (nothing left to run)."""
        self.lock.acquire()
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                self.lock.release()

        def claimed(trial):
            try:
                self._stake(trial)
            finally:
                release()
            return objective(trial)

        try:
            self.fail_stale()
            census = self.census()
            n_trials = self.settings.n_trials
            if census.counted >= n_trials:
                return "done"
            if census.room(n_trials) <= 0:
                return "wait"
            if not self.lock.held():  # stopped for longer than the lease: the census may be stale
                log.warning("the study's lock was broken while this process was stopped; looking again")
                return "wait"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.optimize(claimed, n_trials=1, catch=catch, callbacks=list(callbacks))
            return "ran"
        finally:
            release()

    def _stake(self, trial) -> None:
        """Record on a new trial who runs it (still under the lock: its slot is taken from here on)."""
        claim = {
            "host": HOST, "pid": os.getpid(), "worker": self.worker,
            "heartbeat": self.settings.heartbeat_interval if self.heartbeats else None,
            "at": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        if self.heartbeats:
            # The first heartbeat before the claim: a worker that dies right after claiming
            # leaves a trial that goes stale (Optuna ignores a trial without any heartbeat).
            ST.storage_of(self.study).record_heartbeat(trial._trial_id)
        trial.set_user_attr(V.ATTR_CLAIM, claim)

    # ------------------------------------------------------------- once per study

    def join(self, n_workers: int) -> int:
        """Hand out ``n_workers`` consecutive worker numbers; returns the first.

        The lowest numbers no live process holds: a process that works alone (after an
        interrupt, say) is worker 0 again and samples with the seeds of an uninterrupted
        sweep. A number is held (study attribute ``sweep.worker_slots``: number -> host
        and pid) until :meth:`close` releases it, or, on this host, until its process is gone.
        """
        with self.lock:
            held = self._held_numbers()
            first = 0
            while any(str(number) in held for number in range(first, first + n_workers)):
                first += 1
            for number in range(first, first + n_workers):
                held[str(number)] = {"host": HOST, "pid": os.getpid()}
            self.study.set_user_attr(V.ATTR_WORKER_SLOTS, held)
        self._joined = [*getattr(self, "_joined", []), *range(first, first + n_workers)]
        return first

    def _held_numbers(self) -> dict:
        slots = self.study.user_attrs.get(V.ATTR_WORKER_SLOTS)
        if not isinstance(slots, dict):  # a study from before numbers were released (a count): none held
            return {}
        return {number: holder for number, holder in slots.items()
                if not (holder.get("host") == HOST and holder.get("pid") is not None and not pid_alive(holder["pid"]))}

    def _release(self) -> None:
        mine = {str(number) for number in getattr(self, "_joined", [])}
        if not mine:
            return
        with self.lock:
            slots = self._held_numbers()
            self.study.set_user_attr(V.ATTR_WORKER_SLOTS, {n: h for n, h in slots.items() if n not in mine})
        self._joined = []

    def close(self) -> None:
        try:
            self._release()
        except Exception as error:  # the storage went away: the numbers stay held until this pid is gone
            log.warning("the worker numbers could not be released: %s", error)
        finally:
            self.lock.close()


def _storage_has_heartbeat(study) -> bool:
    try:
        return is_heartbeat_enabled(ST.storage_of(study))
    except Exception:  # pragma: no cover - an unusual storage object
        return False


def claim_of(trial) -> dict[str, Any]:
    """The trial's claim (host, pid, worker, heartbeat, at), {} if it has none."""
    claim = trial.user_attrs.get(V.ATTR_CLAIM)
    return claim if isinstance(claim, dict) else {}
