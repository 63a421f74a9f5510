"""Refit the champion on training + validation data before it is registered (``sweep.refit``).

A sweep chooses its champion on the validation part; the model that then serves has no
reason to leave those rows unused. With ``sweep.refit: true`` the sweep ends by training
the champion's configuration once more, from scratch, on the training and validation rows
together (``training.val_size=0``: the split of the same ``training.seed`` with no
validation part, so the test rows are the very same), for the number of epochs the
champion trained, without early stopping (there is nothing left to stop on). This run, a child of the parent run tagged
``sweep.role=refit``, is what ``@champion`` points to; its test scores are logged on it, on
the parent run (``refit/accuracy/test``, ...) and in the study's user attribute
``sweep.refit``, next to the trial's own, so that the test score of the registered model
can be compared with the validation score that chose it.

The refit is skipped (one log line says why) when the champion has no complete trial,
when the data set has no validation part, or when the sweep has several metrics. A Ctrl-C or
SIGTERM during the refit (``ann-sweep``'s first: :data:`sweeps.study.trial_errors.STOP`) ends
it at the end of the running epoch, its run KILLED: the trial's own model is registered then.

A cross-validated sweep (``sweep.cv_folds``, :mod:`sweeps.study.cv_folds`) always refits
(``sweep.refit`` is forced on, and ``ann-sweep`` says so), also without a validation part:
its trials' models each saw a part of the rows only. The refit trains for the rounded mean
of the champion's folds' epochs (each fold's epoch of kept weights).
"""

from __future__ import annotations

import copy
import logging
import signal
from typing import Any, Mapping

from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError
from sweeps.study import optuna_study as S
from sweeps.study.cv_folds import refit_epochs
from sweeps.study.trial_errors import STOP
from sweeps.study.trial_spec import trial_config
from sweeps.training.run import RunEnd, StopRun, train

log = logging.getLogger(__name__)


def refit_config(base: Mapping[str, Any], space, trial, ensemble: int = 1) -> tuple[dict, list[str], int]:
    """The champion trial's training config on training + validation rows (``ensemble`` networks
    averaged), its overrides and epochs."""
    import optuna  # lazy: Optuna only when a sweep ends

    base_layers = tuple(base["model"].get("hidden_layers") or ())
    values = space.suggest(optuna.trial.FixedTrial(trial.params), base_layers, base)
    cfg, overrides = trial_config(base, space, values)
    cfg = copy.deepcopy(cfg)
    training = cfg["training"]
    folds = trial.user_attrs.get(V.TRIAL_CV_EPOCHS)  # sweep.cv_folds: the folds' rounded mean
    epochs = refit_epochs(folds) if folds else int(trial.user_attrs.get(V.TRIAL_EPOCHS) or training.get("epochs", 100))
    training.update(val_size=0.0, epochs=max(1, epochs), early_stopping=False)
    overrides = [*overrides, "training.val_size=0", f"training.epochs={training['epochs']}", "training.early_stopping=false"]
    if ensemble > 1:
        training["ensemble"] = ensemble
        overrides.append(f"training.ensemble={ensemble}")
    return cfg, overrides, training["epochs"]


def refit_champion(study, prepared, parent_run_id: str | None = None, session=None) -> dict[str, Any] | None:
    """Train the champion on training + validation rows; its record (also the study attribute
    :data:`sweeps.core.vocabulary.ATTR_REFIT`), or None when there is nothing to refit.

    ``session``: the sweep's tracking session (its client, and its writer for the run's PNG and
    model files: drain it before reading them); default: one opened and closed for the run.

    Raises:
        StopRun: a Ctrl-C / SIGTERM stopped the refit (its run is ended KILLED)."""
    settings = prepared.settings
    best = S.best_trials(study)
    if not best or settings.multi_objective:
        return None
    trial = best[0]
    if float(prepared.base["training"].get("val_size", 0.15)) == 0.0 and settings.cv_folds is None:
        log.info("sweep.refit: no validation part to add (training.val_size=0): the champion is not refitted")
        return None
    cfg, overrides, epochs = refit_config(prepared.base, prepared.space, trial, settings.ensemble)
    name = f"refit of t{trial.number:03d}"
    tags = {V.TAG_STUDY: settings.study_name, V.TAG_TRIAL: str(trial.number), V.TAG_ROLE: V.ROLE_REFIT}
    log.info("sweep.refit: training trial %d's configuration on training + validation rows for %d epochs%s",
             trial.number, epochs, f", {settings.ensemble} networks averaged" if settings.ensemble > 1 else "")
    result = train(cfg, session=session, parent_run_id=parent_run_id, run_name=name, tags=tags,
                   overrides=[*prepared.overrides, *overrides], callbacks=[_StopWhenAsked(settings.ensemble)])
    trial_metrics = trial.user_attrs.get(V.TRIAL_METRICS) or {}
    record = {
        "trial": trial.number, "epochs": epochs, "run_id": result.get("run_id"), "model_uri": result.get("model_uri"),
        "run_name": name, "networks": int(result.get(V.ENSEMBLE_MEMBERS, 1)),
        **{key: float(value) for key, value in result.items()
           if key.endswith("/test") and isinstance(value, (int, float)) and not isinstance(value, bool)},
        **{f"trial/{key}": float(value) for key, value in trial_metrics.items()
           if key.endswith("/test") or V.is_cv_mean(key)},
    }
    study.set_user_attr(V.ATTR_REFIT, record)
    return record


