"""Settings a sweep chooses from its data, said in one line each (``ann-sweep`` prints them).

* ``sweep.epochs``: a trial's most epochs, which are also the pruner's full budget: null
  keeps ``training.epochs``, a number sets it, ``auto`` scales it from the training rows
  (:func:`auto_epochs`);
* ``sweep.params.batch_size``: choices above the training rows are left out (a space
  written for large data sets still runs on a small one), as long as one choice is left.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

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


def trial_epochs(value: Any, n_train: int) -> int | None:
    """``sweep.epochs``: null (None: training.epochs), a number of epochs, or auto (:func:`auto_epochs`)."""
    if value is None:
        return None
    if value == "auto":
        return auto_epochs(n_train)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("sweep.epochs", value, "an integer >= 1, auto (from the training rows), or null (training.epochs)")
    return value


def fit_batch_sizes(space: SearchSpace, n_train: int, chosen: list[str]) -> SearchSpace:
    """The space with the batch sizes the training rows allow: choices above them are left
    out (and said so in ``chosen``) as long as one is left; otherwise the sweep is refused."""
    dim = space.dimensions.get("batch_size")
    if dim is None:
        return space
    allowed = f"at most {n_train} (the training set has {n_train} samples)"
    if dim.type != "categorical":
        if dim.high > n_train:
            raise ConfigError("sweep.params.batch_size.high", dim.high, allowed)
        return space
    fitting = tuple(choice for choice in dim.choices if choice <= n_train)
    if not fitting:
        raise ConfigError("sweep.params.batch_size.choices[0]", dim.choices[0], allowed)
    if len(fitting) == len(dim.choices):
        return space
    dropped = ", ".join(str(c) for c in dim.choices if c > n_train)
    chosen.append(f"sweep.params.batch_size: {dropped} left out (the training set has {n_train} rows)")
    return SearchSpace({**space.dimensions, "batch_size": dataclasses.replace(dim, choices=fitting)})


def scale_to_data(section: dict, space: SearchSpace, base: dict, n_train: int) -> tuple[SearchSpace, list[str]]:
    """Apply ``sweep.epochs`` and the batch sizes to the training config ``base`` and the space;
    the sweep section (what worker processes parse again) is updated to match. Returns the
    space and the lines that say what was chosen."""
    chosen: list[str] = []
    epochs = trial_epochs(section.get("epochs"), n_train)
    if epochs is not None:  # every trial's (and the pruner's) most epochs: training.epochs
        if section.get("epochs") == "auto":
            chosen.append(f"sweep.epochs=auto: at most {epochs} epochs per trial ({n_train} training rows)")
        base["training"]["epochs"] = epochs
    fitted = fit_batch_sizes(space, n_train, chosen)
    if fitted is not space:
        entry, choices = section["params"].get("batch_size"), list(fitted.dimensions["batch_size"].choices)
        section["params"]["batch_size"] = {**entry, "choices": choices} if isinstance(entry, Mapping) else choices
    return fitted, chosen
