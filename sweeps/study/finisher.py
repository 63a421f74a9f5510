"""Who finishes the parent run of a complete study: one process, elected through the storage.

The first process to ask after the study reached ``n_trials`` is elected and recorded in the
study attribute ``sweep.finished`` (host, pid, worker, beat, done); a later one takes over when
the elected one is dead or stuck (:meth:`FinisherElection.elect_finisher`). A part of
:class:`sweeps.study.claims.Coordinator`, which holds the study's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Callable

from sweeps.core import vocabulary as V
from sweeps.core.locks import HOST, StorageLock, pid_alive

log = logging.getLogger(__name__)

#: A finisher still alive that has not ended the parent run after this many seconds is replaced.
FINISH_TAKEOVER_SECONDS = 300
#: Without heartbeats: seconds between two beats of a finisher, and after which its beat is stale.
FINISH_BEAT_SECONDS = 10
FINISH_STALE_SECONDS = 30



class FinisherElection:
    """The finisher's election, beat and record; mixed into :class:`sweeps.study.claims.Coordinator`
    (which provides ``study``, ``settings``, ``worker``, ``lock``, ``census()`` and ``_study_lock()``)."""

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


def finisher_label(record: dict) -> str:
    """``worker 2 (pid 4242 on host alpha)`` for a ``sweep.finished`` record."""
    who = f"pid {record.get('pid', '?')} on host {record.get('host', '?')}"
    return f"worker {record['worker']} ({who})" if record.get("worker") is not None else who
