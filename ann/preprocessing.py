"""Preprocessing fitted on the training split only: standardisation and one-hot targets.

:class:`Standardizer` works through a large array in blocks of rows, so it never makes a
float64 copy of it: ``fit`` + ``transform`` read the array three times and write the
result once (``tests/benchmarks/bench_standardize.py``).
Its statistics are bit for bit those of ``X.astype(float64).mean(axis=0)`` and
``.std(axis=0)``: every column is summed row after row, in NumPy's order.
"""

from __future__ import annotations

import numpy as np

#: Elements per block (512 kB of float64): small enough to stay in a core's cache
#: between the steps applied to it, large enough that NumPy's per-call cost vanishes.
_BLOCK_ELEMENTS = 1 << 16


class Standardizer:
    """``x' = (x - mean) / scale`` per column, with ``mean`` and ``scale`` from the training data.

    ``scale`` is the population standard deviation; a constant column gets scale 1, so it
    maps to 0 instead of dividing by zero.

    Fit it once and reuse the standardised arrays for many models (see
    :meth:`ann.MLP.fit`'s ``standardized_by``):

    >>> import numpy as np
    >>> X = np.array([[1.0, 10.0], [3.0, 10.0]])
    >>> scaler = Standardizer().fit(X)
    >>> scaler.mean, scaler.scale
    (array([ 2., 10.]), array([1., 1.]))
    >>> scaler.transform(X, dtype=np.float32)
    array([[-1.,  0.],
           [ 1.,  0.]], dtype=float32)
    """

    def __init__(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        self.mean = mean
        self.scale = scale

    @property
    def n_features(self) -> int:
        """The number of columns the statistics describe (the scaler must be fitted)."""
        return len(self.mean)

    def fit(self, X: np.ndarray) -> "Standardizer":
        """Column means and population standard deviations of ``X``, in float64."""
        X = np.asarray(X)
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        if X.ndim == 2 and X.shape[1] > 1 and X.flags.c_contiguous:
            self.mean, std = _column_mean_and_std(X)
        else:  # small or odd layouts (a target column, a view): NumPy's own reductions
            X = np.asarray(X, dtype=np.float64)
            self.mean, std = X.mean(axis=0), X.std(axis=0)
        std[std < 1e-12] = 1.0
        self.scale = std
        return self

    def transform(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """A new C-contiguous array of ``dtype``: ``X`` cast to ``dtype``, then the arithmetic in ``dtype``."""
        dtype = np.dtype(dtype)
        X = np.asarray(X)
        mean, scale = self.mean.astype(dtype), self.scale.astype(dtype)
        if X.ndim != 2:
            out = np.array(X, dtype=dtype, order="C", copy=True)
            out -= mean
            out /= scale
            return out
        out = np.empty(X.shape, dtype=dtype)
        for rows in _row_blocks(X):
            block = out[rows]
            np.subtract(X[rows], mean, out=block, dtype=dtype)  # casts X first, as astype would
            block /= scale
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * self.scale + self.mean


def _row_blocks(X: np.ndarray):
    """Slices of about ``_BLOCK_ELEMENTS`` elements' worth of rows, covering ``X``."""
    step = max(1, _BLOCK_ELEMENTS // max(1, X.shape[1]))
    return (slice(start, start + step) for start in range(0, X.shape[0], step))


def _column_mean_and_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mean = sum(x) / n`` and ``std = sqrt(sum((x - mean)^2) / n)`` per column, in float64.

    The mean is NumPy's, accumulated in float64 straight from ``X`` (NumPy casts in small
    buffers). The squared deviations are formed block by block in a small float64 buffer
    whose first row carries the running sum, so ``np.add.reduce`` over the buffer adds the
    rows to it one after the other: the order in which NumPy reduces a C-ordered array
    over its rows, hence the very bits of ``X.astype(float64).std(axis=0)`` (which is
    ``sqrt(mean(abs(x - x.mean(axis=0))**2, axis=0))``) without its two float64 copies of ``X``.
    """
    n, d = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    blocks = list(_row_blocks(X))
    buffer = np.empty((blocks[0].stop - blocks[0].start + 1, d))
    total = np.zeros(d)
    for rows in blocks:
        block = X[rows]
        deviation = buffer[1 : len(block) + 1]
        deviation[...] = block
        deviation -= mean
        deviation *= deviation
        buffer[0] = total
        np.add.reduce(buffer[: len(block) + 1], axis=0, out=total)
    return mean, np.sqrt(total / n)


def one_hot(codes: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of zeros with a 1 in the column of each integer class code ``0 <= c < n_classes``."""
    codes = np.asarray(codes)
    out = np.zeros((codes.shape[0], n_classes), dtype=dtype)
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out
