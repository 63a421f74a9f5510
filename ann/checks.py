"""Checks of the data handed to the estimator: one clear :class:`DataError` per problem.

(The estimator's arguments are checked against the table in :mod:`ann.params`.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ann.exceptions import DataError, InvalidParameterError
from ann.preprocessing import Standardizer


def check_X(X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """A 2-D array of finite numbers (floating-point input keeps its dtype: no copy).

    ``n_features``: the number of columns a fitted model expects, if any.
    """
    X = np.asarray(X)
    if X.dtype.kind not in "f":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name} must hold numbers only, got dtype {X.dtype}") from None
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (samples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {X.shape})")
    _check_finite(X, name)
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features; the model was fitted with {n_features}")
    return X


def _check_finite(X: np.ndarray, name: str) -> None:
    # One reduction in X's own dtype is enough when all is well; locate the culprit only
    # when it is not (the sum may overflow to inf on finite data: the full check then
    # clears it).
    with np.errstate(over="ignore", invalid="ignore"):
        suspicious = not np.isfinite(X.sum())
    if suspicious:
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(
                f"{name} holds {int(bad.sum())} NaN or infinite value(s), first at row {row}, "
                f"column {col} ({X[row, col]}); only finite numbers are allowed"
            )


def check_y(y: Any, n: int, name: str = "y", x_name: str = "X") -> np.ndarray:
    """Targets with one entry per sample of ``x_name`` (``n``), none NaN, infinite or missing."""
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise DataError(
            f"{x_name} and {name} have different lengths: {n} samples but {name} has "
            f"{y.shape[0] if y.ndim else 'a scalar'}"
        )
    if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
        raise DataError(f"{name} holds NaN or infinite values; only finite targets are allowed")
    if y.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in y.ravel()):
            raise DataError(f"{name} holds missing values")
    return y


def check_validation_data(validation_data: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``fit``'s ``validation_data``: a pair ``(X_val, y_val)`` with X's ``n_features`` columns."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise DataError("validation_data must be a pair (X_val, y_val)")
    X_val = check_X(validation_data[0], "X_val")
    if X_val.shape[1] != n_features:
        raise DataError(f"X_val has {X_val.shape[1]} features but X has {n_features}")
    return X_val, check_y(validation_data[1], X_val.shape[0], "y_val", "X_val")


def check_standardized_by(scaler: Any, X: np.ndarray, standardize: bool) -> None:
    """``fit``'s ``standardized_by``: ``None``, or a fitted scaler for X's columns on a model
    that standardises."""
    if scaler is None:
        return
    if not standardize:
        raise InvalidParameterError(
            "standardized_by", scaler, "None when standardize=False (the model takes raw inputs)"
        )
    if not isinstance(scaler, Standardizer) or scaler.mean is None or scaler.scale is None:
        raise InvalidParameterError("standardized_by", scaler, "a fitted ann.preprocessing.Standardizer")
    if scaler.n_features != X.shape[1]:
        raise DataError(f"standardized_by was fitted on {scaler.n_features} features but X has {X.shape[1]}")


def check_standardized(X: np.ndarray, name: str, dtype: str) -> np.ndarray:
    """Standardised input ``X`` in the model's ``dtype`` (a cast would differ from ``fit(X_raw)``)."""
    if X.dtype != np.dtype(dtype):
        raise DataError(
            f"{name} is {X.dtype} but the model computes in {dtype}: standardise it "
            f"with scaler.transform({name}, dtype={dtype!r}) to pass standardized_by"
        )
    return X
