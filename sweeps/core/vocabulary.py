"""Every name the sweeps write: MLflow metric names, run and experiment tags, Optuna user attributes.

One place, so that a writer and its readers (the leaderboard, the saved UI views, ``ann-sweep-status``,
the tests) cannot drift apart. Names only: no behaviour beyond building a name from its parts.

* **Metrics** (MLflow): the engine's ``train_loss`` is logged as ``loss/train``
  (:func:`metric_name`); ``best/<metric>`` at the best epoch, ``fit/<number>`` of the diagnosis,
  ``sweep/objective`` on a trial run (``cv/<metric>/...`` too when cross-validated),
  ``fit/count_<label>`` on the parent run.
* **Run tags**: ``sweep.*`` on trial and parent runs, ``fit``/``fit_reason``/``fit_hint`` of the
  diagnosis, ``replay.*`` on a replay, ``git.*`` and MLflow's own (``mlflow.*``) system tags.
* **Study user attributes** (``ATTR_*``) and **trial user attributes** (``TRIAL_*``) in Optuna.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------ metrics

#: The splits a per-epoch metric is logged for (``<quantity>/<split>``).
SPLITS = ("train", "val", "test")
LOSS_TRAIN = "loss/train"
LOSS_VAL = "loss/val"
#: Wall time of each epoch, and of the whole fit.
EPOCH_SECONDS = "time/epoch_seconds"
FIT_SECONDS = "time/fit_seconds"
#: Metrics under this prefix are timings (not compared by ``ann-replay``).
TIME_PREFIX = "time/"
N_PARAMETERS = "n_parameters"
EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
STOPPED_EARLY = "stopped_early"
#: A trial run's objective value; a sweep's trials view sorts by it.
OBJECTIVE = "sweep/objective"
#: ``best/<metric>``: the metric at the best epoch (a run), or of the best trial (a parent run).
BEST_PREFIX = "best/"
#: ``fit/<number>``: the diagnosis numbers (:data:`FIT_NUMBERS`).
FIT_PREFIX = "fit/"
#: ``refit/<metric>/test`` on a parent run: the test scores of the refitted champion (sweep.refit).
REFIT_PREFIX = "refit/"
#: ``cv/<metric>/fold_<j>``, ``cv/<metric>/mean``, ``cv/<metric>/std`` and ``cv/epochs`` on the run of a
#: cross-validated trial (sweep.cv_folds): the metric of each fold, their mean (the objective) and
#: standard deviation, the epochs a refit of the trial trains (the folds' rounded mean);
#: ``cv/<score>/val/mean``: the folds' mean of every other final validation score (accuracy, R², ...).
CV_PREFIX = "cv/"
CV_EPOCHS = "cv/epochs"


#: ``ensemble/members`` on a run of ``training.ensemble`` > 1: the networks averaged; its test
#: scores (``accuracy/test``, ...) are the ensemble's, ``ensemble/first/<quantity>`` (``loss``,
#: ``accuracy``, ``r2``, ...) the test scores of the first network alone (whose curves the run shows).
ENSEMBLE_MEMBERS = "ensemble/members"
ENSEMBLE_FIRST_PREFIX = "ensemble/first/"


def cv_metric(metric: str, part: int | str) -> str:
    """``cv_metric("loss/val", 2)`` -> ``cv/loss/val/fold_2``; ``cv_metric("loss/val", "mean")`` -> ``cv/loss/val/mean``."""
    return f"{CV_PREFIX}{metric}/" + (f"fold_{part}" if isinstance(part, int) else part)


def is_cv_mean(name: str) -> bool:
    """``cv/<metric>/mean``: a cross-validated trial's mean over its folds (what its trial keeps)."""
    return name.startswith(CV_PREFIX) and name.endswith("/mean")


def metric_name(engine_key: str) -> str:
    """``train_loss`` -> ``loss/train``, ``val_accuracy`` -> ``accuracy/val``."""
    for split in SPLITS:
        if engine_key.startswith(split + "_"):
            return f"{engine_key[len(split) + 1:]}/{split}"
    if engine_key == "epoch_seconds":
        return EPOCH_SECONDS
    return engine_key


#: The validation score a leaderboard shows beside the objective: the first of these a trial
#: recorded (its folds' mean when cross-validated, else at its best epoch).
LEADERBOARD_SCORES = ("accuracy/val", "r2/val")


def best_metric(name: str) -> str:
    """``loss/val`` -> ``best/loss/val``."""
    return BEST_PREFIX + name


def fit_count_metric(label: str) -> str:
    """The parent run's count of trials with a fit label: ``fit/count_good``."""
    return f"{FIT_PREFIX}count_{label}"


# -------------------------------------------------------------------- fit diagnosis

#: The fit labels, in the order the diagnosis rules try them (the reverse of it is "how bad").
FIT_LABELS = ("diverged", "unstable", "underfit", "overfit", "good")
#: The label of a pruned trial that has no diagnosis.
PRUNED = "pruned"
#: Every label a trial can show, best first, then pruned (the order of counts and legends).
LABEL_ORDER = ("good", "overfit", "underfit", "unstable", "diverged", PRUNED)
#: The numbers the diagnosis logs (as ``fit/<name>``).
FIT_NUMBERS = (
    "constant_loss", "train_loss_ratio", "val_loss_ratio", "gap", "val_rise",
    "train_gain_after_best_val", "train_unsettled", "val_jitter", "train_peak", "train_skill", "val_skill",
    "skill_gap", "still_falling",
)

# ----------------------------------------------------------------------- run tags

#: The diagnosis (the leaderboard, the views and filters use these names).
TAG_FIT = "fit"
TAG_FIT_REASON = "fit_reason"
TAG_FIT_HINT = "fit_hint"

