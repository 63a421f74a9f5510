"""Numeric features from a table's columns: what an expert does to a raw CSV before an MLP.

* A numeric (or boolean) column is used as it is. Its empty cells get the column's median,
  and a 0/1 column ``<name>_missing`` marks the rows where it was empty (the emptiness
  itself often says something about the row).
* A text column is one-hot encoded: a 0/1 column ``<name>=<value>`` per value, most frequent
  first (ties by name); when it has more than ``max_categories`` values, the ``max_categories - 1``
  most frequent keep a column each and the rarer ones share ``<name>=<other>`` (as
  scikit-learn's ``OneHotEncoder(max_categories=...)`` groups infrequent categories). An
  empty cell is the value ``<missing>``; a value never seen while fitting counts as
  ``<other>`` (all zeros when the column has no ``<other>``).

A :class:`TableEncoding` is fitted on the rows of a file and kept with the data set (and its
parsed-CSV cache entry); it encodes new rows of the same raw columns as it encoded the file::

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [30.0, None, 50.0], "colour": ["red", "blue", "red"]})
    >>> encoding = TableEncoding.fit(frame, ["age", "colour"])
    >>> encoding.feature_names
    ['age', 'age_missing', 'colour=red', 'colour=blue']
    >>> encoding.transform(frame).tolist()
    [[30.0, 0.0, 1.0, 0.0], [40.0, 1.0, 0.0, 1.0], [50.0, 0.0, 1.0, 0.0]]
    >>> encoding.inverse_transform(encoding.transform(frame)).to_dict("list")
    {'age': [30.0, nan, 50.0], 'colour': ['red', 'blue', 'red']}

The medians and the frequent values are those of every row of the file (the loader does not
know the split yet); :meth:`TableEncoding.impute_from` takes the medians again from a split's
training rows (as ``ann-train`` and ``ann-sweep`` do), and the standardisation that follows
is fitted on the training rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ann.exceptions import DataError

MISSING = "<missing>"
OTHER = "<other>"
MISSING_SUFFIX = "_missing"

#: A text column with more values than this keeps the most frequent ``MAX_CATEGORIES - 1``.
MAX_CATEGORIES = 32


@dataclass(frozen=True)
class NumericColumn:
    """A numeric column: its cells, empty ones filled with ``median``; ``indicator`` adds ``<name>_missing``.
    ``kind`` says what the file held: ``float``, ``integer`` or ``boolean`` (a column of
    integers with empty cells is read as floats)."""

    name: str
    median: float
    indicator: bool
    kind: str = "float"

    @property
    def feature_names(self) -> list[str]:
        return [self.name, self.name + MISSING_SUFFIX] if self.indicator else [self.name]

    def encode(self, series: pd.Series) -> list[np.ndarray]:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64)
        empty = np.isnan(values)
        filled = np.where(empty, self.median, values)
        return [filled, empty.astype(np.float64)] if self.indicator else [filled]

    def decode(self, block: np.ndarray) -> np.ndarray:
        """The cells that encode to ``block`` (an empty cell where ``<name>_missing`` is set)."""
        if self.indicator and (block[:, 1] > 0.5).any():
            return np.where(block[:, 1] > 0.5, np.nan, block[:, 0])
        if self.kind == "integer":
            return np.rint(block[:, 0]).astype(np.int64)
        return block[:, 0].astype(bool) if self.kind == "boolean" else block[:, 0].copy()


@dataclass(frozen=True)
class OneHotColumn:
    """A text column: one 0/1 column per kept value, and ``<name>=<other>`` when values were grouped."""

    name: str
    values: tuple[str, ...]
    other: bool

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.name}={value}" for value in self.values] + ([f"{self.name}={OTHER}"] if self.other else [])

    def encode(self, series: pd.Series) -> list[np.ndarray]:
        cells = _text(series)
        columns = [(cells == value).astype(np.float64) for value in self.values]
        if self.other:
            columns.append((~np.isin(cells, self.values)).astype(np.float64))
        return columns

    def decode(self, block: np.ndarray) -> np.ndarray:
        """The cells that encode to ``block``: its hot column's value (an empty cell for
        :data:`MISSING`, and where no column is hot: a value never seen while fitting)."""
        names = list(self.values) + ([OTHER] if self.other else [])
        cells = np.array([names[i] for i in np.argmax(block, axis=1)] if names else [None] * len(block), dtype=object)
        cells[(block.max(axis=1, initial=0.0) < 0.5) | (cells == MISSING)] = None
        return cells


def _text(series: pd.Series) -> np.ndarray:
    """The cells as str, an empty cell as :data:`MISSING`."""
    return series.astype(object).where(series.notna(), MISSING).astype(str).to_numpy()


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    return "integer" if pd.api.types.is_integer_dtype(series) else "float"


def _fit_column(series: pd.Series, max_categories: int) -> NumericColumn | OneHotColumn:
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        empty = np.isnan(values)
        median = float(np.median(values[~empty])) if (~empty).any() else 0.0
        return NumericColumn(str(series.name), median, bool(empty.any()), _kind(series))
    counts = pd.Series(_text(series)).value_counts()
    values = sorted(counts.index, key=lambda value: (-counts[value], value))  # the most frequent first
    if len(values) <= max_categories:
        return OneHotColumn(str(series.name), tuple(values), False)
    return OneHotColumn(str(series.name), tuple(values[:max_categories - 1]), True)


@dataclass(frozen=True)
class TableEncoding:
    """How a table's columns become the feature matrix; see the module docstring."""

    columns: tuple[NumericColumn | OneHotColumn, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str], max_categories: int = MAX_CATEGORIES) -> TableEncoding:
        """The encoding of these columns of ``frame``."""
        encoding = cls(tuple(_fit_column(frame[name], max_categories) for name in columns))
        names = encoding.feature_names
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise DataError(f"encoded feature name(s) {', '.join(map(repr, clashes))} clash with a column of "
                            f"the same name: rename the column")
        return encoding

    @property
    def input_names(self) -> list[str]:
        """The raw columns, in order."""
        return [column.name for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """One name per encoded feature, in the order of :meth:`transform`'s columns."""
        return [name for column in self.columns for name in column.feature_names]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The row-major ``float64`` feature matrix of ``frame``'s raw columns."""
        missing = [name for name in self.input_names if name not in frame.columns]
        if missing:
            raise DataError(f"column(s) {', '.join(missing)} missing: expected {', '.join(self.input_names)}")
        features = [array for column in self.columns for array in column.encode(frame[column.name])]
        return np.ascontiguousarray(np.column_stack(features)) if features else np.empty((len(frame), 0))

    def impute_from(self, X: np.ndarray, rows: np.ndarray) -> TableEncoding:
        """This encoding with each filled column's median taken over ``rows`` of ``X`` (its
        encoded rows, their non-empty cells), and every empty cell of ``X`` refilled with it,
        in place: ``rows`` are a split's training rows, so that no other row's value is in
        what a network trains on or in the model's encoding."""
        columns, start = [], 0
        for column in self.columns:
            if isinstance(column, NumericColumn) and column.indicator:
                values, empty = X[rows, start], X[rows, start + 1] > 0.5
                median = float(np.median(values[~empty])) if (~empty).any() else column.median
                X[X[:, start + 1] > 0.5, start] = median
                column = replace(column, median=median)
            columns.append(column)
            start += len(column.feature_names)
        return TableEncoding(tuple(columns))

    def summary(self, names: int = 3) -> str:
        """One line saying what was done to which columns (at most ``names`` named per kind)::

            4 columns -> 41 features: empty cells filled with the median and marked in
            <name>_missing (income); one-hot (job 5, city 31 + <other>)
        """
        def listed(items: list[str]) -> str:
            return ", ".join(items[:names]) + (f" and {len(items) - names} more" if len(items) > names else "")

        filled = [c.name for c in self.columns if isinstance(c, NumericColumn) and c.indicator]
        onehot = [f"{c.name} {len(c.values)}" + (f" + {OTHER}" if c.other else "")
                  for c in self.columns if isinstance(c, OneHotColumn)]
        done = ([f"empty cells filled with the median and marked in <name>{MISSING_SUFFIX} ({listed(filled)})"]
                if filled else []) + ([f"one-hot ({listed(onehot)})"] if onehot else [])
        n_in, n_out = len(self.columns), len(self.feature_names)
        counts = f"{n_in} column{'s' * (n_in != 1)} -> {n_out} feature{'s' * (n_out != 1)}"
        return counts + (": " + "; ".join(done) if done else "")

    def inverse_transform(self, X: np.ndarray) -> pd.DataFrame:
        """Raw columns whose :meth:`transform` is ``X`` (rows of a file map back to themselves,
        except that a value grouped into ``<other>`` reads ``<other>``)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(self.feature_names))
        cells, start = {}, 0
        for column in self.columns:
            width = len(column.feature_names)
            cells[column.name] = column.decode(X[:, start:start + width])
            start += width
        return pd.DataFrame(cells, columns=self.input_names)

    def to_dict(self) -> dict:
        """A JSON-able description, read back by :meth:`from_dict`."""
        return {"columns": [
            {"name": c.name, "median": c.median, "indicator": c.indicator, "kind": c.kind}
            if isinstance(c, NumericColumn) else {"name": c.name, "values": list(c.values), "other": c.other}
            for c in self.columns]}

    @classmethod
    def from_dict(cls, description: dict) -> TableEncoding:
        return cls(tuple(
            NumericColumn(c["name"], float(c["median"]), bool(c["indicator"]), str(c.get("kind", "float")))
            if "median" in c else OneHotColumn(c["name"], tuple(c["values"]), bool(c["other"]))
            for c in description["columns"]))
