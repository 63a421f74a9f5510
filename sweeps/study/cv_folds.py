"""Cross-validated trials (``sweep.cv_folds: k``): the objective is the mean over k folds.

On a small data set one validation split of a few hundred rows picks the luckiest trial
rather than the best model. With ``sweep.cv_folds=k`` the training and validation rows are
dealt out into k folds (stratified for classification, seeded by ``training.seed``:
:meth:`sweeps.training.data.PreparedData.folds`, made once per process); the test rows stay
untouched. Each fold standardises its inputs with its own training rows' statistics.

A trial trains its folds one after the other:

* **fold 1** is the trial's tracked run, exactly as a trial of a single split: it reports its
  metric every epoch (or at the rungs) and the pruner can stop it there, so median, successive
  halving and hyperband pruning work unchanged; the run's per-epoch curves, its model and its
  test scores are fold 1's;
* **folds 2..k** train only when fold 1 finished unpruned, untracked and unreported (a
  pending Ctrl-C / SIGTERM and ``sweep.budget`` still stop them at the end of an epoch: the
  trial is then interrupted, or pruned); a fold whose loss or metric is not finite prunes the
  trial, naming the fold.

The trial's value is the mean over folds of the metric the sweep optimises, each fold's
taken as for a single split (the last epoch's, or the best epoch's with early stopping and
restored weights). The trial records the fold values, their (population) standard deviation
and each fold's epoch of kept weights as user attributes (``cv_values``, ``cv_std``,
``cv_epochs``), and its run the metrics ``cv/<metric>/fold_<j>``, ``cv/<metric>/mean``,
``cv/<metric>/std`` and ``cv/epochs`` (the rounded mean of the folds' epochs: what a refit of
this trial trains for), and for every other validation score of the folds (accuracy, R²,
...) their mean ``cv/<score>/val/mean``, which the trial keeps with its metrics: the
champion's cross-validated accuracy, not fold 1's. No fold's model is the one to serve: a
cross-validated sweep always refits its champion on the training + validation rows
(:mod:`sweeps.study.refit`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import ann
from sweeps.config.run_spec import RunSpec
from sweeps.config.sweep_settings import SweepSettings
from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError
from sweeps.study.reporter import Outcome
from sweeps.study.storage import set_user_attrs
from sweeps.study.trial_errors import STOP
from sweeps.training.data import PreparedData, build_model
from sweeps.training.fitting import Recorder, fit

log = logging.getLogger(__name__)


def folds_of(data: PreparedData, spec: RunSpec, settings: SweepSettings) -> list[PreparedData] | None:
    """The folds a trial of ``spec`` trains on (made once per data set and process), or None
    without ``sweep.cv_folds``."""
    if settings.cv_folds is None:
        return None
    return data.folds(settings.cv_folds, spec.split_seed)


def prepare_folds(settings: SweepSettings, section: Mapping[str, Any], data: PreparedData,
                  spec: RunSpec) -> tuple[list[PreparedData] | None, list[str]]:
    """Before a sweep: the base config's folds (made now, so the trials of this process reuse them)
    and the line ``ann-sweep`` prints about them; ``(None, [])`` without ``sweep.cv_folds``."""
    k = settings.cv_folds
    if k is None:
        return None, []
    try:
        folds = data.folds(k, spec.split_seed)
    except ann.InvalidParameterError as error:
        raise ConfigError("sweep.cv_folds", k, error.allowed) from None
    rows = len(folds[0].train) + folds[0].n_val
    forced = "" if section.get("refit") else " (sweep.refit is forced on)"
    line = (f"sweep.cv_folds={k}: every trial trains {k} folds of the {rows} training + validation rows\n"
            "  (fold 1 is the trial's run and what the pruner sees; its value is their mean);\n"
            f"  the champion is refitted on them{forced}")
    return folds, [line]


def kept_epoch(spec: RunSpec, result: Mapping[str, Any]) -> int:
    """The epoch of the weights a run keeps: its best with early stopping and restored weights, else its last."""
    kwargs = spec.model_kwargs
    restored = bool(kwargs.get("early_stopping")) and bool(kwargs.get("restore_best_weights", True))
    epoch = result.get(V.BEST_EPOCH) if restored else None
    return int(epoch or result.get(V.EPOCHS_RUN) or 0)


def refit_epochs(epochs: Sequence[int]) -> int:
    """The epochs a refit of a cross-validated trial trains: the folds' mean, rounded (at least 1)."""
    return max(1, int(np.floor(np.mean(epochs) + 0.5)))


