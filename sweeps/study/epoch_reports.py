"""A trial's per-epoch reports off the training thread, and pruning decided without the storage.

Asking Optuna after every epoch costs two database round trips: ``trial.report`` is one
transaction and ``trial.should_prune`` makes the median pruner read every trial of the
study back (together ~15 ms an epoch on SQLite, more than an epoch of a small network).
For the pruners that decide from the study's COMPLETE trials, its direction and the
trial's own intermediate values only -- Optuna's :class:`~optuna.pruners.MedianPruner`,
:class:`~optuna.pruners.PercentilePruner` and :class:`~optuna.pruners.NopPruner`
(:func:`local_pruner`) -- this module

* keeps the trial's intermediate values in a :class:`~optuna.trial.FrozenTrial` of its
  own and asks the study's real pruner object ``pruner.prune(view, frozen)``
  (:class:`LocalDecisions`), where ``view`` is a read-only :class:`StudyView`: a snapshot
  of the study's COMPLETE trials, taken at the trial's first decision and taken again
  when older than :data:`SNAPSHOT_SECONDS`. In a one-worker sweep no trial completes
  while a trial runs, so the decisions are exactly ``trial.should_prune()``'s; in a
  distributed sweep a trial completed by another worker counts at most
  :data:`SNAPSHOT_SECONDS` later than it would with ``should_prune()``;
* writes the values to the storage from one background thread per trial, in order
  (:class:`ReportWriter`), at most :data:`QUEUED_REPORTS` values behind the training (epochs
  faster than the writes wait for them, as before). The writer gathers what comes within
  :data:`BATCH_SECONDS` of a value and writes it at once: one transaction for all of them
  on an RDB storage (:func:`sweeps.study.storage.report_values`; a transaction for each
  value cost about 5 ms of the sweep process's interpreter time, as much as a small
  network's epoch).
  :meth:`ReportWriter.flush` writes what it holds at once, waits for every value to be
  stored and raises what the writer raised; the objective flushes before anything that
  reads or ends the trial (Optuna's tell of a pruned trial takes its last stored
  intermediate value).

Successive halving and hyperband keep writing through the storage (their rungs are
system attributes other workers read) and report only at their rungs.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from typing import Callable, Container, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

#: Seconds a snapshot of the study's COMPLETE trials is used for before it is read again.
SNAPSHOT_SECONDS = 5.0

#: Values a trial's writer may have queued before the training thread waits for it: epochs
#: faster than the storage's writes go at the writes' pace, as when they were written in line,
#: and a stop waits for at most this many writes.
QUEUED_REPORTS = 16

#: Seconds the writer waits, after a value comes, for more to write with it (a flush or a
#: full queue writes at once): the values reach the storage at most this much later.
BATCH_SECONDS = 0.5

#: Optuna's pruners whose ``prune(study, trial)`` reads only ``study.get_trials(deepcopy=False,
#: states=(COMPLETE,))``, ``study.direction`` and the trial's ``last_step`` / ``intermediate_values``.
_LOCAL_PRUNERS = (optuna.pruners.MedianPruner, optuna.pruners.PercentilePruner, optuna.pruners.NopPruner)


def local_pruner(trial):
    """The study's pruner if it can decide from a :class:`StudyView` (see the module docstring), else None."""
    study = getattr(trial, "study", None)
    pruner = getattr(study, "pruner", None)
    return pruner if type(pruner) in _LOCAL_PRUNERS else None


