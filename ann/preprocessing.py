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

    ``scale`` is the population standard deviation. A column that is constant in the training
    data gets an infinite scale, so it maps to 0 whatever its value: a network trained on it
    saw it as 0 throughout and learned nothing from it, so a value it takes only later (a
    category the training rows never had, an empty cell where they had none) must not reach
    the network through its untrained weights. :meth:`inverse_transform` gives such a column
    its mean.

    Fit it once and reuse the standardised arrays for many models (see
    :meth:`ann.MLP.fit`'s ``standardized_by``):

    >>> import numpy as np
    >>> X = np.array([[1.0, 10.0], [3.0, 10.0]])
    >>> scaler = Standardizer().fit(X)
    >>> scaler.mean, scaler.scale
    (array([ 2., 10.]), array([ 1., inf]))
    >>> scaler.transform(np.array([[1.0, 10.0], [3.0, 12.0]]), dtype=np.float32)
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

    def fit(self, X: np.ndarray, rows: np.ndarray | None = None) -> "Standardizer":
        """Column means and population standard deviations of ``X``, in float64.

        ``rows``: integer indices of the rows of ``X`` to fit on: the statistics of ``X[rows]``
        to the last bit, gathered a block at a time (never the whole copy).
        """
        X = np.asarray(X)
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        if X.ndim == 2 and X.shape[1] > 1 and X.flags.c_contiguous:
            self.mean, std = _column_mean_and_std(X, rows)
        else:  # small or odd layouts (a target column, a view): NumPy's own reductions
            X = np.asarray(X if rows is None else X[rows], dtype=np.float64)
            self.mean, std = X.mean(axis=0), X.std(axis=0)
        std[std < 1e-12] = np.inf  # constant in training: 0 whatever the value (see the class docstring)
        self.scale = std
        return self

    def transform(self, X: np.ndarray, dtype=np.float64, rows: np.ndarray | None = None) -> np.ndarray:
        """A new C-contiguous array of ``dtype``: ``X`` cast to ``dtype``, then the arithmetic in ``dtype``.

        ``rows``: integer indices of the rows of ``X`` to transform, in that order: the result
        is ``transform(X[rows])`` to the last bit, without that copy of ``X``'s rows.
        """
        dtype = np.dtype(dtype)
        X = np.asarray(X)
        mean, scale = self.mean.astype(dtype), self.scale.astype(dtype)
        if X.ndim != 2:
            out = np.array(X if rows is None else X[rows], dtype=dtype, order="C", copy=True)
            out -= mean
            out /= scale
            return out
        out = np.empty((X.shape[0] if rows is None else len(rows), X.shape[1]), dtype=dtype)

        def standardize(part: slice) -> None:
            for block in _row_blocks(out.shape[0], out.shape[1], part):
                result = out[block]
                np.subtract(_rows_of(X, rows, block), mean, out=result, dtype=dtype)  # casts X first, as astype would
                result /= scale

        _in_parallel(standardize, _split(out.shape[0], _workers(out, out.shape[0])))
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * np.where(np.isinf(self.scale), 0.0, self.scale) + self.mean


def _row_blocks(n_rows: int, width: int, part: slice = slice(None)) -> list[slice]:
    """Slices of about ``_BLOCK_ELEMENTS`` elements' worth of rows ``width`` wide, covering rows
    ``part`` of ``range(n_rows)``."""
    start, stop, _ = part.indices(n_rows)
    step = max(1, _BLOCK_ELEMENTS // max(1, width))
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


def _rows_of(X: np.ndarray, rows: np.ndarray | None, block: slice, columns: slice = slice(None)) -> np.ndarray:
    """Rows ``block`` of ``X[rows]`` (of ``X`` when ``rows`` is None), restricted to ``columns``."""
    return X[block, columns] if rows is None else X[rows[block], columns]


def _column_mean_and_std(X: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``mean = sum(x) / n`` and ``std = sqrt(sum((x - mean)^2) / n)`` per column of ``X[rows]``, in float64.

    Both sums are formed block by block of rows in a small float64 buffer whose first row
    carries the running sum, so ``np.add.reduce`` over the buffer adds the rows to it one
    after the other: the order in which NumPy reduces a C-ordered array over its rows, hence
    the very bits of ``X.astype(float64).mean(axis=0)`` and ``.std(axis=0)`` (which is
    ``sqrt(mean(abs(x - x.mean(axis=0))**2, axis=0))``) without a float64 copy of ``X``.
    """
    # Columns are independent: each thread takes a slice of at least 2 of them (a single
    # column would be summed pairwise by NumPy, not row after row).
    parts = _split(X.shape[1], _workers(X, X.shape[1] // 2))
    results = _in_parallel(lambda columns: _mean_and_std(X, rows, columns), parts)
    return np.concatenate([m for m, _ in results]), np.concatenate([s for _, s in results])


def _mean_and_std(X: np.ndarray, rows: np.ndarray | None, columns: slice) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_column_mean_and_std` of some columns, on one thread."""
    n, width = X.shape[0] if rows is None else len(rows), len(range(*columns.indices(X.shape[1])))
    blocks = _row_blocks(n, width)
    buffer = np.empty((max((b.stop - b.start for b in blocks), default=0) + 1, width))

    def sum_of(transform=None) -> np.ndarray:
        total = np.zeros(buffer.shape[1])
        for block in blocks:
            values = buffer[1 : block.stop - block.start + 1]
            values[...] = _rows_of(X, rows, block, columns)
            if transform is not None:
                transform(values)
            buffer[0] = total
            np.add.reduce(buffer[: len(values) + 1], axis=0, out=total)
        return total

    mean = sum_of() / n

    def squared_deviation(values: np.ndarray) -> None:
        values -= mean
        values *= values

    return mean, np.sqrt(sum_of(squared_deviation) / n)


def one_hot(codes: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of zeros with a 1 in the column of each integer class code ``0 <= c < n_classes``."""
    codes = np.asarray(codes)
    out = np.zeros((codes.shape[0], n_classes), dtype=dtype)
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out
