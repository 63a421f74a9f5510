"""Load a supervised data set from a CSV file (registered as dataset ``"csv"``).

The file is read with :func:`pandas.read_csv` (header row required).  One column is
the target; the features are the listed columns or, by default, all other columns,
by default encoded as an expert would (:mod:`ann.data.encoding`: empty numeric cells get the
column's median and a ``<name>_missing`` indicator, text columns are one-hot encoded);
``missing="error"`` and ``categorical="error"`` refuse such columns instead.  Every problem
with the file is reported as a one-line :class:`~ann.exceptions.DataError` naming the file,
column and values involved.

With a ``cache_dir``, what was parsed is kept there as NumPy arrays and read back while the
file is unchanged (:mod:`ann.data.parsed_cache`): parsing is most of the cost of loading.

The loader is called :func:`load_csv` (not ``csv``) so that it never shadows this
module as the attribute ``ann.data.csv``; ``csv`` is kept as an alias inside this
module only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ann.data import parsed_cache
from ann.data.base import Dataset
from ann.data.encoding import MAX_CATEGORIES, TableEncoding
from ann.exceptions import DataError, InvalidParameterError

CSV_TASKS = ("auto", "regression", "classification", "binary", "multiclass")
MISSING_POLICIES = ("impute", "error")
CATEGORICAL_POLICIES = ("onehot", "error")

# task="auto": an integer-valued numeric target with at most this many distinct values
# is treated as class labels.
MAX_AUTO_CLASSES = 20


def _read(path: Path) -> pd.DataFrame:
    """``pandas.read_csv(path)``, with every failure turned into a one-line DataError."""
    if not path.exists():
        raise DataError(f"CSV file not found: '{path}'")
    if not path.is_file():
        raise DataError(f"CSV path is not a file: '{path}'")
    try:
        return pd.read_csv(path)
    except OSError as error:
        raise DataError(f"cannot read CSV file '{path}': {error.strerror or error}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"CSV file '{path}' is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot parse CSV file '{path}': {first_line}") from None


def _columns(df: pd.DataFrame, path: Path, target: str, features) -> list[str]:
    """The feature column names to use, checked against the file's columns."""
    available = [str(c) for c in df.columns]
    listing = ", ".join(available)
    if target not in available:
        raise DataError(f"target column '{target}' not found in '{path}': "
                        f"available columns are {listing}")
    if features is None:
        columns = [c for c in available if c != target]
        if not columns:
            raise DataError(f"CSV file '{path}' has no feature columns besides target '{target}'")
        return columns
    if isinstance(features, str):
        features = [features]
    if not isinstance(features, Iterable) or not all(isinstance(f, str) for f in features):
        raise InvalidParameterError("features", features, "a list of column names or None")
    columns = list(features)
    if not columns:
        raise InvalidParameterError("features", columns, "a non-empty list of column names or None")
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise DataError(f"feature column(s) {', '.join(unknown)} not found in '{path}': "
                        f"available columns are {listing}")
    if target in columns:
        raise DataError(f"column '{target}' cannot be both the target and a feature")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DataError(f"feature column(s) {', '.join(duplicates)} listed more than once")
    return columns


def _check_missing(df: pd.DataFrame, path: Path, columns: list[str]) -> None:
    """Raise DataError naming each used column that has missing or empty cells."""
    counts = df[columns].isna().sum()
    bad = [f"'{c}' ({int(n)})" for c, n in counts.items() if n]
    if bad:
        raise DataError(f"missing or empty cells in '{path}': column {', '.join(bad)}")