class StudyView:
    """A read-only view of a study for a pruner: its direction and a snapshot of its COMPLETE trials.

    The snapshot is read on first use and again when older than ``max_age`` seconds (other
    workers' newly completed trials count from then on); only COMPLETE trials can be asked for.
    """

    def __init__(self, study, max_age: float = SNAPSHOT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._study = study
        self.max_age = max_age
        self._clock = clock
        self._complete: list[FrozenTrial] | None = None
        self._taken = 0.0
        self.reads = 0  # snapshots taken (each one read of the storage)
        self.directions = list(study.directions)

    @property
    def direction(self) -> optuna.study.StudyDirection:
        if len(self.directions) != 1:
            raise RuntimeError("a single direction cannot be retrieved from a multi-objective study")
        return self.directions[0]

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        """The snapshot's COMPLETE trials (``states`` must ask for COMPLETE trials only)."""
        if states is None or any(state in states for state in TrialState if state != TrialState.COMPLETE):
            raise ValueError("this view of the study holds its COMPLETE trials only")
        if self._complete is None or self._clock() - self._taken >= self.max_age:
            self._complete = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._taken = self._clock()
            self.reads += 1
        trials = self._complete if TrialState.COMPLETE in states else []
        return copy.deepcopy(trials) if deepcopy else list(trials)


class LocalDecisions:
    """A trial's intermediate values kept here, and its pruner asked with a :class:`StudyView`."""

    def __init__(self, trial, pruner, view: StudyView | None = None) -> None:
        self.pruner = pruner
        self.view = view if view is not None else StudyView(trial.study)
        self.frozen = FrozenTrial(
            number=trial.number, state=TrialState.RUNNING, value=None, datetime_start=trial.datetime_start,
            datetime_complete=None, params=trial.params, distributions=trial.distributions, user_attrs={},
            system_attrs={}, intermediate_values={}, trial_id=getattr(trial, "_trial_id", trial.number))

    def report(self, value: float, step: int) -> bool:
        """Keep ``value`` at ``step``; False if the step was reported already (Optuna ignores it too)."""
        if step in self.frozen.intermediate_values:
            return False
        self.frozen.intermediate_values[int(step)] = float(value)
        return True

    def should_prune(self) -> bool:
        return bool(self.pruner.prune(self.view, self.frozen))


class ReportWriter:
    """One background thread writing the values given to :meth:`put` in order (FIFO), at most
    ``max_queued`` values behind (:meth:`put` waits beyond).

    ``write(items)`` gets the ``(value, step)`` pairs that came within ``batch_seconds`` of
    the first (at most ``max_queued``; all at once on :meth:`flush` or :meth:`close`). The
    first error it raises is kept and raised by the next :meth:`put`, :meth:`check` or
    :meth:`flush` (once); the values queued after it are not written (the trial ends on
    that error, as it did when the write happened on the training thread).
    """

    _FLUSH = object()

    def __init__(self, write: Callable[[Sequence[tuple[float, int]]], None], name: str = "trial reports",
                 max_queued: int = QUEUED_REPORTS, batch_seconds: float = BATCH_SECONDS) -> None:
        self._write = write
        self._name = name
        self._max_queued = max_queued
        self._batch_seconds = batch_seconds
        self._queue: queue.Queue = queue.Queue()
        self._room = threading.Semaphore(max_queued)  # values put and not yet written
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._failed = False

    def put(self, value: float, step: int) -> None:
        self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._room.acquire()
        self._queue.put((value, step))

    def check(self) -> None:
        """Raise the writer's error, if it raised one since the last check."""
        error, self._error = self._error, None
        if error is not None:
            raise error

    def flush(self) -> None:
        """Write every value put so far, now, and wait for it; raise what the writer raised."""
        if self._thread is not None:
            self._queue.put(self._FLUSH)
            self._queue.join()
        self.check()

    def close(self) -> None:
        """Write what is queued and stop the thread (an error not raised yet stays with :meth:`check`)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            batch, last = self._gather()
            try:
                if batch and not self._failed:
                    self._write(batch)
            except BaseException as error:  # noqa: BLE001 - raised on the training thread by check()
                self._failed = True
                self._error = error
            finally:
                for _ in batch:
                    self._room.release()
                for _ in range(len(batch) + (last is None or last is self._FLUSH)):  # values and the marker
                    self._queue.task_done()
            if last is None:
                return

    def _gather(self) -> tuple[list[tuple[float, int]], object]:
        """The values to write together, and what ended the gathering: the flush marker, None
        (close), or ``False`` (the batch's time ran out, or it is full)."""
        batch: list[tuple[float, int]] = []
        deadline = None
        while len(batch) < self._max_queued:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if item is None or item is self._FLUSH:
                return batch, item
            batch.append(item)
            deadline = deadline or time.monotonic() + self._batch_seconds
        return batch, False
