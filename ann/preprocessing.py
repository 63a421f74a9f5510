"""Preprocessing fitted on the training split only: standardisation and one-hot targets.

:class:`Standardizer` works through a large array in blocks of rows, so it never makes a
float64 copy of it: ``fit`` + ``transform`` read the array three times and write the
result once (``tests/benchmarks/bench_standardize.py``). Its statistics are bit for bit
those of ``X.astype(float64).mean(axis=0)`` and ``.std(axis=0)``: every column is summed
row after row, in NumPy's order. A large array is shared among the available cores --
columns for ``fit``, rows for ``transform``, NumPy releasing the GIL in its loops --
which changes no bit either: each column is still summed by one thread, in order.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

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

        def standardize(part: slice) -> None:
            for rows in _row_blocks(X, part):
                block = out[rows]
                np.subtract(X[rows], mean, out=block, dtype=dtype)  # casts X first, as astype would
                block /= scale

        _in_parallel(standardize, _split(X.shape[0], _workers(X, X.shape[0])))
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * self.scale + self.mean


def _row_blocks(X: np.ndarray, part: slice = slice(None)):
    """Slices of about ``_BLOCK_ELEMENTS`` elements' worth of rows, covering rows ``part`` of ``X``."""
    start, stop, _ = part.indices(X.shape[0])
    step = max(1, _BLOCK_ELEMENTS // max(1, X.shape[1]))
    return [slice(first, min(first + step, stop)) for first in range(start, stop, step)]


def _workers(X: np.ndarray, n_pieces: int) -> int:
    """Threads for ``X`` cut in at most ``n_pieces``: one per available core, each with at
    least a block's worth of elements (a small array stays on the calling thread)."""
    return max(1, min(_cores(), n_pieces, X.size // _BLOCK_ELEMENTS))


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _split(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices covering ``range(n)``."""
    edges = [n * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def _in_parallel(function, parts: list) -> list:
    """``[function(part) for part in parts]``, one thread each (NumPy releases the GIL in its loops)."""
    if len(parts) == 1:
        return [function(parts[0])]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(function, parts))


def _column_mean_and_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mean = sum(x) / n`` and ``std = sqrt(sum((x - mean)^2) / n)`` per column, in float64.

    The mean is NumPy's, accumulated in float64 straight from ``X`` (NumPy casts in small
    buffers). The squared deviations are formed block by block in a small float64 buffer
    whose first row carries the running sum, so ``np.add.reduce`` over the buffer adds the
    rows to it one after the other: the order in which NumPy reduces a C-ordered array
    over its rows, hence the very bits of ``X.astype(float64).std(axis=0)`` (which is
    ``sqrt(mean(abs(x - x.mean(axis=0))**2, axis=0))``) without its two float64 copies of ``X``.
    """
    # Columns are independent: each thread takes a slice of at least 2 of them (a single
    # column would be summed pairwise by NumPy, not row after row).
    parts = _split(X.shape[1], _workers(X, X.shape[1] // 2))
    results = _in_parallel(lambda columns: _mean_and_std(X[:, columns]), parts)
    return np.concatenate([m for m, _ in results]), np.concatenate([s for _, s in results])


def _mean_and_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_column_mean_and_std` of some columns, on one thread."""
    n, d = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    blocks = _row_blocks(X)
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
