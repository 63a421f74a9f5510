"""One trial of a sweep: the trial's config, a tracked training run, and what Optuna is told.

:class:`Objective` is the function Optuna calls with a trial. It

1. draws the trial's values from the search space and writes them into a copy of the
   training config (:func:`trial_config`): ``model.hidden_layers``, ``optimizer.lr``, ...;
2. trains through :func:`sweeps.training.run.train`, the same code as ``ann-train``, as a child
   run of the sweep's parent run, named after what the trial is
   (``t007 relu 2x64 lr=3e-3 bs=64``) and tagged ``sweep.study_name``,
   ``sweep.trial_number``, ``sweep.trial_uid`` and ``sweep.state``;
3. reports the validation metric to Optuna where the pruner decides (every epoch, or the rungs
   of successive halving and hyperband: :func:`sweeps.study.pruning.report_epochs`)
   (:class:`~sweeps.study.reporter.EpochReporter`; the median pruner decides in this
   process and the values are written from a background thread, all of them stored
   before the trial ends however it ends: :mod:`sweeps.study.epoch_reports`) and stops
   the run when the pruner says so: the run ends KILLED with its partial curves and the tags ``pruned=true``,
   ``pruned_at_epoch``, ``prune_reason``, and the trial is PRUNED;
4. returns the metric of the weights the run keeps: the last epoch's, or the best
   epoch's when ``training.early_stopping`` and ``training.restore_best_weights`` are on,
   read from the run's own result (never read back from MLflow). Metrics known only at
   the end (``n_parameters``) come from the run's final metrics. With ``sweep.cv_folds``
   the run trains fold 1 and the value is the mean over the folds
   (:mod:`sweeps.study.cv_folds`).

Done once, not per trial: the base run spec and the prepared data (:func:`sweeps.study.runner.prepare`,
or built on the first trial), the tracking session (one client, one background writer
for the runs' PNGs and model files: :meth:`Objective.drain` waits for it).

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
  ``sweep.max_retries`` times. A pruned trial whose curves could not all be sent is
  treated the same way, so no finished trial lacks its metrics;
* **its trial was failed by another worker** (no heartbeat within the grace period while
  this process was stalled) -- :class:`TrialLost`: the run ends, the sweep goes on.

Links both ways: the trial's user attributes hold ``mlflow_run_id`` (set as soon as the
first epoch ended), ``mlflow_experiment_id``, ``mlflow_model_uri``, ``fit``,
``epochs_run`` and ``metrics`` (the run's best-epoch validation and test metrics and
``n_parameters``); the run's tags hold the study name and the trial number.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any, Mapping, Sequence

import optuna

from sweeps.config.run_spec import RunSpec, build_run_spec
from sweeps.config.space import SearchSpace
from sweeps.config import sweep_settings
from sweeps.core import vocabulary as V
from sweeps.core.errors import TrackingError, one_line
from sweeps.core.faults import StorageOutage
from sweeps.core.redaction import redact
from sweeps.study import pruning
from sweeps.study import cv_folds
from sweeps.study.reporter import EpochReporter, Outcome
from sweeps.study.storage import set_user_attrs
from sweeps.study.trial_errors import STOP, TrackingOutage, TrialFailed, TrialLost, is_tracking_failure
from sweeps.study.trial_records import TrialRecords
from sweeps.study.trial_spec import apply_changes, run_name, trial_config, trial_spec
from sweeps.tracking import ui_views
from sweeps.training.data import PreparedData, prepare_data, same_data
from sweeps.training.run import RunEnd, StopRun, Terminated, train

#: What the sweep loop and the command lines use from here (the errors and the stop request
#: are defined in sweeps.study.trial_errors, the trial's config in sweeps.study.trial_spec).
__all__ = ["STOP", "Objective", "Outcome", "TrackingOutage", "TrialFailed", "TrialLost",
           "is_tracking_failure", "run_name", "trial_config"]

log = logging.getLogger(__name__)

#: Metrics of a run's result kept on its trial (user attribute ``metrics``).
_KEPT_METRICS = (V.BEST_PREFIX, "/test", V.N_PARAMETERS)


class Objective(TrialRecords):
    """Optuna's objective for one sweep: ``objective(trial) -> value`` (or values).

    Args:
        base: the resolved training config (``model``, ``optimizer``, ``dataset``,
            ``training``, ``tracking``), the same for every trial.
        space: the search space.
        settings: the sweep's settings (metrics, directions, study name, pruner).
        spec: the run spec of ``base`` (default: built on the first trial); every trial
            derives its own spec from it.
        data: its prepared data (default: loaded on the first trial), shared by every trial.
        session: the process's tracking session (default: opened on the first trial).
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
        spec: RunSpec | None = None,
        data: PreparedData | None = None,
        session=None,
        parent_run_id: str | None = None,
        overrides: Sequence[str] = (),
        worker: int = 0,
        budget_ends: float | None = None,
    ) -> None:
        super().__init__(base, settings, session)
        self.space = space
        self.spec, self.data = spec, data
        self.budget_ends = budget_ends
        self.parent_run_id = parent_run_id
        self.overrides = list(overrides)
        self.worker = worker

    def prepared(self) -> tuple[RunSpec, PreparedData]:
        """The base run spec and its data: validated and loaded once, on the first trial."""
        if self.spec is None:
            self.spec = build_run_spec(self.base)
        if self.data is None:
            self.data = prepare_data(self.spec)
        return self.spec, self.data

    def __call__(self, trial) -> float | tuple[float, ...]:
        live = isinstance(trial, optuna.Trial)
        self.current_trial = trial if live else None
        self.lost = False
        if live:
            self.start_retry(trial)
        base_layers = tuple(self.base["model"].get("hidden_layers") or ())
        changes = self.space.overrides(self.space.suggest(trial, base_layers, self.base), base_layers)
        cfg, trial_overrides = apply_changes(self.base, changes)
        uid = uuid.uuid4().hex
        set_user_attrs(trial, {V.TRIAL_UID: uid, V.TRIAL_WORKER: self.worker})
        self.current_uid, self.current_run_id = uid, None
        name = run_name(trial.number, cfg, list(self.space.dimensions))
        log.info("trial %d: %s", trial.number, name)
        reporter = EpochReporter(trial, self.settings.epoch_key, report=not self.settings.multi_objective,
                                 pruner_name=self.settings.pruner,
                                 link=(lambda: self.link(trial)) if self.tracking_enabled else None,
                                 budget_ends=self.budget_ends,
                                 report_epochs=pruning.report_epochs(self.settings, int(self.base["training"]["epochs"]),
                                                                     int(cfg["training"]["epochs"])))
        decided: dict[str, Any] = {}

        def run() -> dict[str, Any]:
            base_spec, base_data = self.prepared()  # a bad data set fails the trial, like any error
            spec = decided["spec"] = trial_spec(base_spec, cfg, changes)
            data = base_data if same_data(spec, base_spec) else prepare_data(spec)
            folds = cv_folds.folds_of(data, spec, self.settings)  # sweep.cv_folds: the run trains fold 1

            def on_result(result: dict[str, Any]) -> RunEnd:
                reporter.flush()  # every intermediate value stored before the run's end is decided
                outcome = self.outcome(spec, result)
                if folds and outcome.values is not None:  # folds 2..k, while the run waits for its end
                    outcome = cv_folds.other_folds(trial, spec, folds, result, outcome, self.outcome,
                                                   self.settings.metric, self.budget_ends)
                decided["outcome"] = outcome
                return outcome.run_end()

            return train(spec, data=folds[0] if folds else data, session=self.session(), callbacks=[reporter],
                         parent_run_id=self.parent_run_id, run_name=name, tags=self._run_tags(trial.number, uid),
                         overrides=[*self.overrides, *trial_overrides], on_run=self.on_run, on_result=on_result)

        try:
            result = self._train(trial, run, reporter, live)
            return self._conclude(trial, result, decided.get("outcome") or self.outcome(decided["spec"], result),
                                  reporter)
        finally:
            reporter.close()

    def _run_tags(self, number: int, uid: str) -> dict[str, str]:
        tags = {V.TAG_STUDY: self.settings.study_name, V.TAG_TRIAL: str(number), V.TAG_TRIAL_UID: uid,
                V.TAG_STATE: "RUNNING", V.TAG_STORAGE: redact(self.settings.storage or ""), V.TAG_ROLE: "trial"}
        if self.parent_run_id:  # a sweep's trials in distinct colours in the UI's charts
            colour = ui_views.run_colour(number)
            if colour:
                tags[V.TAG_RUN_COLOUR] = colour
        return tags

    def _train(self, trial, run, reporter: EpochReporter, live: bool) -> dict[str, Any]:
        """Train the trial's run; every way it can end but a normal one becomes the trial's end."""
        try:
            return self._run_flushed(trial, run, reporter, live)
        except StopRun as stop:  # pruned: the run ended KILLED with the pruned tags, its curves all sent
            self.mark_pruned(trial, stop.epoch or reporter.epochs, str(stop))
            raise optuna.TrialPruned(str(stop)) from None
        except TrialFailed:  # already recorded (the server stayed away before the run existed)
            raise
        except TrialLost as lost:
            self.lost = True
            self.tag(self.current_run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: str(lost)})
            raise
        except StorageOutage as outage:  # the trial stays RUNNING: it goes stale and is re-run elsewhere
            self.tag(self.current_run_id or self.find_run(self.current_uid),
                     {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: str(outage)})
            raise
        except (KeyboardInterrupt, Terminated):
            if V.TRIAL_RUN_ID not in trial.user_attrs:  # stopped before its first epoch's link
                self.link(trial)
            set_user_attrs(trial, {V.TRIAL_INTERRUPTED: True, V.TRIAL_EPOCHS: reporter.epochs})
            self.tag(self.current_run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: "interrupted"})
            raise
        except Exception as error:
            reason = one_line(error, typed=True)
            if live and self.tracking_enabled and is_tracking_failure(error):
                # No more requests to a server that just failed us: the run (if any) is
                # reconciled later by ann-sweep-status through its trial-number tag.
                self.fail_retryable(trial, f"tracking failed: {reason}", None, reporter.epochs)
            set_user_attrs(trial, {V.TRIAL_FAIL_REASON: reason[:1000], V.TRIAL_EPOCHS: reporter.epochs})
            self.tag(self.current_run_id, {V.TAG_STATE: "FAIL", V.TAG_FAIL_REASON: reason})
            raise TrialFailed(reason) from None

    def _run_flushed(self, trial, run, reporter: EpochReporter, live: bool) -> dict[str, Any]:
        """``run()``, then every intermediate value in the storage however it ended (see :meth:`_train`)."""
        try:
            try:
                result = run()
            except TrackingError:
                # The store did not answer when the run was to be created (it went away
                # since the check before this trial): no run exists yet, so wait for it
                # as before a trial (sweep.outage_wait) and start again.
                if not live or not self.wait_at_start(trial):
                    raise
                result = run()
        except BaseException:
            reporter.flush_quietly()  # a prune, an error, Ctrl-C / SIGTERM: the trial ends on what is stored
            raise
        reporter.flush()  # already done by on_result, before the run ended
        return result

    def outcome(self, spec: RunSpec, result: Mapping[str, Any]) -> Outcome:
        """What the run's result means for the trial (see the module docstring)."""
        epochs = int(result.get("epochs_run", 0))
        if result.get("fit") == "diverged" and "stopped_early" not in result:
            # Training stopped on a non-finite loss (only a fit that returned records stopped_early).
            reason = result.get("stop_reason") or result.get("fit_reason") or "the loss became non-finite"
            if "non-finite" not in str(result.get("stop_reason") or ""):
                reason = result.get("fit_reason") or "the loss became non-finite"
            return Outcome(prune_reason=str(reason), pruned_at=epochs + 1)
        values = []
        for metric in self.settings.metrics:
            value = self._value(metric, spec, result)
            if value is None or not math.isfinite(value):
                return Outcome(prune_reason=f"{metric} is not finite ({value}) at the end of training",
                               pruned_at=epochs)
            values.append(value)
        return Outcome(values=values)

    def _value(self, metric: str, spec: RunSpec, result: Mapping[str, Any]) -> float | None:
        """The metric of the weights the run keeps (see the module docstring)."""
        epoch_key = sweep_settings.METRICS[metric][0]
        if epoch_key is None:
            value = result.get(metric)
            return None if value is None else float(value)
        kwargs = spec.model_kwargs
        restored = bool(kwargs.get("early_stopping")) and bool(kwargs.get("restore_best_weights", True))
        if restored and V.best_metric(metric) in result:
            return float(result[V.best_metric(metric)])
        values = result.get("curves", {}).get(epoch_key)
        return float(values[-1]) if values else None

    def _conclude(self, trial, result: Mapping[str, Any], outcome: Outcome, reporter: EpochReporter):
        """Record the run on the trial (one write); its value(s), or TrialPruned."""
        attrs: dict[str, Any] = {}
        run_id = result.get("run_id")
        if run_id and trial.user_attrs.get(V.TRIAL_RUN_ID) != run_id:
            self.current_run_id = run_id
            attrs.update({V.TRIAL_RUN_ID: run_id, V.TRIAL_EXPERIMENT_ID: result.get("experiment_id")})
        if result.get("model_uri"):
            attrs[V.TRIAL_MODEL_URI] = result["model_uri"]
        attrs[V.TRIAL_FIT] = result.get("fit")
        attrs[V.TRIAL_METRICS] = {
            **{key: float(value) for key, value in result.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)
               and (key.startswith(_KEPT_METRICS[0]) or key.endswith(_KEPT_METRICS[1]) or key == _KEPT_METRICS[2])},
            **{key: value for key, value in outcome.metrics.items() if V.is_cv_mean(key)},
        }
        if outcome.values is None:
            self.mark_pruned(trial, outcome.pruned_at, outcome.prune_reason or "pruned", attrs)
            raise optuna.TrialPruned(outcome.prune_reason)
        set_user_attrs(trial, {**attrs, V.TRIAL_EPOCHS: int(result.get("epochs_run", reporter.epochs))})
        values = outcome.values
        return values[0] if len(values) == 1 else tuple(values)
