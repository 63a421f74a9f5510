"""The :class:`Dataset` container and the argument checks the data modules share.

The lowest layer of :mod:`ann.data`: the loaders (:mod:`ann.data.datasets`,
:mod:`ann.data.csv`, :mod:`ann.data.idx`) and :mod:`ann.data.split` import it; it imports
none of them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ann.data.encoding import TableEncoding
from ann.exceptions import DataError, InvalidParameterError

TASKS = ("regression", "binary", "multiclass")


@dataclass
class Dataset:
    """A supervised data set.

    Attributes:
        name: short name of the data set (registry name or CSV file stem).
        X: features, ``float64`` of shape ``(n, d)``.
        y: targets, ``int64`` class codes ``0..k-1`` for classification, ``float64`` of
            shape ``(n,)`` for regression.
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        feature_names: one name per column of ``X``.
        class_names: classification only: the original label of each class code, as str.
        X_test, y_test: a predefined test split (MNIST has one), else ``None``.
        encoding: how a table's raw columns became ``X`` (:mod:`ann.data.encoding`), or
            ``None`` when they are ``X`` as they are.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    class_names: list[str] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    encoding: TableEncoding | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidParameterError("task", self.task, f"one of {list(TASKS)}")
        check_xy(self.X, self.y, "X", "y")
        if (self.X_test is None) != (self.y_test is None):
            raise DataError("X_test and y_test must be given together or both be None")
        if self.X_test is not None:
            check_xy(self.X_test, self.y_test, "X_test", "y_test")

    @property
    def n_classes(self) -> int | None:
        """Number of classes; ``None`` for regression."""
        if self.task == "regression":
            return None
        if self.class_names is not None:
            return len(self.class_names)
        labels = [self.y] if self.y_test is None else [self.y, self.y_test]
        return int(max(part.max(initial=-1) for part in labels)) + 1


def check_xy(X: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    """Raise :class:`DataError` unless ``X`` is 2-D and ``y`` is 1-D with as many rows."""
    if np.ndim(X) != 2:
        raise DataError(f"{x_name} must be 2-D (n_samples, n_features), got shape {np.shape(X)}")
    if np.ndim(y) != 1 or len(y) != len(X):
        raise DataError(
            f"{y_name} must be 1-D with one entry per row of {x_name}: "
            f"shapes {np.shape(X)} and {np.shape(y)}"
        )


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as int if it is an integer ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(name, value, f"an integer >= {minimum}")
    return int(value)


def check_float(name: str, value: object, low: float, high: float | None = None,
                 include_low: bool = True) -> float:
    """Return ``value`` as float if it is a finite real in the given range, else raise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if include_low else value > low)
    ok = ok and (high is None or value < high)
    if not ok:
        bracket = "[" if include_low else "("
        upper = "inf)" if high is None else f"{high})"
        raise InvalidParameterError(name, value, f"a finite number in {bracket}{low}, {upper}")
    return float(value)
