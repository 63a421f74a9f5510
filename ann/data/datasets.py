"""Data sets for the engine: the :class:`Dataset` container, synthetic generators,
scikit-learn's bundled sets and the :func:`load_dataset` registry.

Every generator is deterministic for its ``seed`` (``numpy.random.default_rng(seed)``)
and returns features as ``float64`` of shape ``(n, d)``.  Classification labels are
``int64`` codes ``0..k-1`` whose original labels are kept, as strings, in
``Dataset.class_names``; regression targets are ``float64`` of shape ``(n,)``.

Registered names (``DATASETS``)::

    xor, moons, circles, spiral, regression      synthetic, generated in NumPy
    digits, breast_cancer, diabetes              bundled with scikit-learn (no download)
    csv                                          any CSV file  (ann.data.csv.load_csv)
    mnist, fashion_mnist                         local IDX files (ann.data.idx.mnist)

MNIST and Fashion-MNIST are never downloaded by this package.  Users who are online
fetch the four files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` into one folder from

* MNIST: https://storage.googleapis.com/cvdf-datasets/mnist/
* Fashion-MNIST: https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/

(see :mod:`ann.data.idx`) and pass that folder as ``path``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

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
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    class_names: list[str] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidParameterError("task", self.task, f"one of {list(TASKS)}")
        _check_xy(self.X, self.y, "X", "y")
        if (self.X_test is None) != (self.y_test is None):
            raise DataError("X_test and y_test must be given together or both be None")
        if self.X_test is not None:
            _check_xy(self.X_test, self.y_test, "X_test", "y_test")

    @property
    def n_classes(self) -> int | None:
        """Number of classes; ``None`` for regression."""
        if self.task == "regression":
            return None
        if self.class_names is not None:
            return len(self.class_names)
        labels = [self.y] if self.y_test is None else [self.y, self.y_test]
        return int(max(part.max(initial=-1) for part in labels)) + 1


def _check_xy(X: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    """Raise :class:`DataError` unless ``X`` is 2-D and ``y`` is 1-D with as many rows."""
    if np.ndim(X) != 2:
        raise DataError(f"{x_name} must be 2-D (n_samples, n_features), got shape {np.shape(X)}")
    if np.ndim(y) != 1 or len(y) != len(X):
        raise DataError(
            f"{y_name} must be 1-D with one entry per row of {x_name}: "
            f"shapes {np.shape(X)} and {np.shape(y)}"
        )


# --------------------------------------------------------------------------- checks


def _check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as int if it is an integer ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(name, value, f"an integer >= {minimum}")
    return int(value)


def _check_float(name: str, value: object, low: float, high: float | None = None,
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


def _rng(seed: object) -> np.random.Generator:
    """The generator for ``seed`` (a non-negative integer)."""
    return np.random.default_rng(_check_int("seed", seed, 0))


def _binary(name: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dataset:
    """A shuffled two-feature binary data set with classes ``"0"``/``"1"``."""
    order = rng.permutation(len(X))
    return Dataset(name, X[order], y[order].astype(np.int64), "binary",
                   ["x1", "x2"], class_names=["0", "1"])


# ----------------------------------------------------------------------- synthetic


def xor(n_samples: int = 4, noise: float = 0.0, seed: int = 0) -> Dataset:
    """The XOR problem (binary, two features).

    With ``n_samples=4`` and ``noise=0`` this is exactly the truth table
    ``X = [[0,0],[0,1],[1,0],[1,1]]``, ``y = [0,1,1,0]``, in that order.  Otherwise the
    four corners are used equally often (``n_samples`` cycles through them), shuffled,
    and each point gets gaussian noise of standard deviation ``noise``.
    """
    n = _check_int("n_samples", n_samples, 1)
    noise = _check_float("noise", noise, 0.0)
    rng = _rng(seed)
    table = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    if n == 4 and noise == 0.0:
        return Dataset("xor", table, np.array([0, 1, 1, 0], dtype=np.int64), "binary",
                       ["x1", "x2"], class_names=["0", "1"])
    corners = table[rng.permutation(np.arange(n) % 4)]
    X = corners + rng.normal(0.0, noise, size=corners.shape)
    y = (corners[:, 0] != corners[:, 1]).astype(np.int64)
    return Dataset("xor", X, y, "binary", ["x1", "x2"], class_names=["0", "1"])


def moons(n_samples: int = 500, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half circles (binary), like ``sklearn.datasets.make_moons``.

    Class 0 (``n_samples // 2`` points) lies on the upper unit half circle centred at
    ``(0, 0)``; class 1 on the lower unit half circle centred at ``(1, 0.5)``.  Points
    are evenly spaced along the arcs, get gaussian noise of std ``noise``, and are shuffled.
    """
    n = _check_int("n_samples", n_samples, 2)
    noise = _check_float("noise", noise, 0.0)
    rng = _rng(seed)
    n_outer = n // 2
    t_outer = np.linspace(0.0, np.pi, n_outer)
    t_inner = np.linspace(0.0, np.pi, n - n_outer)
    X = np.concatenate([
        np.column_stack([np.cos(t_outer), np.sin(t_outer)]),
        np.column_stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)]),
    ])
    X += rng.normal(0.0, noise, size=X.shape)
    y = np.repeat([0, 1], [n_outer, n - n_outer])
    return _binary("moons", X, y, rng)