class _BudgetSpent(Exception):
    def __init__(self, epoch: int) -> None:
        super().__init__(f"sweep.budget ran out at epoch {epoch}")
        self.epoch = epoch


def _fold_callback(budget_ends: float | None) -> Callable[[int, Mapping[str, float]], None]:
    def callback(epoch: int, logs: Mapping[str, float]) -> None:
        STOP.check()
        if budget_ends is not None and time.time() >= budget_ends:
            raise _BudgetSpent(epoch)
    return callback


def validation_scores(spec: RunSpec, result: Mapping[str, Any]) -> dict[str, float]:
    """A run's validation scores (``loss/val``, ``accuracy/val``, ...) at the epoch of the
    weights it keeps (:func:`kept_epoch`), read off its curves."""
    epoch = kept_epoch(spec, result)
    return {V.metric_name(key): float(curve[epoch - 1]) for key, curve in (result.get("curves") or {}).items()
            if key.startswith(V.SPLITS[1] + "_") and 0 < epoch <= len(curve)}


def fold_means(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """``cv/<score>/mean`` for each score every fold has: the mean over the folds."""
    common = set.intersection(*(set(fold) for fold in scores)) if scores else set()
    return {V.cv_metric(key, "mean"): float(np.mean([fold[key] for fold in scores])) for key in sorted(common)}


def train_fold(spec: RunSpec, fold: PreparedData, budget_ends: float | None = None) -> dict[str, Any]:
    """Train ``spec`` on one fold, untracked: the result as :func:`sweeps.training.run.train` gives it."""
    model = build_model(spec, fold)
    recorder = Recorder(None, int(spec.model_kwargs.get("epochs", 100)))
    return fit(model, fold, recorder, [_fold_callback(budget_ends)], spec.ensemble, spec.threads).result()


def other_folds(trial, spec: RunSpec, folds: Sequence[PreparedData], first: Mapping[str, Any], outcome: Outcome,
                outcome_of: Callable[[RunSpec, Mapping[str, Any]], Outcome], metric: str,
                budget_ends: float | None = None) -> Outcome:
    """Train folds 2..k after fold 1 (``first``, whose ``outcome`` has values): the trial's
    outcome, its value the mean over folds of ``metric``; the fold values on ``trial``."""
    k = len(folds)
    values, epochs = [float(outcome.values[0])], [kept_epoch(spec, first)]
    scores = [validation_scores(spec, first)]
    pruned_at = int(first.get(V.EPOCHS_RUN) or 0)
    for j, fold in enumerate(folds[1:], start=2):
        log.info("trial %d: fold %d of %d", trial.number, j, k)
        try:
            result = train_fold(spec, fold, budget_ends)
        except _BudgetSpent as spent:
            return Outcome(prune_reason=f"sweep.budget ran out in fold {j} of {k} (epoch {spent.epoch})",
                           pruned_at=pruned_at)
        fold_outcome = outcome_of(spec, result)
        if fold_outcome.values is None:
            return Outcome(prune_reason=f"fold {j} of {k}: {fold_outcome.prune_reason}", pruned_at=pruned_at)
        values.append(float(fold_outcome.values[0]))
        epochs.append(kept_epoch(spec, result))
        scores.append(validation_scores(spec, result))
    mean, std = float(np.mean(values)), float(np.std(values))
    set_user_attrs(trial, {V.TRIAL_CV_VALUES: values, V.TRIAL_CV_STD: std, V.TRIAL_CV_EPOCHS: epochs})
    metrics = {V.cv_metric(metric, j): value for j, value in enumerate(values, start=1)}
    metrics.update({V.cv_metric(metric, "mean"): mean, V.cv_metric(metric, "std"): std,
                    V.CV_EPOCHS: float(refit_epochs(epochs))})
    for key, value in fold_means(scores).items():  # cv/<metric>/mean is the objective's, as computed above
        metrics.setdefault(key, value)
    return Outcome(values=[mean, *outcome.values[1:]], metrics=metrics)
