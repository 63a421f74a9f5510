"""The pruner of a sweep and the epochs at which it decides.

:func:`make_pruner` builds Optuna's pruner from the sweep's settings; :func:`decision_epochs`
says at which epochs it can stop a trial, so that a trial writes its metric to the Optuna
storage only there (:class:`sweeps.study.objective.EpochReporter`).
"""

from __future__ import annotations

from typing import Any

from sweeps.config.sweep_settings import SweepSettings


def pruner_options(settings: SweepSettings, epochs: int) -> dict[str, Any]:
    """The pruner's settings with the defaults that depend on the epochs filled in
    (hyperband: ``max_resource`` = the epochs, ``min_resource`` = a ninth of them;
    successive halving: ``min_resource`` = a tenth)."""
    options = dict(settings.pruner_options)
    if settings.pruner == "hyperband":
        options.setdefault("max_resource", epochs)
        options.setdefault("min_resource", max(1, epochs // 9))
    elif settings.pruner == "successive_halving":
        options.setdefault("min_resource", max(1, epochs // 10))
    return options


def make_pruner(settings: SweepSettings, epochs: int):
    """The pruner; hyperband's ``max_resource`` defaults to the number of epochs."""
    import optuna  # lazy: the objective reads the decision epochs without loading Optuna

    options = pruner_options(settings, epochs)
    name = settings.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise AssertionError(name)


def decision_epochs(settings: SweepSettings, epochs: int) -> frozenset[int] | None:
    """The epochs at which the pruner can stop a trial; None: any epoch (report every one).

    Successive halving and hyperband decide only at their rungs, ``min_resource *
    reduction_factor ** k`` (hyperband's brackets start at every one of them): a trial
    reports its metric to the storage there and at its last epoch, and nowhere else,
    which gives the very same decisions at a fraction of the storage writes (each one a
    database transaction: 25-50 ms on a busy SQLite file, more than an epoch of a small
    network). The median pruner compares trials at every step, so it gets every epoch.
    """
    name = settings.pruner
    if name not in ("hyperband", "successive_halving"):
        return None
    options = pruner_options(settings, epochs)
    factor = int(options.get("reduction_factor", 3 if name == "hyperband" else 4))
    minimum = int(options["min_resource"])
    rate = int(options.get("min_early_stopping_rate", 0)) if name == "successive_halving" else 0
    steps, k = {epochs}, rate
    while minimum * factor ** k <= epochs:
        steps.add(minimum * factor ** k)
        k += 1
    return frozenset(steps)


def report_epochs(settings: SweepSettings, base_epochs: int, epochs: int) -> frozenset[int] | None:
    """The epochs at which a trial of ``epochs`` epochs reports to Optuna (None: every one): the
    pruner's decision epochs (its rungs come from the base config's ``base_epochs``) and the last."""
    steps = decision_epochs(settings, base_epochs)
    return None if steps is None else steps | {epochs}