class _StopWhenAsked:
    """The refit's callback: after a Ctrl-C / SIGTERM (:data:`STOP`), end its run KILLED at this
    epoch (of network ``k`` of an ensemble: each network's epochs count from 1 again)."""

    def __init__(self, networks: int) -> None:
        self.networks, self.network, self.last_epoch = networks, 1, 0

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> None:
        if epoch <= self.last_epoch:
            self.network += 1
        self.last_epoch = epoch
        if STOP.signum is not None:
            by = "Ctrl-C" if STOP.signum == signal.SIGINT else signal.Signals(STOP.signum).name
            where = f"epoch {epoch}" + (f" of network {self.network} of {self.networks}" if self.networks > 1 else "")
            raise StopRun(f"stopped by {by} at {where}", RunEnd("KILLED", {V.TAG_KILLED_BY: by}), epoch)


#: What a registered version retrained on training + validation rows says in its description.
REFIT_NOTE = "(retrained on training + validation rows)"


def champion_model(best, refit: Mapping[str, Any] | None) -> tuple[str, str, str, bool]:
    """``(run_id, model_uri, run_name, refitted)`` of the model to register for the leaderboard's
    ``best`` row: the refit's when ``refit`` retrained that very trial, else the trial's own."""
    if refit and refit.get("model_uri") and int(refit["trial"]) == int(best["trial"]):
        return refit["run_id"], str(refit["model_uri"]), str(refit["run_name"]), True
    run_name = best["run_name"] if isinstance(best["run_name"], str) else f"trial {int(best['trial'])}"
    return best["run_id"], str(best["model_uri"]), run_name, False


def check_refit(settings, spec=None) -> None:
    """Refuse ``sweep.refit`` for a sweep of several metrics (it has no single champion), and
    ``training.ensemble`` in a sweep's trials: they train one network each (their value is one
    network's), and ``sweep.ensemble`` makes the champion's refit an ensemble."""
    if settings.refit and settings.multi_objective:
        raise ConfigError("sweep.refit", True, "false for a sweep of several metrics (it has no single champion)")
    if spec is not None and spec.ensemble > 1:  # (the space does not search it: it is no engine argument)
        raise ConfigError("training.ensemble", spec.ensemble,
                          "1 in a sweep (each trial trains one network): sweep.ensemble=N makes the champion's "
                          "refit N networks averaged")


def refit_and_log(study, prepared, parent) -> dict[str, Any] | None:
    """``sweep.refit`` at the end of a sweep: :func:`refit_champion`, its test scores also logged
    on the parent run (``refit/<metric>/test``); None when off or nothing to refit. A failed
    refit is a warning, a stopped one (Ctrl-C) a record that says so (``stopped``): the trial's own
    model is registered then."""
    if not prepared.settings.refit:
        return None
    try:
        record = refit_champion(study, prepared, parent.run_id if parent is not None else None,
                                session=parent.session if parent is not None else None)
        if record is not None and parent is not None:
            from sweeps.tracking import client as tracking  # lazy: MLflow, only when the sweep tracks

            tracking.log_metrics(parent.client, parent.run_id, {
                V.REFIT_PREFIX + key: value for key, value in record.items()
                if key.endswith("/test") and not key.startswith("trial/")})
        return record
    except StopRun as stop:
        log.warning("sweep.refit: %s; the champion is the trial's own model", stop)
        return {"trial": S.best_trials(study)[0].number, "stopped": str(stop), "signum": STOP.signum}
    except Exception as error:
        log.warning("sweep.refit: the champion could not be retrained (%s); the trial's own model is kept", error)
        return None