#: The BLAS threads the run trained with (``training.threads`` resolved: its last bits depend on it).
TAG_BLAS_THREADS = "blas_threads"

#: A sweep's trial and parent runs.
TAG_STUDY = "sweep.study_name"
TAG_TRIAL = "sweep.trial_number"
TAG_TRIAL_UID = "sweep.trial_uid"
TAG_STATE = "sweep.state"
TAG_STORAGE = "sweep.storage"
#: ``trial`` or ``parent``.
TAG_ROLE = "sweep.role"
#: ``sweep.role`` of the run that retrains the champion on training + validation rows (sweep.refit).
ROLE_REFIT = "refit"
#: A model version tag: "true" on a version retrained on training + validation rows.
TAG_VERSION_REFIT = "sweep.refit"
TAG_METRIC = "sweep.metric"
TAG_DIRECTION = "sweep.direction"
TAG_WORKERS = "sweep.workers"
#: A trial shown in the sweep's "one of each label" view.
TAG_SHOWCASE = "sweep.showcase"
#: The parent run's note that the search space changed on a resume.
TAG_SPACE_CHANGE = "sweep.space_changed"
#: On a pruned or failed trial run.
TAG_PRUNED = "pruned"
TAG_PRUNED_AT = "pruned_at_epoch"
TAG_PRUNE_REASON = "prune_reason"
TAG_FAIL_REASON = "fail_reason"
TAG_KILLED_BY = "killed_by"
#: On a failed run: the error, in one line.
TAG_ERROR = "error"
#: The best trial, on the parent run: ``best.trial``, ``best.value``, ``best.param.<name>`` ...
TAG_BEST_TRIAL = "best.trial"
TAG_BEST_VALUE = "best.value"
TAG_BEST_RUN_ID = "best.run_id"
TAG_BEST_PARAM_PREFIX = "best.param."
TAG_BEST_MODEL = "best.model"
TAG_BEST_MODEL_VERSION = "best.model_version"
#: A registered model version's tag naming the run it came from.
TAG_VERSION_RUN_NAME = "run_name"

#: ``ann-replay``'s run: what it replays and whether the curves matched.
TAG_REPLAY_OF = "replay.of"
TAG_IDENTICAL = "replay.identical"
TAG_FIRST_DIFFERENCE = "replay.first_difference"

#: Where the code came from (also MLflow's own ``mlflow.source.git.commit``).
TAG_GIT_COMMIT = "git.commit"
TAG_GIT_DIRTY = "git.dirty"

#: MLflow's system tags.
TAG_PARENT_RUN = "mlflow.parentRunId"
#: The run's description (markdown) on its MLflow page.
TAG_NOTE = "mlflow.note.content"
#: The colour the UI draws a run in (its colour picker writes it too).
TAG_RUN_COLOUR = "mlflow.runColor"
TAG_SOURCE_COMMIT = "mlflow.source.git.commit"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_USER = "mlflow.user"
#: Experiment tags: the experiment's kind, and the prefix the UI reads saved views from.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."

# ------------------------------------------------------------ Optuna user attributes

#: Study: what it optimises (written when it is created, checked when it is resumed).
ATTR_METRICS = "sweep.metrics"
ATTR_DIRECTIONS = "sweep.directions"
#: Study: the search space, and the changes made to it on resumes.
ATTR_SPACE = "sweep.space"
ATTR_SPACE_CHANGES = "sweep.space_changes"
#: Study: the MLflow parent run of the sweep and its experiment.
ATTR_PARENT_RUN = "mlflow.parent_run_id"
ATTR_EXPERIMENT = "mlflow.experiment_id"
#: Study: how many worker numbers were handed out so far.
ATTR_WORKER_SLOTS = "sweep.worker_slots"
#: Study: the worker that finished the parent run of a complete study.
ATTR_FINISHED = "sweep.finished"
#: Study: the champion retrained on training + validation rows (sweep.refit): trial, run, epochs, test metrics.
ATTR_REFIT = "sweep.refit"

#: Trial: who claimed the trial ({host, pid, worker, heartbeat, at}).
ATTR_CLAIM = "sweep.claim"
#: Trial: the id shared by the trial and its MLflow run (found by it when the run id was lost).
TRIAL_UID = TAG_TRIAL_UID
TRIAL_RUN_ID = "mlflow_run_id"
TRIAL_EXPERIMENT_ID = "mlflow_experiment_id"
TRIAL_MODEL_URI = "mlflow_model_uri"
TRIAL_FIT = "fit"
TRIAL_EPOCHS = "epochs_run"
TRIAL_PRUNED_AT = "pruned_at_epoch"
TRIAL_PRUNE_REASON = "prune_reason"
TRIAL_FAIL_REASON = "fail_reason"
TRIAL_INTERRUPTED = "interrupted"
TRIAL_WORKER = "worker"
TRIAL_METRICS = "metrics"
#: Trial of a cross-validated sweep (sweep.cv_folds): the metric of each fold (the value is their
#: mean), their standard deviation, and the epoch of each fold's kept weights.
TRIAL_CV_VALUES = "cv_values"
TRIAL_CV_STD = "cv_std"
TRIAL_CV_EPOCHS = "cv_epochs"
#: True on a trial that failed for a reason that is not the trial's fault (the tracking
#: server did not answer): it does not count toward n_trials and is re-run.
TRIAL_RETRYABLE = "retryable"
#: The number of the trial a retried trial repeats (set when the retry starts).
TRIAL_RETRY_OF = "retry_of"
#: Trial system attribute (Optuna's retry callback): the numbers of the trials it repeats.
TRIAL_RETRY_HISTORY = "retry_history"
