"""Exactly ``n_trials``, whoever runs them: the storage-side claim of the next trial.

Any number of ``ann-sweep`` processes -- on one machine or on several sharing one
PostgreSQL study -- may work on the same study. Each one starts its next trial only
through :meth:`Coordinator.run_one`, which

1. takes the study's **lock**, a lock the storage's own database or machine hands out
   (:class:`sweeps.core.locks.StorageLock`): a PostgreSQL advisory lock (``pg_advisory_lock``), a MySQL
   ``GET_LOCK``, or an exclusive ``flock`` for an SQLite or journal file (processes of
   one machine). The lock dies with its holder's connection or process;
2. fails the trials whose heartbeat is stale (their worker died), which queues their
   re-runs (Optuna's retry callback, see :func:`sweeps.study.optuna_study.open_storage`);
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

import contextlib
import datetime
import logging
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sweeps.core import vocabulary as V
from sweeps.core.locks import StorageLock
from sweeps.study import optuna_study as S

log = logging.getLogger(__name__)


#: A finisher still alive that has not ended the parent run after this many seconds is replaced.
FINISH_TAKEOVER_SECONDS = 300
#: Without heartbeats: seconds between two beats of a finisher, and after which its beat is stale.
FINISH_BEAT_SECONDS = 10
FINISH_STALE_SECONDS = 30

HOST = socket.gethostname()


# ----------------------------------------------------------------------- coordinator


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie (dead, not yet reaped)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError):
        return True
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (not Linux): the signal test is all we have
        return True


@dataclass
class Census:
    """What the storage holds right now, as far as the budget is concerned."""

    counted: int                                   # trials that count toward n_trials
    alive: list = field(default_factory=list)      # RUNNING trials whose worker is (presumed) alive
    leftover: list = field(default_factory=list)   # RUNNING trials of workers known or presumed dead
    waiting: list = field(default_factory=list)    # queued trials (re-runs, enqueued by hand)

    def room(self, n_trials: int) -> int:
        return n_trials - self.counted - len(self.alive)


class Coordinator:
    """The storage-side coordination of one process's workers on a study (see the module docstring).

    Args:
        settings: the sweep's settings (``n_trials``, heartbeats).
        study: the loaded study, opened with :func:`sweeps.study.optuna_study.open_sweep_storage`.
        worker: this process's worker number (recorded in each claim).
        lock: the study's lock (default: :meth:`StorageLock.for_storage`).
    """

    def __init__(self, settings: S.SweepSettings, study, worker: int = 0, lock: StorageLock | None = None) -> None:
        self.settings = settings
        self.study = study
        self.worker = worker
        self.lock = lock or self._study_lock()
        self.heartbeats = settings.heartbeats and _storage_has_heartbeat(study)

    def _study_lock(self) -> StorageLock:
        """The study's lock; a holder that cannot run loses it after the grace period (or a minute)."""
        lease = self.settings.grace_seconds or S.IDLE_IN_TRANSACTION_TIMEOUT
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
        from optuna.trial import TrialState

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
        import optuna
        from optuna.trial import TrialState

        running = {t._trial_id: t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        if not running:
            return []
        storage = S.storage_of(self.study)
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
        import sqlalchemy

        grace = datetime.timedelta(seconds=self.settings.grace_seconds)
        now = datetime.datetime.now()
        suspects = [trial_id for trial_id, trial in running.items()
                    if claim_of(trial).get("heartbeat") and trial.datetime_start is not None
                    and now - trial.datetime_start > grace]
        if not suspects:
            return []
        backend = getattr(S.storage_of(self.study), "_backend", S.storage_of(self.study))
        with backend.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(
                sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids")
                .bindparams(sqlalchemy.bindparam("ids", expanding=True)), {"ids": suspects})}
        return [trial_id for trial_id in suspects if trial_id not in beating]

    # ------------------------------------------------------------------- claims

    def run_one(self, objective: Callable, *, catch: tuple = (), callbacks: Sequence[Callable] = ()) -> str:
        """Run one trial if the budget has room: ``"ran"``, ``"wait"`` (all taken, some still
        running elsewhere: look again soon) or ``"done"`` (nothing left to run)."""
        import optuna

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
            S.storage_of(self.study).record_heartbeat(trial._trial_id)
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

    def elect_finisher(self, parent_status: Callable[[], str | None] | None = None) -> bool:
        """Whether this process finishes the parent run of the complete study (once per completion).

        The first process to ask after the study reached ``n_trials`` is elected and
        recorded in the study attribute ``sweep.finished`` (host, pid, worker, beat, done).
        A later one is elected in its place when the elected one is dead -- on this host
        its process is gone; on another, its beat (written every heartbeat interval while
        it finishes, :meth:`finishing`) is older than the grace period -- or when it left
        the parent run RUNNING for :data:`FINISH_TAKEOVER_SECONDS`.
        """
        with self.lock:
            counted = self.census().counted
            record = self.study.user_attrs.get(V.ATTR_FINISHED) or {}
            now = time.time()
            same = record.get("trials") == counted and record.get("n_trials") == self.settings.n_trials
            if same and (record.get("done") or self.finisher_alive(record)):
                stuck = not record.get("done") and now - float(record.get("time", now)) > FINISH_TAKEOVER_SECONDS
                if not (stuck and parent_status is not None and parent_status() == "RUNNING"):
                    return False
            if same and not record.get("done"):
                log.warning("the parent run's finisher (%s) is gone: this process finishes the parent run instead",
                            finisher_label(record))
            self.study.set_user_attr(V.ATTR_FINISHED, {
                "trials": counted, "n_trials": self.settings.n_trials, "host": HOST, "pid": os.getpid(),
                "worker": self.worker, "time": now, "beat": now, "done": False,
            })
            return True

    def finisher_alive(self, record: dict) -> bool:
        """Whether the finisher of ``record`` (the ``sweep.finished`` attribute) is alive, as far as we can tell."""
        if record.get("host") == HOST and record.get("pid") is not None:
            return pid_alive(record["pid"])
        stale_after = self.settings.grace_seconds or FINISH_STALE_SECONDS
        return time.time() - float(record.get("beat", record.get("time", 0))) <= stale_after

    def finish_record(self) -> dict:
        """The ``sweep.finished`` attribute as the storage holds it now ({} if none)."""
        return dict(self.study.user_attrs.get(V.ATTR_FINISHED) or {})  # read from the storage each time

    @contextlib.contextmanager
    def finishing(self):
        """Hold the election while the block finishes the parent run: beat, and record ``done`` at the end.

        The beat (every heartbeat interval, on a lock connection of its own) tells workers
        of other hosts that this finisher is alive. ``done`` is recorded when the block
        ends normally or with an ``Exception`` (the parent run was then ended as it could
        be); after ``KeyboardInterrupt`` or a kill the next worker (or ``ann-sweep-status``)
        takes over.
        """
        stop = threading.Event()
        interval = self.settings.heartbeat_interval or FINISH_BEAT_SECONDS
        lock = self._study_lock()

        def beat() -> None:
            while not stop.wait(interval):
                with contextlib.suppress(Exception):
                    self._update_record(lock, beat=time.time())

        thread = threading.Thread(target=beat, name="ann-sweep-finisher-beat", daemon=True)
        thread.start()
        ended = False
        try:
            yield
            ended = True
        except Exception:
            ended = True
            raise
        finally:
            stop.set()
            thread.join(timeout=60)
            try:
                if ended:
                    self._update_record(lock, done=True, time=time.time())
            finally:
                lock.close()

    def _update_record(self, lock: "StorageLock", **changes) -> None:
        """Change this process's ``sweep.finished`` record under ``lock`` (not if another process holds the election)."""
        with lock:
            record = self.finish_record()
            if record.get("host") == HOST and record.get("pid") == os.getpid():
                self.study.set_user_attr(V.ATTR_FINISHED, {**record, **changes})

    def close(self) -> None:
        try:
            self._release()
        except Exception as error:  # the storage went away: the numbers stay held until this pid is gone
            log.warning("the worker numbers could not be released: %s", error)
        finally:
            self.lock.close()


def _storage_has_heartbeat(study) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    try:
        return is_heartbeat_enabled(S.storage_of(study))
    except Exception:  # pragma: no cover - an unusual storage object
        return False


def finisher_label(record: dict) -> str:
    """``worker 2 (pid 4242 on host alpha)`` for a ``sweep.finished`` record."""
    who = f"pid {record.get('pid', '?')} on host {record.get('host', '?')}"
    return f"worker {record['worker']} ({who})" if record.get("worker") is not None else who


def claim_of(trial) -> dict[str, Any]:
    """The trial's claim (host, pid, worker, heartbeat, at), {} if it has none."""
    claim = trial.user_attrs.get(V.ATTR_CLAIM)
    return claim if isinstance(claim, dict) else {}