def circles(n_samples: int = 500, noise: float = 0.1, factor: float = 0.5,
            seed: int = 0) -> Dataset:
    """A small circle inside a large one (binary), like ``make_circles``.

    Class 0 (``n_samples // 2`` points) is evenly spaced on the unit circle, class 1 on
    the circle of radius ``factor`` (``0 < factor < 1``); gaussian noise of std ``noise``
    is added and the points are shuffled.
    """
    n = _check_int("n_samples", n_samples, 2)
    noise = _check_float("noise", noise, 0.0)
    factor = _check_float("factor", factor, 0.0, 1.0, include_low=False)
    rng = _rng(seed)
    n_outer = n // 2
    t_outer = np.linspace(0.0, 2.0 * np.pi, n_outer, endpoint=False)
    t_inner = np.linspace(0.0, 2.0 * np.pi, n - n_outer, endpoint=False)
    X = np.concatenate([
        np.column_stack([np.cos(t_outer), np.sin(t_outer)]),
        factor * np.column_stack([np.cos(t_inner), np.sin(t_inner)]),
    ])
    X += rng.normal(0.0, noise, size=X.shape)
    y = np.repeat([0, 1], [n_outer, n - n_outer])
    return _binary("circles", X, y, rng)


def spiral(n_samples: int = 600, n_classes: int = 3, noise: float = 0.2,
           seed: int = 0) -> Dataset:
    """The CS231n spiral: ``n_classes`` arms winding out of the origin (multiclass).

    Arm ``j`` holds ``n_samples // n_classes`` points (the first ``n_samples % n_classes``
    arms one more); point ``i`` of an arm with ``m`` points has radius ``r = i / (m - 1)``
    and angle ``4 j + 4 r`` plus gaussian noise of std ``noise`` (on the angle), giving
    ``(r sin t, r cos t)``.  Points are shuffled.
    """
    k = _check_int("n_classes", n_classes, 2)
    n = _check_int("n_samples", n_samples, k)
    noise = _check_float("noise", noise, 0.0)
    rng = _rng(seed)
    sizes = np.full(k, n // k) + (np.arange(k) < n % k)
    parts = []
    for j, m in enumerate(sizes):
        r = np.linspace(0.0, 1.0, m)
        t = 4.0 * j + 4.0 * r + rng.normal(0.0, noise, size=m)
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    X = np.concatenate(parts)
    y = np.repeat(np.arange(k, dtype=np.int64), sizes)
    order = rng.permutation(n)
    return Dataset("spiral", X[order], y[order], "multiclass", ["x1", "x2"],
                   class_names=[str(j) for j in range(k)])


def regression_target(X: np.ndarray) -> np.ndarray:
    """The noise-free target of :func:`regression`: ``sin(2 x1) + 0.5 * sum_{j>=2} xj**2``."""
    return np.sin(2.0 * X[:, 0]) + 0.5 * np.sum(X[:, 1:] ** 2, axis=1)


def regression(n_samples: int = 500, n_features: int = 1, noise: float = 0.1,
               seed: int = 0) -> Dataset:
    """A noisy nonlinear regression problem.

    Features are uniform on ``[-2, 2]``; the target is :func:`regression_target`
    (``sin(2 x1) + 0.5 * (x2**2 + ... + xd**2)``) plus gaussian noise of std ``noise``.
    """
    n = _check_int("n_samples", n_samples, 1)
    d = _check_int("n_features", n_features, 1)
    noise = _check_float("noise", noise, 0.0)
    rng = _rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, d))
    y = regression_target(X) + rng.normal(0.0, noise, size=n)
    return Dataset("regression", X, y, "regression", [f"x{j + 1}" for j in range(d)])


