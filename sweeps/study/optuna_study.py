"""The Optuna study of a sweep: its sampler and pruner, creating or resuming it, and what counts.

* :func:`make_sampler` / :func:`make_pruner` build Optuna's objects from the checked settings
  (:mod:`sweeps.config.sweep_settings`).
* :func:`create_or_resume` creates the study in the storage (:mod:`sweeps.study.storage`), or
  loads one of the same name and checks that it optimises the same metrics in the same
  directions (stored as the study's user attributes ``sweep.metrics`` / ``sweep.directions``).

What counts toward ``n_trials`` (:func:`counts_toward_budget`): COMPLETE and PRUNED
trials, and FAILED ones that failed with a reason (the training raised). Trials that were
interrupted (Ctrl-C, SIGTERM), failed because their worker died (no heartbeat) or because
the tracking server did not answer (``retryable``), or are left RUNNING by a killed
process do not: they are re-run (see :func:`sweeps.study.storage.retry_trial`) or replaced,
so that the study ends with exactly ``n_trials`` counted trials (:mod:`sweeps.study.claims`).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import optuna
from optuna.trial import TrialState

from sweeps.config.sweep_settings import SweepSettings
from sweeps.core import vocabulary as V
from sweeps.core.errors import UserError
from sweeps.core.redaction import redact
from sweeps.core.storage import storage_kind
from sweeps.study.pruning import make_pruner  # noqa: F401 - callers build the pruner through this module


def make_sampler(settings: SweepSettings, space=None, worker: int = 0):
    """The sampler, seeded with ``sweep.seed + worker`` (each worker draws different values)."""
    seed = None if settings.seed is None else settings.seed + worker
    options = dict(settings.sampler_options)
    name = settings.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # Trials running in other workers count as bad for the model until they end, so
            # parallel workers do not all sample the same point.
            options.setdefault("constant_liar", settings.workers > 1 or storage_kind(settings.storage) in ("postgresql", "mysql"))
            return optuna.samplers.TPESampler(seed=seed, **options)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            if space is None:
                raise ValueError("the grid sampler needs the search space")
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        if name == "cmaes":
            try:
                import cmaes  # noqa: F401 - lazy: an optional package, looked for only when asked for
            except ImportError:
                raise UserError("sweep.sampler.name='cmaes' needs the cmaes package: pip install cmaes") from None
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False, **options)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **options)
    raise AssertionError(name)


# ----------------------------------------------------------------------------- study


def create_or_resume(settings: SweepSettings, storage, sampler=None, pruner=None):
    """Create the study, or load the one of the same name (checking metrics and directions).

    Returns ``(study, resumed)``.

    Raises:
        UserError: the stored study optimises other metrics or directions.
    """
    def load():
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)
        check_resumable(study, settings)
        return study, True

    # Several workers may start at once: whoever creates the study first wins, the others
    # get DuplicatedStudyError from the storage's unique constraint and load it.
    if settings.study_name in set(optuna.study.get_all_study_names(storage)):
        return load()
    try:
        study = optuna.create_study(
            study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner,
            directions=list(settings.directions),
        )
    except optuna.exceptions.DuplicatedStudyError:  # created meanwhile by another process
        return load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(settings.metrics))
    study.set_user_attr(V.ATTR_METRICS, list(settings.metrics))
    study.set_user_attr(V.ATTR_DIRECTIONS, list(settings.directions))
    return study, False


def check_resumable(study, settings: SweepSettings) -> None:
    """Refuse to resume a study that optimises other metrics or in other directions."""
    stored_directions = [d.name.lower() for d in study.directions]
    if stored_directions != list(settings.directions):
        raise UserError(
            f"sweep.direction={_show(settings.directions)} does not match study {settings.study_name!r} in "
            f"sweep.storage={redact(settings.storage)!r}, which was created to {_show(stored_directions)}: "
            f"use the same direction, or a new sweep.study_name"
        )
    stored_metrics = study.user_attrs.get(V.ATTR_METRICS)
    if stored_metrics is not None and list(stored_metrics) != list(settings.metrics):
        raise UserError(
            f"sweep.metric={_show(settings.metrics)} does not match study {settings.study_name!r} in "
            f"sweep.storage={redact(settings.storage)!r}, which optimises {_show(stored_metrics)}: "
            f"use the same metric, or a new sweep.study_name"
        )


def _show(values: Sequence[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else "[" + ",".join(values) + "]"


def counts_toward_budget(trial) -> bool:
    """Whether a finished trial counts toward ``n_trials`` (see the module docstring)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    attrs = trial.user_attrs
    return trial.state == TrialState.FAIL and bool(attrs.get(V.TRIAL_FAIL_REASON)) and not attrs.get(V.TRIAL_RETRYABLE)


def finished_count(study) -> int:
    """Trials that count toward ``n_trials``."""
    return sum(1 for trial in study.get_trials(deepcopy=False) if counts_toward_budget(trial))


def state_counts(study) -> dict[str, int]:
    """Trials per state name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ...)."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def best_trials(study) -> list:
    """The best trial (single objective) or the Pareto front, [] if none completed."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:
            return []
    return list(study.best_trials)


def in_memory_study(trials, directions, study_name: str | None = None) -> optuna.Study:
    """A study in memory holding ``trials`` (finished ``FrozenTrial``s): what a process without
    the storage -- the tracking writer's helper (:mod:`sweeps.tracking.helper`) -- draws from."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory"
    try:
        study = optuna.create_study(directions=list(directions), study_name=study_name)
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(trials)
    return study
