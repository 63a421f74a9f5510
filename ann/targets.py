"""The task and the targets as the network sees them.

Regression targets become a float column per output (standardised when ``standardize`` is
on); binary labels a 0/1 column; multiclass labels one-hot rows. Labels may be any
sortable values (ints, strings, ...): ``classes`` holds them in sorted order, and a
label's code is its index there.
"""

from __future__ import annotations

import numpy as np

from ann.exceptions import DataError, InvalidParameterError
from ann.preprocessing import Standardizer, one_hot


def infer_task(task: str, y: np.ndarray) -> str:
    """``task`` unless it is ``auto``: floating-point targets are regression; otherwise
    two distinct labels are binary, more are multiclass."""
    if task != "auto":
        return task
    if y.dtype.kind == "f":
        return "regression"
    return "binary" if len(np.unique(y)) == 2 else "multiclass"


def fit_targets(
    task: str, y: np.ndarray, standardize: bool
) -> tuple[np.ndarray | None, Standardizer | None, int]:
    """``(classes, y_scaler, n_outputs)`` for targets ``y`` of ``task``.

    Raises:
        DataError: non-numeric regression targets, 2-D labels, a single class.
        InvalidParameterError: ``task="binary"`` with more than two classes.
    """
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"regression targets must be numbers, got dtype {y.dtype}")
        Y = y.reshape(len(y), -1).astype(np.float64)
        return None, Standardizer().fit(Y) if standardize else None, Y.shape[1]
    if y.ndim != 1:
        raise DataError(f"classification targets must be 1-D labels, got shape {y.shape}")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"y has a single class ({classes[0].item()!r}); classification needs at least 2")
    if task == "binary" and len(classes) != 2:
        raise InvalidParameterError("task", task, f"'multiclass' for {len(classes)} classes")
    return classes, None, 1 if task == "binary" else len(classes)


def encode_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The code of each label (its index in ``classes``); an unknown label is a DataError."""
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    unknown = classes[codes] != y
    if np.any(unknown):
        raise DataError(
            f"y holds label {y[np.argmax(unknown)].item()!r} not seen in training; "
            f"known labels: {classes.tolist()}"
        )
    return codes


def encode_targets(
    y: np.ndarray, task: str, classes: np.ndarray | None, y_scaler: Standardizer | None, dtype
) -> np.ndarray:
    """Targets as the network sees them: scaled values, a 0/1 column, or one-hot rows."""
    if task == "regression":
        Y = y.reshape(len(y), -1).astype(np.float64)
        if y_scaler is not None:
            Y = y_scaler.transform(Y)
        return np.ascontiguousarray(Y, dtype=dtype)
    codes = encode_labels(y, classes)
    if task == "binary":
        return codes.astype(dtype).reshape(-1, 1)
    return one_hot(codes, len(classes), dtype=dtype)