def _check_numeric(df: pd.DataFrame, path: Path, features: list[str], categorical: str) -> None:
    """Raise DataError naming the first feature column with infinite values or, with
    ``categorical="error"``, the first that is not numeric."""
    for column in features:
        series = df[column]
        if not pd.api.types.is_numeric_dtype(series):
            if categorical == "error":
                example = series[pd.to_numeric(series, errors="coerce").isna()].iloc[0]
                raise DataError(f"feature column '{column}' in '{path}' is not numeric "
                                f"(e.g. value {example!r}): encode it as numbers, leave it out "
                                f"of features, or let it be one-hot encoded (categorical='onehot')")
        elif np.isinf(series.to_numpy(dtype=np.float64)).any():
            raise DataError(f"feature column '{column}' in '{path}' has infinite values")


def _is_integer_valued(series: pd.Series) -> bool:
    """True for a numeric column whose values are all whole numbers."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return True
    values = series.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _infer_task(series: pd.Series) -> str:
    """``"classification"`` or ``"regression"`` for a target column (task="auto")."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return "classification"
    if _is_integer_valued(series) and series.nunique() <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def _encode_labels(series: pd.Series, path: Path, target: str) -> tuple[np.ndarray, list[str]]:
    """Class codes ``0..k-1`` and the sorted original labels (as str) of a target column."""
    if pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=np.int64)
    elif pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        if _is_integer_valued(series):
            values = values.astype(np.int64)
    else:
        values = series.astype(str).to_numpy(dtype=str)
    labels, codes = np.unique(values, return_inverse=True)
    if len(labels) < 2:
        raise DataError(f"target column '{target}' in '{path}' has a single class "
                        f"({str(labels[0])!r}): classification needs at least 2 classes")
    if pd.api.types.is_bool_dtype(series):
        names = [str(bool(v)) for v in labels]
    else:
        names = [str(v) for v in labels]
    return codes.astype(np.int64).reshape(-1), names


