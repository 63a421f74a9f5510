"""A run's data: loaded and split once, checked against the model, described as params.

:func:`prepare_data` loads the data set and splits it into training, validation and test
sets; a sweep calls it once per process and hands the result to every trial
(:func:`sweeps.training.run.train` takes it as ``data``). :meth:`PreparedData.folds`
splits its training + validation rows into the folds of a cross-validation
(``sweep.cv_folds``), also once per process. :func:`build_model` makes the
engine's estimator with the checks that need the data (task, batch size).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

import ann
from ann import params as P
from ann.data import Dataset, kfold_indices, load_dataset, split_rows
from ann.preprocessing import Standardizer
from sweeps.config.run_spec import RunSpec, format_value
from sweeps.core.errors import ConfigError, UserError


@dataclass(frozen=True)
class Standardized:
    """The inputs standardised once, in one dtype, and their scaler (None where a part is empty)."""

    scaler: Standardizer
    X_train: np.ndarray
    X_val: np.ndarray | None
    X_test: np.ndarray | None


@dataclass(frozen=True)
class Part:
    """Some rows of a data set's inputs (all of them when ``rows`` is None), gathered only when
    asked for: the parts of a large data set are read from the one array they share (often a
    mapped file, :mod:`ann.data.parsed_cache`), not each held as a copy."""

    inputs: np.ndarray
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs) if self.rows is None else len(self.rows)

    def gather(self, count: int | None = None) -> np.ndarray:
        """The part's rows as an array of their own (its first ``count`` rows, if given)."""
        if self.rows is None:
            return self.inputs[:count]
        return self.inputs[self.rows[:count]]


def joined(first: Part, second: Part | None) -> Part:
    """The rows of ``first`` then ``second``; still rows of the shared inputs where they share them."""
    if second is None:
        return first
    if first.inputs is second.inputs and first.rows is not None and second.rows is not None:
        return Part(first.inputs, np.concatenate([first.rows, second.rows]))
    return Part(np.concatenate([first.gather(), second.gather()]))


@dataclass
class PreparedData:
    """A data set split for training; the arrays are shared, never written to.

    ``dataset`` describes the data (name, task, feature and class names) without its rows;
    ``train``, ``val`` and ``test`` are the parts' rows (None where a part is empty), and
    ``X_train``, ``X_val`` and ``X_test`` those rows gathered, on first use. A model that
    standardises its inputs never needs them: :meth:`standardized` reads the rows in place.
    """

    dataset: Dataset
    train: Part
    y_train: np.ndarray
    val: Part | None
    y_val: np.ndarray | None
    test: Part | None
    y_test: np.ndarray | None
    _standardized: dict[str, Standardized] = field(default_factory=dict, repr=False)
    _folds: dict[tuple[int, int], list["PreparedData"]] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str:
        return self.dataset.task

    @property
    def n_features(self) -> int:
        return self.train.inputs.shape[1]

    @property
    def n_val(self) -> int:
        return 0 if self.val is None else len(self.val)

    @cached_property
    def X_train(self) -> np.ndarray:
        return self.train.gather()

    @cached_property
    def X_val(self) -> np.ndarray | None:
        return None if self.val is None else self.val.gather()

    @cached_property
    def X_test(self) -> np.ndarray | None:
        return None if self.test is None else self.test.gather()

    def standardized(self, dtype: str) -> Standardized:
        """The inputs standardised with the training set's statistics, computed once per dtype.

        ``MLP.fit(Z, y, standardized_by=scaler)`` on them is bit for bit ``fit(X, y)`` with
        ``standardize=True``, without each trial repeating the work (0.2-0.5 s on 60,000 x 784);
        the rows are read where they lie, never gathered into a float64 copy first.
        """
        key = str(np.dtype(dtype))
        if key not in self._standardized:
            floating = _floating_inputs()
            scaler = Standardizer().fit(floating(self.train.inputs), rows=self.train.rows)

            def standardize(part: Part | None) -> np.ndarray | None:
                return None if part is None else scaler.transform(floating(part.inputs), dtype=dtype, rows=part.rows)

            self._standardized[key] = Standardized(scaler, standardize(self.train), standardize(self.val), standardize(self.test))
        return self._standardized[key]

    def folds(self, n_folds: int, seed: int) -> list["PreparedData"]:
        """The training + validation rows in ``n_folds`` folds (stratified for classification,
        :func:`ann.data.kfold_indices` seeded by ``seed``), made once per process: fold ``j`` is a
        PreparedData whose validation part is the ``j``-th fold and whose training part is the rest;
        the test rows stay those of this split. Each fold standardises its inputs with its own
        training rows' statistics (:meth:`standardized`), never with its validation rows'.

        Raises:
            ann.InvalidParameterError: ``n_folds`` is not an integer in [2, training + validation rows].
        """
        key = (int(n_folds), int(seed))
        if key not in self._folds:
            rows = joined(self.train, self.val)
            indices = np.arange(len(rows)) if rows.rows is None else rows.rows
            y = self.y_train if self.val is None else np.concatenate([self.y_train, self.y_val])
            pairs = kfold_indices(y, n_folds, stratify=self.task != "regression", seed=seed)
            self._folds[key] = [PreparedData(self.dataset, Part(rows.inputs, indices[train]), y[train],
                                             Part(rows.inputs, indices[val]), y[val], self.test, self.y_test)
                                for train, val in pairs]
        return self._folds[key]


