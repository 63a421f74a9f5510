"""K-fold splits for cross-validation, stratified for classification (pure NumPy).

:func:`kfold_indices` shuffles the rows (with ``stratify``: each class on its own, the
classes one after the other) and deals them out to the folds in turn, so that

* the validation parts of the folds are disjoint and together cover every row once;
* fold sizes differ by at most one row, and with ``stratify`` so does every class's count
  in each fold (its proportion is kept within one row, as in :mod:`ann.data.split`);
* the split is deterministic for a ``seed``.

Fold ``j``'s training rows are all the rows outside its validation part.
"""

from __future__ import annotations

import numpy as np

from ann.data.base import check_int
from ann.exceptions import DataError, InvalidParameterError


def kfold_indices(y, n_folds: int, *, stratify: bool = False, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` pairs ``(train_rows, val_rows)`` of row indices into ``y`` (each sorted).

    Args:
        y: the targets, one per row (only their number matters unless ``stratify``).
        n_folds: an integer in [2, number of rows].
        stratify: deal each class of ``y`` out to the folds on its own (classification).
        seed: seed of ``numpy.random.default_rng``.

    Raises:
        InvalidParameterError: ``n_folds`` not an integer in [2, rows], or a bad seed.
        DataError: ``y`` has no rows.
    """
    y = np.asarray(y)
    n = len(y) if y.ndim else 0
    if n == 0:
        raise DataError("cannot split an empty data set (0 rows) into folds")
    n_folds = check_int("n_folds", n_folds, 2)
    if n_folds > n:
        raise InvalidParameterError("n_folds", n_folds, f"an integer in [2, {n}] (the rows to split)")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    if stratify:
        _, codes = np.unique(y, axis=0 if y.ndim > 1 else None, return_inverse=True)
        codes = codes.reshape(-1)
        order = np.concatenate([rng.permutation(np.flatnonzero(codes == c)) for c in range(codes.max() + 1)])
    else:
        order = rng.permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % n_folds  # consecutive rows of a class go to consecutive folds
    return [(np.flatnonzero(fold_of != j), np.flatnonzero(fold_of == j)) for j in range(n_folds)]
