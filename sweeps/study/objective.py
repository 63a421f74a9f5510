"""One trial of a sweep: the trial's config, a tracked training run, and what Optuna is told.

:class:`Objective` is the function Optuna calls with a trial. It

1. draws the trial's values from the search space and writes them into a copy of the
   training config (:func:`trial_config`): ``model.hidden_layers``, ``optimizer.lr``, ...;
2. trains through :func:`sweeps.training.run.train`, the same code as ``ann-train``, as a child
   run of the sweep's parent run, named after what the trial is
   (``t007 relu 2x64 lr=3e-3 bs=64``) and tagged ``sweep.study_name``,
   ``sweep.trial_number``, ``sweep.trial_uid`` and ``sweep.state``;
3. reports the validation metric to Optuna after every epoch (:class:`EpochReporter`)
   and raises :class:`optuna.TrialPruned` when the pruner says so: the run then ends
   KILLED with its partial curves and the tags ``pruned=true``, ``pruned_at_epoch``,
   ``prune_reason``;
4. returns the metric of the weights the run keeps: the last epoch's, or the best
   epoch's when ``training.early_stopping`` and ``training.restore_best_weights`` are on.
   Metrics known only at the end (``n_parameters``) come from the run's final metrics.

How trials end:

* **non-finite loss** -- a NaN or infinite loss (the engine stops at once) or validation
  metric ends the trial **PRUNED**, not failed: Optuna's samplers then learn that the
  region is bad (a failed trial teaches them nothing). The run ends KILLED with
  ``prune_reason`` (``training loss became non-finite (nan) in epoch 3``), and the trial
  holds the same reason as its user attribute ``prune_reason``;
* **any other exception** fails the trial: its message is the trial's ``fail_reason``
  and the run (if it had started) is FAILED with the ``error`` tag; the objective raises
  :class:`TrialFailed`, which the sweep catches and counts against ``sweep.max_failures``;
* **Ctrl-C / SIGTERM** -- the trial is marked ``interrupted`` and the exception propagates;
* **the tracking server does not answer** (each request is retried for about a minute
  first, see docs/explanation/heartbeats.md) -- the trial fails *retryable*: ``fail_reason``
  says what failed, ``retryable=true``, it does not count toward ``n_trials``, and a
  re-run with the same values is queued (WAITING) before the trial ends, up to
  ``sweep.max_retries`` times. A pruned trial whose curves cannot be confirmed on the
  server is treated the same way, so no finished trial lacks its metrics;
* **its trial was failed by another worker** (no heartbeat within the grace period while
  this process was stalled) -- :class:`TrialLost`: the run ends, the sweep goes on.

Links both ways: the trial's user attributes hold ``mlflow_run_id`` (set as soon as the
first epoch ended), ``mlflow_experiment_id``, ``mlflow_model_uri``, ``fit``,
``epochs_run`` and ``metrics`` (the run's best-epoch validation and test metrics and
``n_parameters``); the run's tags hold the study name and the trial number.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import uuid
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf

from sweeps.core import vocabulary as V
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.config import CONFIG_DIR
from sweeps.config.run_spec import format_value
from sweeps.core.redaction import redact
from sweeps.core.errors import TrackingError, one_line
from sweeps.core.names import describe_config
from sweeps.config.space import SearchSpace
from sweeps.core.faults import StorageOutage

log = logging.getLogger(__name__)



class TrialFailed(Exception):
    """A trial failed; ``str()`` is the one-line reason (also the trial's ``fail_reason``).

    ``retryable``: the failure was not the trial's (the tracking server did not answer);
    it does not count toward ``n_trials`` and a re-run is queued.
    """

    def __init__(self, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable


class TrialLost(Exception):
    """The trial was ended by another process (declared dead for a stale heartbeat) while it ran."""


class TrackingOutage(Exception):
    """The tracking server stopped answering for longer than ``sweep.outage_wait``; ``str()`` is one line."""


#: Substrings of errors that mean "the tracking store did not answer", not "the trial is bad".
_OUTAGE_MARKERS = (
    "API request to", "Max retries exceeded", "Connection refused", "Connection aborted", "Connection reset",
    "RemoteDisconnected", "timed out", "Temporarily Unavailable", "TEMPORARILY_UNAVAILABLE", "Bad Gateway",
    "Service Unavailable", "Gateway Timeout", "could not connect to server", "server closed the connection",
    "no MLflow server answers",
)


def is_tracking_failure(error: BaseException) -> bool:
    """Whether ``error`` says the tracking store (or the network to it) failed, rather than the trial."""
    from sweeps.core.errors import TrackingError

    if isinstance(error, (TrackingError, ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(error, requests.exceptions.RequestException):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        from mlflow.exceptions import MlflowException

        if isinstance(error, MlflowException):
            text = str(error)
            return any(marker in text for marker in _OUTAGE_MARKERS)
    except ImportError:  # pragma: no cover
        pass
    try:
        import sqlalchemy.exc

        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


class StopRequest:
    """A stop asked for by a signal, acted on at the next safe point.

    ``ann-sweep`` turns its first Ctrl-C / SIGTERM into a request instead of an exception
    raised wherever the main thread happens to be (possibly inside a database write of
    the Optuna storage or the MLflow store, which would leave a lock behind). The request
    is acted on at the end of the running epoch (:class:`EpochReporter`) or before the
    next trial: :meth:`check` raises ``KeyboardInterrupt`` (SIGINT) or
    :class:`sweeps.training.run.Terminated` (SIGTERM) there.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        self.signum = signum

    def clear(self) -> None:
        self.signum = None

    def check(self) -> None:
        if self.signum is None:
            return
        import signal

        from sweeps.training.run import Terminated

        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(self.signum)


#: The process's stop request (see :class:`StopRequest`).
STOP = StopRequest()


# ------------------------------------------------------------------------- config


def load_group_option(group: str, option: str) -> dict[str, Any]:
    """The plain contents of ``conf/<group>/<option>.yaml`` (a group option without defaults)."""
    path = CONFIG_DIR / group / f"{option}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def trial_config(base: Mapping[str, Any], space: SearchSpace, values: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """The training config of a trial and the overrides that make it from ``base``.

    ``base`` is the resolved training config (groups ``model``, ``optimizer``, ``dataset``,
    ``training``, ``tracking``). Choosing an optimizer other than the base one replaces the
    ``optimizer`` group by that option's file (``conf/optimizer/<name>.yaml``), then the
    trial's ``lr`` (if searched) is set in it.
    """
    cfg = copy.deepcopy(dict(base))
    base_layers = tuple(cfg["model"].get("hidden_layers") or ())
    overrides = []
    for key, value in space.overrides(values, base_layers).items():
        if key == "optimizer.name":
            if value != cfg["optimizer"].get("name"):
                cfg["optimizer"] = load_group_option("optimizer", value)
            overrides.append(f"optimizer={value}")
            continue
        *parents, name = key.split(".")
        node = cfg
        for part in parents:  # training.schedule.warmup_epochs: a key inside nested groups
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[name] = value
        overrides.append(f"{key}={_override_value(value)}")
    return cfg, overrides


def _override_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return format_value(value)


def run_name(number: int, cfg: Mapping[str, Any], searched: Sequence[str] = ()) -> str:
    """What a trial is, in a few words: ``t007 relu 2x64 lr=3e-3 bs=64`` (+ other searched settings)."""
    return f"t{number:03d} {describe_config(cfg, searched)}"


# ------------------------------------------------------------------------ reporter


class EpochReporter:
    """The per-epoch callback of a trial's training run.

    Reports the first metric to Optuna (single-objective sweeps), prunes, and links the
    trial to its MLflow run after the first epoch. Keeps every epoch's logs.
    """

    def __init__(self, trial, epoch_key: str | None, report: bool, pruner_name: str, link=None,
                 budget_ends: float | None = None) -> None:
        self.trial = trial
        self.budget_ends = budget_ends  # time.time() at which sweep.budget is spent: prune there
        self.epoch_key = epoch_key
        self.report = report
        self.pruner_name = pruner_name
        self.link = link
        self.history: dict[str, list[float]] = {}
        self.epochs = 0

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> None:
        import optuna

        STOP.check()
        self.epochs = epoch
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if epoch == 1 and self.link is not None:
            self.link()
        if self.epoch_key is None or self.epoch_key not in logs:
            return
        value = float(logs[self.epoch_key])
        name = _metric_label(self.epoch_key)
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"{name} became non-finite ({value}) in epoch {epoch}")
        if not self.report:
            return
        try:
            self.trial.report(value, epoch)
        except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
            # A storage error here is the database having ended this process's session
            # (stalled inside a transaction, see sweeps.study.storage.open_storage): lost too if the
            # trial was failed meanwhile; any other storage error stays what it is.
            frozen = ST.stored_trial(self.trial)
            if frozen is not None and frozen.state.is_finished():
                raise TrialLost(f"trial {self.trial.number} was failed by another worker while it ran "
                                "(no heartbeat within sweep.grace_period); this run is abandoned") from None
            raise
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.pruner_name} pruner stopped it at epoch {epoch} ({name}={value:.4g})")
        if self.budget_ends is not None and time.time() >= self.budget_ends:
            raise optuna.TrialPruned(f"sweep.budget ran out: stopped at epoch {epoch} ({name}={value:.4g})")


def _metric_label(engine_key: str) -> str:
    return V.metric_name(engine_key)


# ----------------------------------------------------------------------- objective


class Objective:
    """Optuna's objective for one sweep: ``objective(trial) -> value`` (or values).

    Args:
        base: the resolved training config (``model``, ``optimizer``, ``dataset``,
            ``training``, ``tracking``), the same for every trial.
        space: the search space.
        settings: the sweep's settings (metrics, directions, study name, pruner).
        parent_run_id: the sweep's MLflow parent run (None: trials are top-level runs).
        overrides: the user's command-line overrides, logged with every trial's run in
            ``config/overrides.yaml`` ahead of the trial's own values.
        worker: the worker's index (a trial user attribute).
        budget_ends: ``time.time()`` at which ``sweep.budget`` is spent: a trial still
            running then is pruned at the end of its epoch (single-objective sweeps).
    """

    def __init__(
        self,
        base: Mapping[str, Any],
        space: SearchSpace,
        settings: sweep_settings.SweepSettings,
        *,
        parent_run_id: str | None = None,
        overrides: Sequence[str] = (),
        worker: int = 0,
        budget_ends: float | None = None,
    ) -> None:
        self.base = copy.deepcopy(dict(base))
        self.budget_ends = budget_ends
        self.space = space
        self.settings = settings
        self.parent_run_id = parent_run_id
        self.overrides = list(overrides)
        self.worker = worker
        tracking = self.base.get("tracking", {})
        self.tracking_enabled = bool(tracking.get("enabled", True))
        self._client = None
        self._experiment_id: str | None = None
        self.current_trial = None  # the live trial being run (for the sweep loop to end it on SIGTERM)
        self.lost = False          # the current trial was failed by another worker while it ran
        self.outage: TrackingOutage | None = None  # the tracking server stayed away during a trial
        self.current_uid: str | None = None        # the current trial's uid tag and run (once known)
        self.current_run_id: str | None = None

    # MLflow client of this process, made on first use (each worker process has its own).
    @property
    def client(self):
        if self._client is None and self.tracking_enabled:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.base["tracking"]["uri"])
        return self._client

    def experiment_id(self) -> str | None:
        if self._experiment_id is None and self.client is not None:
            experiment = self.client.get_experiment_by_name(self.base["tracking"]["experiment_name"])
            self._experiment_id = experiment.experiment_id if experiment is not None else None
        return self._experiment_id

    def __call__(self, trial) -> float | tuple[float, ...]:
        import optuna

        from sweeps.training.run import Terminated, train

        live = isinstance(trial, optuna.Trial)
        self.current_trial = trial if live else None
        self.lost = False
        if live:
            self._start_retry(trial)
        base_layers = tuple(self.base["model"].get("hidden_layers") or ())
        values = self.space.suggest(trial, base_layers, self.base)
        cfg, trial_overrides = trial_config(self.base, self.space, values)
        uid = uuid.uuid4().hex
        trial.set_user_attr(V.TRIAL_UID, uid)
        trial.set_user_attr(V.TRIAL_WORKER, self.worker)
        name = run_name(trial.number, cfg, list(self.space.dimensions))
        tags = {
            V.TAG_STUDY: self.settings.study_name,
            V.TAG_TRIAL: str(trial.number),
            V.TAG_TRIAL_UID: uid,
            V.TAG_STATE: "RUNNING",
            V.TAG_STORAGE: redact(self.settings.storage or ""),
            V.TAG_ROLE: "trial",
        }
        link_state = {"run_id": None}

        def link() -> str | None:
            if link_state["run_id"] is None:
                link_state["run_id"] = self._link(trial, uid)
            self.current_run_id = link_state["run_id"]
            return link_state["run_id"]

        self.current_uid, self.current_run_id = uid, None

        reporter = EpochReporter(
            trial,
            self.settings.epoch_key,
            report=not self.settings.multi_objective,
            pruner_name=self.settings.pruner,
            link=link if self.tracking_enabled else None,
            budget_ends=self.budget_ends,
        )
        log.info("trial %d: %s", trial.number, name)

        def run():
            return train(cfg, callbacks=[reporter], parent_run_id=self.parent_run_id, run_name=name, tags=tags,
                         overrides=[*self.overrides, *trial_overrides])

        try:
            try:
                result = run()
            except TrackingError:
                # The store did not answer when the run was to be created (it went away
                # since the check before this trial): no run exists yet, so wait for it
                # as before a trial (sweep.outage_wait) and start again.
                if not live or not self._wait_at_start(trial):
                    raise
                result = run()
        except optuna.TrialPruned as pruned:
            reason = str(pruned) or f"pruned at epoch {reporter.epochs}"
            run_id = link()
            if self.tracking_enabled and live:
                missing = self._curves_missing(run_id, reporter.epochs)
                if missing:
                    self._fail_retryable(trial, f"pruned at epoch {reporter.epochs}, but {missing}", run_id,
                                         reporter.epochs)
            reason = self._mark_pruned(trial, run_id, reporter.epochs, reason, already_killed=True)
            raise optuna.TrialPruned(reason) from None
        except TrialFailed:  # already recorded (the server stayed away before the run existed)
            raise
        except TrialLost as lost:
            self.lost = True
            self._tag(link_state["run_id"], {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: str(lost)})
            raise
        except StorageOutage as outage:  # the trial stays RUNNING: it goes stale and is re-run elsewhere
            self._tag(link_state["run_id"] or self._find_run(uid), {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: str(outage)})
            raise
        except (KeyboardInterrupt, Terminated):
            trial.set_user_attr(V.TRIAL_INTERRUPTED, True)
            trial.set_user_attr(V.TRIAL_EPOCHS, reporter.epochs)
            run_id = link() if self.tracking_enabled else None
            self._tag(run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: "interrupted"})
            raise
        except Exception as error:
            reason = one_line(error, typed=True)
            if live and self.tracking_enabled and is_tracking_failure(error):
                # No more requests to a server that just failed us: the run (if any) is
                # reconciled later by ann-sweep-status through its trial-number tag.
                self._fail_retryable(trial, f"tracking failed: {reason}", None, reporter.epochs)
            trial.set_user_attr(V.TRIAL_FAIL_REASON, reason[:1000])
            trial.set_user_attr(V.TRIAL_EPOCHS, reporter.epochs)
            run_id = link() if self.tracking_enabled else None
            self._tag(run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: reason})
            raise TrialFailed(reason) from None

        run_id = result.get("run_id")
        if run_id:
            self.current_run_id = link_state["run_id"] = run_id
            trial.set_user_attr(V.TRIAL_RUN_ID, run_id)
            trial.set_user_attr(V.TRIAL_EXPERIMENT_ID, result.get("experiment_id"))
        if result.get("model_uri"):
            trial.set_user_attr(V.TRIAL_MODEL_URI, result["model_uri"])
        trial.set_user_attr(V.TRIAL_FIT, result.get("fit"))
        trial.set_user_attr(V.TRIAL_METRICS, {
            key: float(value) for key, value in result.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and (key.startswith(V.BEST_PREFIX) or key.endswith("/test") or key == V.N_PARAMETERS)
        })
        trial.set_user_attr(V.TRIAL_EPOCHS, int(result.get("epochs_run", reporter.epochs)))

        non_finite = self._non_finite_reason(result, run_id)
        if non_finite is not None:
            reason = self._mark_pruned(trial, run_id, reporter.epochs + 1, non_finite, already_killed=False)
            raise optuna.TrialPruned(reason)

        objective_values = []
        for metric in self.settings.metrics:
            value = self._value(metric, cfg, result, reporter)
            if value is None or not math.isfinite(value):
                reason = f"{metric} is not finite ({value}) at the end of training"
                self._mark_pruned(trial, run_id, reporter.epochs, reason, already_killed=False)
                raise optuna.TrialPruned(reason)
            objective_values.append(value)
        if run_id:
            from sweeps.tracking import client as tracking
            try:  # a complete trial's run must say so: these two writes are not optional
                tracking.set_tags(self.client, run_id, {V.TAG_STATE: "COMPLETE"})
                tracking.log_metrics(self.client, run_id, {V.OBJECTIVE: objective_values[0]},
                                     step=int(result.get("epochs_run", reporter.epochs)))
            except Exception as error:
                reason = f"tracking failed after training: {one_line(error, typed=True)}"
                if live and is_tracking_failure(error):
                    self._fail_retryable(trial, reason, None, reporter.epochs)
                trial.set_user_attr(V.TRIAL_FAIL_REASON, reason[:1000])
                raise TrialFailed(reason) from None
        return objective_values[0] if len(objective_values) == 1 else tuple(objective_values)

    # ---------------------------------------------------------- faults and retries

    def abandon_lost_run(self, trial) -> None:
        """The current trial was failed by another worker while it ran here (its heartbeat went
        stale): its run, finished or not, ends KILLED, tagged with the trial's final state."""
        run_id = self.current_run_id or (self._find_run(self.current_uid) if self.current_uid else None)
        frozen = ST.stored_trial(trial)
        state = frozen.state.name if frozen is not None else "FAIL"
        reason = (f"trial {trial.number} was failed by another worker while it ran here "
                  "(no heartbeat within sweep.grace_period); this run does not count")
        self._tag(run_id, {V.TAG_STATE: state, V.TAG_FAIL_REASON: reason, V.TAG_KILLED_BY: reason})
        if run_id is not None and self.client is not None:
            from sweeps.tracking import client as tracking
            try:
                tracking.terminate(self.client, run_id, "KILLED")
            except Exception as error:
                log.warning("could not mark run %s KILLED: %s", run_id, error)

    def wait_for_tracking(self) -> None:
        """Before a trial starts: wait (up to ``sweep.outage_wait`` s) for a tracking server that does not answer.

        Only HTTP tracking URIs are probed (a local store has no outages to wait for).

        Raises:
            TrackingOutage: the server did not answer for ``sweep.outage_wait`` seconds.
        """
        if not self.tracking_enabled:
            return
        uri = str(self.base["tracking"].get("uri") or "")
        if not uri.startswith(("http://", "https://")):
            return
        from sweeps.tracking import client as tracking
        from sweeps.core.errors import TrackingError

        timeout = float(self.base["tracking"].get("probe_timeout", 5.0))
        started = time.monotonic()
        pause = 1.0
        warned = False
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

    def _wait_at_start(self, trial) -> bool:
        """Wait for the tracking server before the trial's run exists; False if it stayed away.

        When it stayed away the trial fails retryable here, and :attr:`outage` tells the
        sweep loop to stop rather than wait all over again before the next trial.
        """
        try:
            self.wait_for_tracking()
            return True
        except TrackingOutage as outage:
            self.outage = outage
            self._fail_retryable(trial, f"tracking failed: {outage}", None, 0)
        return False  # pragma: no cover - _fail_retryable raises

    def _start_retry(self, trial) -> None:
        """A re-run (Optuna copied the failed trial's attributes): forget its old run, note what it repeats."""
        if V.TRIAL_UID not in trial.user_attrs:
            return
        for key in (V.TRIAL_RUN_ID, V.TRIAL_EXPERIMENT_ID, V.TRIAL_MODEL_URI, V.TRIAL_FIT, V.TRIAL_METRICS,
                    V.TRIAL_EPOCHS, V.TRIAL_FAIL_REASON, V.TRIAL_RETRYABLE, V.TRIAL_PRUNED_AT, V.TRIAL_PRUNE_REASON,
                    V.TRIAL_INTERRUPTED):
            if trial.user_attrs.get(key) is not None:
                trial.set_user_attr(key, None)
        frozen = ST.stored_trial(trial)
        origin = ST.retried_from(frozen) if frozen is not None else None
        if origin is not None:
            trial.set_user_attr(V.TRIAL_RETRY_OF, origin)
            log.info("trial %d re-runs trial %d", trial.number, origin)

    def _fail_retryable(self, trial, reason: str, run_id: str | None, epochs: int) -> None:
        """Fail the trial as not its own fault: queue its re-run first (while it still holds its slot), then raise."""
        frozen = ST.stored_trial(trial)
        queued = frozen is not None and ST.retry_trial(trial.study, frozen, self.settings.max_retries)
        reason = reason + ("; re-run queued" if queued else f"; not re-run (sweep.max_retries={self.settings.max_retries} used up)")
        trial.set_user_attr(V.TRIAL_FAIL_REASON, reason[:1000])
        trial.set_user_attr(V.TRIAL_RETRYABLE, True)
        trial.set_user_attr(V.TRIAL_EPOCHS, int(epochs))
        self._tag(run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: reason})
        log.warning("trial %d: %s", trial.number, reason)
        raise TrialFailed(reason, retryable=True)

    def _curves_missing(self, run_id: str | None, epochs: int) -> str | None:
        """Why a pruned trial's run cannot be confirmed to hold its curves (None: it does)."""
        if not epochs:
            return None
        if run_id is None:
            return "its run could not be found on the tracking server"
        key = V.metric_name(self.settings.epoch_key or "val_loss")
        try:
            steps = {m.step for m in self.client.get_metric_history(run_id, key)}
        except Exception as error:
            return f"its curves could not be read back ({one_line(error, typed=True)[:200]})"
        if len(steps) < epochs:
            return f"its run holds {len(steps)} of {epochs} epochs of {key}"
        return None

    # -------------------------------------------------------------------- helpers

    def _value(self, metric: str, cfg: Mapping[str, Any], result: Mapping[str, Any], reporter: EpochReporter) -> float | None:
        """The metric of the weights the run keeps (see the module docstring)."""
        epoch_key = sweep_settings.METRICS[metric][0]
        if epoch_key is None:
            value = result.get(metric)
            return None if value is None else float(value)
        training = cfg["training"]
        restored = bool(training.get("early_stopping")) and bool(training.get("restore_best_weights", True))
        if restored and V.best_metric(metric) in result:
            return float(result[V.best_metric(metric)])
        values = reporter.history.get(epoch_key)
        return float(values[-1]) if values else None

    @staticmethod
    def _non_finite_reason(result: Mapping[str, Any], run_id: str | None) -> str | None:
        """The reason when training stopped on a non-finite loss, else None.

        :func:`sweeps.training.run.train` returns such a run normally, diagnosed ``diverged``;
        it is told from a finite divergence by the missing ``stopped_early`` metric,
        which only a ``fit`` that returned records.
        """
        if result.get("fit") != "diverged" or "stopped_early" in result:
            return None
        return str(result.get("fit_reason") or "the loss became non-finite")

    def _mark_pruned(self, trial, run_id: str | None, epoch: int, reason: str, *, already_killed: bool) -> str:
        """Record why and when the trial was pruned on the trial and its run; returns the reason."""
        trial.set_user_attr(V.TRIAL_PRUNED_AT, int(epoch))
        trial.set_user_attr(V.TRIAL_EPOCHS, int(epoch))
        if run_id is not None and self.client is not None:
            stop_reason = None
            try:
                stop_reason = self.client.get_run(run_id).data.tags.get("stop_reason")
            except Exception:
                pass
            if stop_reason and "non-finite" in stop_reason:
                reason = stop_reason  # the engine's own words: "training loss became non-finite (nan) in epoch 3"
        trial.set_user_attr(V.TRIAL_PRUNE_REASON, reason[:1000])
        if run_id is None or self.client is None:
            return reason
        self._tag(run_id, {
            V.TAG_STATE: "PRUNED", V.TAG_PRUNED: "true", V.TAG_PRUNED_AT: str(int(epoch)), V.TAG_PRUNE_REASON: reason,
        })
        if not already_killed:
            from sweeps.tracking import client as tracking
            try:
                tracking.terminate(self.client, run_id, "KILLED")
            except Exception as error:  # the trial's state matters more than the run's
                log.warning("could not mark run %s KILLED: %s", run_id, error)
        return reason

    def _link(self, trial, uid: str) -> str | None:
        """Find this trial's run by its uid tag and store the run id on the trial."""
        run_id = self._find_run(uid)
        if run_id is not None:
            trial.set_user_attr(V.TRIAL_RUN_ID, run_id)
            trial.set_user_attr(V.TRIAL_EXPERIMENT_ID, self.experiment_id())
        return run_id

    def _find_run(self, uid: str) -> str | None:
        """The id of the run tagged with the trial uid ``uid`` (None: none, or not found)."""
        if self.client is None:
            return None
        try:
            experiment_id = self.experiment_id()
            if experiment_id is None:
                return None
            runs = self.client.search_runs(
                [experiment_id], filter_string=f"tags.`{V.TAG_TRIAL_UID}` = '{uid}'", max_results=1
            )
        except Exception as error:
            log.warning("could not look up the run of trial uid %s: %s", uid, error)
            return None
        return runs[0].info.run_id if runs else None

    def _tag(self, run_id: str | None, tags: Mapping[str, str]) -> None:
        if run_id is None or self.client is None:
            return
        from sweeps.tracking import client as tracking
        try:
            tracking.set_tags(self.client, run_id, tags)
        except Exception as error:
            log.warning("could not tag run %s: %s", run_id, error)