def _floating_inputs():
    """``inputs`` as the engine takes them, converted at most once per array: floating-point kept
    as it is, anything else as float64."""
    converted: dict[int, np.ndarray] = {}

    def floating(inputs: np.ndarray) -> np.ndarray:
        if inputs.dtype.kind == "f":
            return inputs
        if id(inputs) not in converted:
            converted[id(inputs)] = inputs.astype(np.float64)
        return converted[id(inputs)]

    return floating


def prepare_data(spec: RunSpec) -> PreparedData:
    """Load and split the data set; problems are one-line :class:`UserError`s."""
    try:
        dataset = load_dataset(spec.dataset, **spec.dataset_options)
        rows = split_rows(dataset, val_size=spec.val_size, test_size=spec.test_size, seed=spec.split_seed)
    except ann.InvalidParameterError as error:
        key = error.name if error.name in ("val_size", "test_size", "val_size + test_size") else None
        if key is not None:
            raise ConfigError(f"training.{key.split()[0]}", error.value, error.allowed) from None
        raise ConfigError(f"dataset.{error.name}", error.value, error.allowed) from None
    except ann.DataError as error:
        raise UserError(_data_error(spec, str(error))) from None
    X, y = dataset.X, dataset.y
    if dataset.encoding is not None:  # a CSV's empty cells: the training rows' medians, not the file's
        dataset = replace(dataset, encoding=dataset.encoding.impute_from(X, rows.train))
    test, y_test = (Part(X, rows.test), y[rows.test]) if rows.test is not None else (Part(dataset.X_test), dataset.y_test)
    return PreparedData(
        dataset=_description(dataset),
        train=Part(X, rows.train),
        y_train=y[rows.train],
        val=Part(X, rows.val) if len(rows.val) else None,
        y_val=y[rows.val] if len(rows.val) else None,
        test=test if len(test) else None,
        y_test=y_test if len(test) else None,
    )


def _description(dataset: Dataset) -> Dataset:
    """The data set without its rows, which the parts now hold. Kept whole only where its class
    count is read off its labels."""
    if dataset.task != "regression" and dataset.class_names is None:
        return dataset
    return replace(dataset, X=dataset.X[:0], y=dataset.y[:0], X_test=None, y_test=None)


def same_data(spec: RunSpec, other: RunSpec) -> bool:
    """Whether ``other`` reads the very same split data as ``spec`` (so prepared data can be reused)."""
    return ((spec.dataset, spec.dataset_options, spec.val_size, spec.test_size, spec.split_seed)
            == (other.dataset, other.dataset_options, other.val_size, other.test_size, other.split_seed))


def _data_error(spec: RunSpec, message: str) -> str:
    options = spec.dataset_options
    if "target column" in message and "target" in options:
        return f"dataset.target={options['target']!r} cannot be used: {message}"
    if "feature column" in message and options.get("features") is not None:
        return f"dataset.features={format_value(options['features'])} cannot be used: {message}"
    if "path" in options:
        return f"dataset.path={options['path']!r} cannot be used: {message}"
    return f"dataset={spec.dataset} cannot be used: {message}"


def build_model(spec: RunSpec, data: PreparedData) -> ann.MLP:
    """The engine's estimator for this data, with the checks that need the data."""
    kwargs = dict(spec.model_kwargs)
    task = data.task
    try:
        P.check_task_fit(task, kwargs.get("loss"), kwargs.get("output_activation"))
    except ann.InvalidParameterError as error:
        raise ConfigError(f"model.{error.name}", error.value, error.allowed) from None
    n_train = len(data.train)
    if kwargs.get("batch_size", 32) > n_train:
        raise ConfigError(
            "training.batch_size", kwargs["batch_size"],
            f"an integer in [1, {n_train}] (the training set has {n_train} samples)",
        )
    return ann.MLP(**kwargs, task=task)


def resolved_params(spec: RunSpec, data: PreparedData) -> dict[str, Any]:
    """Params known once the data is loaded: what ``null`` in the config became."""
    task = data.task
    model = spec.model_kwargs
    values = {
        "model.output_activation": model.get("output_activation") or P.OUTPUT_ACTIVATIONS_FOR_TASK[task][0],
        "model.loss": model.get("loss") or P.LOSSES_FOR_TASK[task][0],
        "dataset.task": task,
        "dataset.n_features": data.n_features,
        "dataset.n_train": len(data.train),
        "dataset.n_val": data.n_val,
        "dataset.n_test": 0 if data.test is None else len(data.test),
    }
    if task != "regression":
        values["dataset.n_classes"] = data.dataset.n_classes
    if data.dataset.encoding is not None:  # a CSV's text columns and empty cells: what became of them
        values["dataset.encoding"] = data.dataset.encoding.summary()
    return values