def _check_arguments(path, target, task, cache_dir, missing, categorical, max_categories) -> None:
    """Raise InvalidParameterError naming the first bad argument of :func:`load_csv`."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError("path", path, "a path to a CSV file (str)")
    if not isinstance(target, str):
        raise InvalidParameterError("target", target, "a column name (str)")
    if not isinstance(task, str) or task not in CSV_TASKS:
        raise InvalidParameterError("task", task, f"one of {list(CSV_TASKS)}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise InvalidParameterError("cache_dir", cache_dir, "a folder path (str) or None")
    if missing not in MISSING_POLICIES:
        raise InvalidParameterError("missing", missing, f"one of {list(MISSING_POLICIES)}")
    if categorical not in CATEGORICAL_POLICIES:
        raise InvalidParameterError("categorical", categorical, f"one of {list(CATEGORICAL_POLICIES)}")
    if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 2:
        raise InvalidParameterError("max_categories", max_categories, "an integer >= 2")


def load_csv(path: str | os.PathLike, target: str, features: list[str] | None = None,
             task: str = "auto", cache_dir: str | os.PathLike | None = None, *,
             missing: str = "impute", categorical: str = "onehot",
             max_categories: int = MAX_CATEGORIES) -> Dataset:
    """Load a CSV file as a :class:`Dataset`.

    Args:
        path: the CSV file (header row with column names).
        target: name of the target column.
        features: feature column names; ``None`` means every column except ``target``.
        task: ``"auto"``, ``"regression"``, ``"classification"``, ``"binary"`` or
            ``"multiclass"``.  ``"auto"`` picks classification when the target is
            non-numeric, or integer-valued with at most 20 distinct values, else
            regression.  Classification becomes ``"binary"`` for 2 classes, else
            ``"multiclass"`` (an explicit ``"multiclass"`` is kept even for 2
            classes; ``"binary"`` requires exactly 2); labels are encoded ``0..k-1`` in sorted order and
            ``class_names`` holds the original labels as str.
        cache_dir: a folder where the parsed arrays are kept and read back while the file is
            unchanged (:mod:`ann.data.parsed_cache`); ``None``: parse every time.
        missing: ``"impute"``: a feature's empty cells get its median, and a 0/1 feature
            ``<name>_missing`` marks them; ``"error"``: refuse a feature with empty cells.
            An empty target cell is always refused.
        categorical: ``"onehot"``: a text feature becomes a 0/1 feature per value;
            ``"error"``: refuse it.
        max_categories: a one-hot encoded feature's columns at most; the rarest values share
            ``<name>=<other>`` (:mod:`ann.data.encoding`).

    The returned data set's ``encoding`` says how the file's columns were encoded (``None``
    when every feature was numeric and complete, used as it is).

    Raises:
        InvalidParameterError: bad ``path``/``target``/``features``/``task``/``cache_dir``/
            ``missing``/``categorical``/``max_categories`` argument.
        DataError: the file is missing, unparsable or has no data rows, a named column is missing, a used
            target has empty cells (a feature too, with ``missing="error"``), a feature is not
            numeric (with ``categorical="error"``) or has infinite values, the target is not
            numeric for regression, or a classification target has a single class,
            or ``task="binary"`` is asked for a target without exactly 2 classes.
    """
    encoding = {"missing": missing, "categorical": categorical, "max_categories": max_categories}
    _check_arguments(path, target, task, cache_dir, **encoding)
    path = Path(path)
    if cache_dir is None:
        return _row_major(_parse(path, target, features, task, **encoding))
    options = {"target": target, "features": features, "task": task, **encoding}
    dataset = parsed_cache.read(cache_dir, path, options)
    if dataset is None:
        parsed = _parse(path, target, features, task, **encoding)
        # The entry just written is read back mapped: its rows are in the page cache already,
        # and a row-major copy in memory is not needed.
        if parsed_cache.write(cache_dir, path, options, parsed):
            dataset = parsed_cache.read(cache_dir, path, options)
        dataset = dataset or _row_major(parsed)
    return dataset


def _row_major(dataset: Dataset) -> Dataset:
    """The data set with row-major features: a split gathers rows, which from pandas'
    column-major block takes 10-20 times longer (1.5-2.3 s against 0.1 s for 60,000 x 784)."""
    dataset.X = np.ascontiguousarray(dataset.X)
    return dataset


def _parse(path: Path, target: str, features, task: str, missing: str, categorical: str,
           max_categories: int) -> Dataset:
    """:func:`load_csv` without a cache: read the file with pandas, check it, encode the target.

    The features are a view of pandas' column-major block (see :func:`_row_major`).
    """
    df = _read(path)
    if df.empty:
        raise DataError(f"CSV file '{path}' has no data rows (only its header: {', '.join(map(str, df.columns))})")
    df.columns = [str(c) for c in df.columns]
    columns = _columns(df, path, target, features)
    _check_missing(df, path, [target, *columns] if missing == "error" else [target])
    _check_numeric(df, path, columns, categorical)
    encoding = None
    complete = missing == "error" or not df[columns].isna().any().any()  # "error": checked just above
    if complete and all(pd.api.types.is_numeric_dtype(df[c]) for c in columns):
        X = df[columns].to_numpy(dtype=np.float64)
    else:
        encoding = TableEncoding.fit(df, columns, max_categories)
        X, columns = encoding.transform(df), encoding.feature_names
    series = df[target]

    if task == "auto":
        task = _infer_task(series)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(series):
            raise DataError(f"target column '{target}' in '{path}' is not numeric, so it "
                            f"cannot be a regression target: use task='classification'")
        return Dataset(path.stem, X, series.to_numpy(dtype=np.float64), "regression", columns,
                       encoding=encoding)

    y, class_names = _encode_labels(series, path, target)
    if task == "binary" and len(class_names) != 2:
        raise DataError(f"task='binary' needs 2 classes but target column '{target}' in "
                        f"'{path}' has {len(class_names)}")
    if task == "classification":
        task = "binary" if len(class_names) == 2 else "multiclass"
    return Dataset(path.stem, X, y, task, columns, class_names=class_names, encoding=encoding)


csv = load_csv
