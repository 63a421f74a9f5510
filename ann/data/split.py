"""Train / validation / test splits, stratified for classification.

Sizes are fractions of the rows.  The test part gets ``round(test_size * n)`` rows and
the validation part ``round(val_size * n)``; with ``stratify=True`` these totals are
shared out among the classes by largest remainder, so every class contributes
``floor`` or ``ceil`` of its exact share (its proportion is kept within one sample),
and no class is ever left without a training sample (a class too small to give its share
gives what it can: a part may then be a row short of its total).  Each part is shuffled, and
everything is deterministic for a ``seed``.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ann.data.base import Dataset, check_int
from ann.exceptions import DataError, InvalidParameterError


class Splits(NamedTuple):
    """The three parts of a data set; empty parts keep the number of columns."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _check_fraction(name: str, value: object) -> float:
    """Return ``value`` as float if it is a real number in [0, 1), else raise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and 0.0 <= value < 1.0):
        raise InvalidParameterError(name, value, "a fraction in [0, 1)")
    return float(value)


def _largest_remainder(sizes: np.ndarray, fraction: float, capacity: np.ndarray) -> np.ndarray:
    """How many rows each group gives to a part taking ``fraction`` of all rows.

    Each group gets ``floor(fraction * size)``, then the ``round(fraction * total) - sum``
    leftover rows go one each to the groups with the largest fractional parts, skipping
    groups whose ``capacity`` (rows they can still give away) is exhausted.
    """
    exact = fraction * sizes
    counts = np.minimum(np.floor(exact).astype(np.int64), capacity)
    leftover = int(round(fraction * sizes.sum())) - int(counts.sum())
    for group in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if leftover <= 0:
            break
        if counts[group] < capacity[group]:
            counts[group] += 1
            leftover -= 1
    return counts


def _split_indices(groups: list[np.ndarray], val_size: float, test_size: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled train/val/test row indices, each group split in the given proportions."""
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    capacity = sizes - 1  # every group keeps at least one training row
    # The test part may not take the rows the validation part's floor share needs.
    n_test = _largest_remainder(sizes, test_size, capacity - np.floor(val_size * sizes).astype(np.int64))
    n_val = _largest_remainder(sizes, val_size, capacity - n_test)
    train, val, test = [], [], []
    for rows, t, v in zip(groups, n_test, n_val):
        rows = rng.permutation(rows)
        test.append(rows[:t])
        val.append(rows[t:t + v])
        train.append(rows[t + v:])
    return tuple(rng.permutation(np.concatenate(part).astype(np.int64))
                 for part in (train, val, test))


def train_val_test_split(X, y, val_size: float = 0.15, test_size: float = 0.15,
                         stratify: bool = False, seed: int = 0):
    """Split rows of ``X`` and ``y`` into train, validation and test parts.

    Args:
        X: array with one row per sample (any number of columns).
        y: targets, one per row of ``X``.
        val_size, test_size: fractions in [0, 1) with ``val_size + test_size < 1``;
            0 gives an empty part with the right number of columns.
        stratify: split each class of ``y`` proportionally (within one sample); every
            class keeps at least one training sample.
        seed: seed of ``numpy.random.default_rng``; the split is deterministic for it.

    Returns:
        ``(X_train, X_val, X_test, y_train, y_val, y_test)``; the parts are disjoint,
        cover every row, and are each shuffled.

    Raises:
        InvalidParameterError: a size outside [0, 1), sizes summing to 1 or more, bad seed.
        DataError: ``X`` and ``y`` differ in length, or there are no rows.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise DataError(f"X and y must have the same number of rows: shapes {X.shape} and {y.shape}")
    train, val, test = _rows(y, val_size, test_size, stratify, seed)
    return X[train], X[val], X[test], y[train], y[val], y[test]


def _rows(y: np.ndarray, val_size: float, test_size: float, stratify: bool, seed: int):
    """:func:`train_val_test_split`'s parts as row indices (checked as it documents)."""
    val_size = _check_fraction("val_size", val_size)
    test_size = _check_fraction("test_size", test_size)
    if val_size + test_size >= 1.0:
        raise InvalidParameterError("val_size + test_size", val_size + test_size, "a sum < 1")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    if len(y) == 0:
        raise DataError("cannot split an empty data set (0 rows)")
    if stratify:
        _, codes = np.unique(y, return_inverse=True)
        groups = [np.flatnonzero(codes.reshape(-1) == c) for c in range(codes.max() + 1)]
    else:
        groups = [np.arange(len(y))]
    return _split_indices(groups, val_size, test_size, rng)


class SplitRows(NamedTuple):
    """Row indices of a data set's three parts, each shuffled: ``ds.X[train]`` is the training part.

    ``test`` indexes ``ds.X`` too, or is None when the data set brings its own test part (``ds.X_test``).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None


def split_rows(ds: Dataset, val_size: float = 0.15, test_size: float = 0.15, seed: int = 0) -> SplitRows:
    """The rows of :func:`split_dataset`'s parts, without copying them: a large data set can
    then be read part by part straight from where it lies (a mapped file, say).

    >>> from ann.data import load_dataset
    >>> ds = load_dataset("digits")
    >>> rows = split_rows(ds, seed=0)
    >>> len(rows.train), len(rows.val), len(rows.test)
    (1257, 270, 270)
    >>> (ds.X[rows.train] == split_dataset(ds, seed=0).X_train).all()
    np.True_
    """
    stratify = ds.task != "regression"
    if ds.X_test is not None:
        _check_fraction("test_size", test_size)
        train, val, _ = _rows(ds.y, val_size, 0.0, stratify, seed)
        return SplitRows(train, val, None)
    return SplitRows(*_rows(ds.y, val_size, test_size, stratify, seed))


def split_dataset(ds: Dataset, val_size: float = 0.15, test_size: float = 0.15,
                  seed: int = 0) -> Splits:
    """Split a :class:`Dataset`, stratified unless ``ds.task == "regression"``.

    If the data set has a predefined test split (``ds.X_test`` is not None, as for
    MNIST) that is the test part, ``test_size`` is ignored, and only the validation
    part (``val_size`` of ``ds.X``) is split off ``ds.X``.
    """
    train, val, test = split_rows(ds, val_size, test_size, seed)
    X_test, y_test = (ds.X_test, ds.y_test) if test is None else (ds.X[test], ds.y[test])
    return Splits(ds.X[train], ds.y[train], ds.X[val], ds.y[val], X_test, y_test)