# ------------------------------------------------------------------ scikit-learn


def _from_sklearn(name: str, bunch, task: str) -> Dataset:
    """Wrap a scikit-learn ``Bunch`` as a :class:`Dataset`."""
    X = np.asarray(bunch.data, dtype=np.float64)
    feature_names = [str(f) for f in bunch.feature_names]
    if task == "regression":
        return Dataset(name, X, np.asarray(bunch.target, dtype=np.float64), task, feature_names)
    return Dataset(name, X, np.asarray(bunch.target, dtype=np.int64), task, feature_names,
                   class_names=[str(c) for c in bunch.target_names])


def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 x 64, pixel values 0..16), 10 classes."""
    from sklearn.datasets import load_digits

    return _from_sklearn("digits", load_digits(), "multiclass")


def breast_cancer() -> Dataset:
    """scikit-learn's Wisconsin breast cancer set (569 x 30); 0 = malignant, 1 = benign."""
    from sklearn.datasets import load_breast_cancer

    return _from_sklearn("breast_cancer", load_breast_cancer(), "binary")


def diabetes() -> Dataset:
    """scikit-learn's diabetes set (442 x 10, scaled features) with the raw target (25..346)."""
    from sklearn.datasets import load_diabetes

    return _from_sklearn("diabetes", load_diabetes(scaled=True), "regression")


# ---------------------------------------------------------------------- registry

# csv.py and idx.py import Dataset from this module, so their loaders are imported
# only now that Dataset is defined (ann/data/__init__.py imports this module first).
from ann.data.csv import load_csv  # noqa: E402
from ann.data.idx import fashion_mnist, mnist  # noqa: E402

DATASETS: dict[str, Callable[..., Dataset]] = {
    "xor": xor,
    "moons": moons,
    "circles": circles,
    "spiral": spiral,
    "regression": regression,
    "digits": digits,
    "breast_cancer": breast_cancer,
    "diabetes": diabetes,
    "csv": load_csv,
    "mnist": mnist,
    "fashion_mnist": fashion_mnist,
}


def load_dataset(name: str, **options) -> Dataset:
    """Load the registered data set ``name`` with keyword ``options``.

    Raises:
        InvalidParameterError: unknown ``name``; an option the loader does not take
            (the message lists the allowed ones); a required option left out; or a
            bad option value.
        DataError: the data itself cannot be used (missing files, bad CSV, ...).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise InvalidParameterError("dataset", name, f"one of {sorted(DATASETS)}")
    loader = DATASETS[name]
    params = inspect.signature(loader).parameters
    for option, value in options.items():
        if option not in params:
            allowed = (f"an option of dataset {name!r}, one of {list(params)}" if params
                       else f"no options: dataset {name!r} takes none")
            raise InvalidParameterError(option, value, allowed)
    required = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty]
    for option in required:
        if option not in options:
            raise InvalidParameterError(
                option, None, f"a value (dataset {name!r} requires options {required})")
    return loader(**options)
