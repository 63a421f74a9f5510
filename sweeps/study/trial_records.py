"""What a sweep's worker writes about its trials beside training them: the link between a
trial and its MLflow run, and the records of trials that did not end normally.

:class:`TrialRecords` is the part of :class:`~sweeps.study.objective.Objective` that holds
the worker's tracking session (one client and background writer for every trial) and
writes:

* the trial's ``mlflow_run_id`` / ``mlflow_experiment_id`` user attributes once its first
  epoch ended (:meth:`link`), the run's ``sweep.state`` / ``fail_reason`` tags (:meth:`tag`);
* a pruned trial's ``pruned_at_epoch`` and ``prune_reason`` (:meth:`mark_pruned`);
* a trial failed by no fault of its own -- the tracking server did not answer -- with its
  re-run queued first (:meth:`fail_retryable`), and a re-run's bookkeeping (:meth:`start_retry`);
* the run of a trial another worker failed meanwhile (:meth:`abandon_lost_run`);
* the wait for a tracking server that stopped answering (:meth:`wait_for_tracking`).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Mapping

from sweeps.config import sweep_settings
from sweeps.core import vocabulary as V
from sweeps.core.errors import TrackingError
from sweeps.core.redaction import redact
from sweeps.study import storage as ST
from sweeps.study.storage import stored_trial
from sweeps.study.trial_errors import STOP, TrackingOutage, TrialFailed
from sweeps.tracking import client as tracking
from sweeps.tracking.session import Session, connect

log = logging.getLogger(__name__)

#: Trial user attributes a re-run must not inherit from the trial it repeats.
_RUN_ATTRS = (V.TRIAL_RUN_ID, V.TRIAL_EXPERIMENT_ID, V.TRIAL_MODEL_URI, V.TRIAL_FIT, V.TRIAL_METRICS,
              V.TRIAL_EPOCHS, V.TRIAL_FAIL_REASON, V.TRIAL_RETRYABLE, V.TRIAL_PRUNED_AT, V.TRIAL_PRUNE_REASON,
              V.TRIAL_INTERRUPTED)


class TrialRecords:
    """The worker's tracking session and the records of its trials (see the module docstring)."""

    def __init__(self, base: Mapping[str, Any], settings: sweep_settings.SweepSettings, session: Session | None = None) -> None:
        self.base = copy.deepcopy(dict(base))
        self.settings = settings
        tracking_group = self.base.get("tracking", {})
        self.tracking_enabled = bool(tracking_group.get("enabled", True))
        self._session = session
        self.current_trial = None  # the live trial being run (for the sweep loop to end it on SIGTERM)
        self.lost = False          # the current trial was failed by another worker while it ran
        self.outage: TrackingOutage | None = None  # the tracking server stayed away during a trial
        self.current_uid: str | None = None        # the current trial's uid tag and run (once known)
        self.current_run_id: str | None = None

    # ------------------------------------------------------------------ session

    def session(self) -> Session | None:
        """This worker's tracking session, opened on first use (TrackingError: the store does not answer)."""
        if self._session is None and self.tracking_enabled:
            self._session = connect(self.prepared()[0].tracking, offload=True)
        return self._session

    def prepared(self):  # pragma: no cover - Objective defines it
        raise NotImplementedError

    @property
    def client(self):
        session = self.session() if self.tracking_enabled else None
        return session.client if session is not None else None

    def experiment_id(self) -> str | None:
        session = self.session() if self.tracking_enabled else None
        return session.experiment_id if session is not None else None

    def drain(self) -> None:
        """Wait until the tails of the finished runs (PNGs, model files, ends) are written."""
        if self._session is not None:
            self._session.writer.drain()

    def close(self) -> None:
        """Drain and stop the background writer (the process may exit after this)."""
        if self._session is not None:
            self._session.close()

    # --------------------------------------------------------------------- links

    def on_run(self, run_id: str, experiment_id: str) -> None:
        self.current_run_id = run_id

    def link(self, trial) -> str | None:
        """Store the current run's id on the trial (after its first epoch)."""
        if self.current_run_id is not None:
            ST.set_user_attrs(trial, {V.TRIAL_RUN_ID: self.current_run_id, V.TRIAL_EXPERIMENT_ID: self.experiment_id()})
        return self.current_run_id

    def find_run(self, uid: str | None) -> str | None:
        """The id of the run tagged with the trial uid ``uid`` (None: none, or not found)."""
        if uid is None or self._session is None:
            return None
        try:
            runs = self.client.search_runs([self.experiment_id()], filter_string=f"tags.`{V.TAG_TRIAL_UID}` = '{uid}'",
                                           max_results=1)
        except Exception as error:  # noqa: BLE001
            log.warning("could not look up the run of trial uid %s: %s", uid, error)
            return None
        return runs[0].info.run_id if runs else None

    def tag(self, run_id: str | None, tags: Mapping[str, str]) -> None:
        if run_id is None or self._session is None:
            return
        self.drain()  # the run's queued writes (its last batch, its end) must not come after these tags
        try:
            tracking.set_tags(self.client, run_id, tags)
        except Exception as error:  # noqa: BLE001
            log.warning("could not tag run %s: %s", run_id, error)

    # ---------------------------------------------------------- pruned and failed

    def mark_pruned(self, trial, epoch: int, reason: str, attrs: Mapping[str, Any] | None = None) -> None:
        """Record on the trial why and when it was pruned (its run was tagged when it ended),
        with ``attrs`` (more user attributes) in the same write."""
        ST.set_user_attrs(trial, {**(attrs or {}), V.TRIAL_PRUNED_AT: int(epoch), V.TRIAL_EPOCHS: int(epoch),
                                  V.TRIAL_PRUNE_REASON: reason[:1000]})

    def fail_retryable(self, trial, reason: str, run_id: str | None, epochs: int) -> None:
        """Fail the trial as not its own fault: queue its re-run first (while it still holds its slot), then raise."""
        frozen = stored_trial(trial)
        queued = frozen is not None and ST.retry_trial(trial.study, frozen, self.settings.max_retries)
        reason = reason + ("; re-run queued" if queued else
                           f"; not re-run (sweep.max_retries={self.settings.max_retries} used up)")
        ST.set_user_attrs(trial, {V.TRIAL_FAIL_REASON: reason[:1000], V.TRIAL_RETRYABLE: True,
                                  V.TRIAL_EPOCHS: int(epochs)})
        self.tag(run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: reason})
        log.warning("trial %d: %s", trial.number, reason)
        raise TrialFailed(reason, retryable=True)

    def start_retry(self, trial) -> None:
        """A re-run (Optuna copied the failed trial's attributes): forget its old run, note what it repeats."""
        if V.TRIAL_UID not in trial.user_attrs:
            return
        for key in _RUN_ATTRS:
            if trial.user_attrs.get(key) is not None:
                trial.set_user_attr(key, None)
        frozen = stored_trial(trial)
        origin = ST.retried_from(frozen) if frozen is not None else None
        if origin is not None:
            trial.set_user_attr(V.TRIAL_RETRY_OF, origin)
            log.info("trial %d re-runs trial %d", trial.number, origin)

    def abandon_lost_run(self, trial) -> None:
        """The current trial was failed by another worker while it ran here (its heartbeat went
        stale): its run, finished or not, ends KILLED, tagged with the trial's final state."""
        self.drain()  # the run's own end (FINISHED) must not come after this one
        run_id = self.current_run_id or self.find_run(self.current_uid)
        frozen = stored_trial(trial)
        state = frozen.state.name if frozen is not None else "FAIL"
        reason = (f"trial {trial.number} was failed by another worker while it ran here "
                  "(no heartbeat within sweep.grace_period); this run does not count")
        self.tag(run_id, {V.TAG_STATE: state, V.TAG_FAIL_REASON: reason, V.TAG_KILLED_BY: reason})
        if run_id is not None and self._session is not None:
            try:
                tracking.terminate(self.client, run_id, "KILLED")
            except Exception as error:  # noqa: BLE001
                log.warning("could not mark run %s KILLED: %s", run_id, error)

    # ---------------------------------------------------------------- outages

    def wait_for_tracking(self) -> None:
        """Before a trial starts: wait (up to ``sweep.outage_wait`` s) for a tracking server that does not answer.

        Only HTTP tracking URIs are probed (a local store has no outages to wait for).

        Raises:
            TrackingOutage: the server did not answer for ``sweep.outage_wait`` seconds.
        """
        uri = str(self.base["tracking"].get("uri") or "") if self.tracking_enabled else ""
        if not uri.startswith(("http://", "https://")):
            return
        timeout = float(self.base["tracking"].get("probe_timeout", 5.0))
        started, pause, warned = time.monotonic(), 1.0, False
        while True:
            try:
                tracking.probe(uri, timeout, self.base["tracking"].get("experiment_name", "ann"))
                if warned:
                    log.warning("the tracking server answers again after %.0f s; the sweep goes on",
                                time.monotonic() - started)
                return
            except TrackingError as error:
                waited = time.monotonic() - started
                if waited >= self.settings.outage_wait:
                    raise TrackingOutage(
                        f"the tracking server {redact(uri)} has not answered for {waited:.0f} s "
                        f"(sweep.outage_wait={self.settings.outage_wait:g}): {str(error).split(': ', 1)[-1]}; "
                        "the study and the finished trials are intact: run the same command again to resume"
                    ) from None
                if not warned:
                    log.warning("the tracking server %s does not answer; waiting up to %g s before the next trial",
                                redact(uri), self.settings.outage_wait)
                    warned = True
                STOP.check()
                time.sleep(min(pause, max(0.1, self.settings.outage_wait - waited)))
                pause = min(pause * 2, 10.0)

    def wait_at_start(self, trial) -> bool:
        """Wait for the tracking server before the trial's run exists; False if it stayed away.

        When it stayed away the trial fails retryable here, and :attr:`outage` tells the
        sweep loop to stop rather than wait all over again before the next trial.
        """
        try:
            self.wait_for_tracking()
            return True
        except TrackingOutage as outage:
            self.outage = outage
            self.fail_retryable(trial, f"tracking failed: {outage}", None, 0)
        return False  # pragma: no cover - fail_retryable raises
