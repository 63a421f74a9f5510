"""Settings a sweep chooses from its data, said in one line each (``ann-sweep`` prints them).

* ``sweep.epochs``: a trial's most epochs, which are also the pruner's full budget: null
  keeps ``training.epochs``, a number sets it, ``auto`` scales it from the training rows
  (:func:`auto_epochs`);
* ``sweep.cv_folds``: ``auto`` cross-validates small data sets (:func:`auto_cv_folds`);
* ``sweep.params.batch_size``: a choice above the training rows is refused.
"""

from __future__ import annotations

import math
from typing import Any

from sweeps.config.space import SearchSpace
from sweeps.core.errors import ConfigError

#: ``sweep.epochs=auto``: ``AUTO_EPOCHS * sqrt(1000 / training rows)`` epochs, within these bounds.
AUTO_EPOCHS, AUTO_EPOCHS_RANGE = 100, (20, 200)


def auto_epochs(n_train: int) -> int:
    """A trial's most epochs for ``n_train`` training rows: more passes over small data sets.

    ``100 * sqrt(1000 / n_train)`` rounded to ten, in [20, 200]: 160-180 for a few hundred
    rows, 90 for 1,257 (digits), 40 for 7,000, 20 from 25,000 rows on. The gradient steps
    still grow with the rows (as their square root) while the passes over the data shrink.
    """
    low, high = AUTO_EPOCHS_RANGE
    epochs = int(round(AUTO_EPOCHS * math.sqrt(1000.0 / max(1, n_train)) / 10.0)) * 10
    return max(low, min(high, epochs))


#: ``sweep.cv_folds=auto``: this many folds below :data:`AUTO_CV_ROWS` training + validation rows.
AUTO_CV_FOLDS, AUTO_CV_ROWS = 5, 3000


def auto_cv_folds(rows: int, n_metrics: int = 1) -> int | None:
    """``sweep.cv_folds=auto``: 5 folds for fewer than 3,000 training + validation rows, else one split.

    Below that, a validation split (15 % of the rows or so) holds fewer than about 450 rows.
    An accuracy ``p`` measured on ``n`` rows is off by ``sqrt(p (1 - p) / n)`` (its binomial
    standard error): at ``p = 0.9`` telling two trials one point apart (two standard errors)
    takes about 3,600 rows. On fewer, the sweep's champion is the trial that was luckiest on
    the split rather than the best model (digits, 270 validation rows: 99.3 % validation,
    96.3 % test accuracy); five folds measure every trial on all the rows. Fold 1 is the
    trial's pruned run, so pruned trials cost no more; complete ones train five times. A sweep
    of several metrics keeps one split (cross-validation needs one champion to refit).
    """
    return AUTO_CV_FOLDS if rows < AUTO_CV_ROWS and n_metrics == 1 else None


def resolve_cv_folds(section: dict, rows: int, n_metrics: int) -> list[str]:
    """Replace ``sweep.cv_folds: auto`` in ``section`` by what it chose (so that worker processes,
    which read the section, agree); the line that says so, if it was auto."""
    if section.get("cv_folds") != "auto":
        return []
    folds = section["cv_folds"] = auto_cv_folds(rows, n_metrics)
    chosen = f"{folds} folds" if folds else "one validation split"
    return [f"sweep.cv_folds=auto: {chosen} ({rows} training + validation rows; folds below {AUTO_CV_ROWS})"]


def trial_epochs(value: Any, n_train: int) -> int | None:
    """``sweep.epochs``: null (None: training.epochs), a number of epochs, or auto (:func:`auto_epochs`)."""
    if value is None:
        return None
    if value == "auto":
        return auto_epochs(n_train)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("sweep.epochs", value, "an integer >= 1, auto (from the training rows), or null (training.epochs)")
    return value


def check_batch_sizes(space: SearchSpace, n_train: int) -> None:
    """Refuse a batch size above the training rows (naming the choice or bound at fault)."""
    dim = space.dimensions.get("batch_size")
    if dim is None:
        return
    allowed = f"at most {n_train} (the training set has {n_train} samples)"
    if dim.type == "categorical":
        for index, choice in enumerate(dim.choices):
            if choice > n_train:
                raise ConfigError(f"sweep.params.batch_size.choices[{index}]", choice, allowed)
    elif dim.high > n_train:
        raise ConfigError("sweep.params.batch_size.high", dim.high, allowed)


def scale_to_data(section: dict, space: SearchSpace, base: dict, n_train: int) -> tuple[SearchSpace, list[str]]:
    """Apply ``sweep.epochs`` to the training config ``base`` and check the batch sizes against
    the training rows. Returns the space and the lines that say what was chosen."""
    chosen: list[str] = []
    epochs = trial_epochs(section.get("epochs"), n_train)
    if epochs is not None:  # every trial's (and the pruner's) most epochs: training.epochs
        if section.get("epochs") == "auto":
            chosen.append(f"sweep.epochs=auto: at most {epochs} epochs per trial ({n_train} training rows)")
        base["training"]["epochs"] = epochs
    check_batch_sizes(space, n_train)
    return space, chosen
