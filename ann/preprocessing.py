"""Preprocessing fitted on the training split only: standardisation and one-hot targets."""

from __future__ import annotations

import numpy as np


class Standardizer:
    """``x' = (x - mean) / scale`` per column, with ``mean`` and ``scale`` from the training data.

    ``scale`` is the population standard deviation; a constant column gets scale 1, so it
    maps to 0 instead of dividing by zero.
    """

    def __init__(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        self.mean = mean
        self.scale = scale

    def fit(self, X: np.ndarray) -> "Standardizer":
        X = np.asarray(X, dtype=np.float64)
        self.mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self.scale = scale
        return self

    def transform(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """A new C-contiguous array of ``dtype``; the arithmetic is done in ``dtype``."""
        out = np.array(X, dtype=dtype, order="C", copy=True)
        out -= self.mean.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * self.scale + self.mean


def one_hot(codes: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of zeros with a 1 in the column of each integer class code ``0 <= c < n_classes``."""
    codes = np.asarray(codes)
    out = np.zeros((codes.shape[0], n_classes), dtype=dtype)
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out
