"""Data sets for the engine: synthetic generators, scikit-learn's bundled sets and the
:func:`load_dataset` registry (the :class:`~ann.data.base.Dataset` container is in
:mod:`ann.data.base`).

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

import importlib.util
import inspect
from pathlib import Path
from typing import Callable

import numpy as np

from ann.data.base import Dataset, check_float, check_int
from ann.data.csv import load_csv
from ann.data.idx import fashion_mnist, mnist
from ann.exceptions import InvalidParameterError

def _rng(seed: object) -> np.random.Generator:
    """The generator for ``seed`` (a non-negative integer)."""
    return np.random.default_rng(check_int("seed", seed, 0))


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
    n = check_int("n_samples", n_samples, 1)
    noise = check_float("noise", noise, 0.0)
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
    n = check_int("n_samples", n_samples, 2)
    noise = check_float("noise", noise, 0.0)
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
    n = check_int("n_samples", n_samples, 2)
    noise = check_float("noise", noise, 0.0)
    factor = check_float("factor", factor, 0.0, 1.0, include_low=False)
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
    k = check_int("n_classes", n_classes, 2)
    n = check_int("n_samples", n_samples, k)
    noise = check_float("noise", noise, 0.0)
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
    n = check_int("n_samples", n_samples, 1)
    d = check_int("n_features", n_features, 1)
    noise = check_float("noise", noise, 0.0)
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
    """scikit-learn's 8x8 handwritten digits (1797 x 64, pixel values 0..16), 10 classes.

    Read from the CSV file scikit-learn ships, as its ``load_digits`` does, without importing
    scikit-learn (about 1 s of every sweep worker's start); through ``load_digits`` where the
    file is not found."""
    path = _sklearn_data_file("digits.csv.gz")
    if path is None:
        # Deliberately lazy: importing scikit-learn takes 1-2 s.
        from sklearn.datasets import load_digits

        return _from_sklearn("digits", load_digits(), "multiclass")
    rows = np.loadtxt(path, delimiter=",")
    pixels = [f"pixel_{row}_{column}" for row in range(8) for column in range(8)]
    return Dataset("digits", rows[:, :-1], rows[:, -1].astype(np.int64), "multiclass", pixels,
                   class_names=[str(digit) for digit in range(10)])


def _sklearn_data_file(name: str) -> Path | None:
    """A data file of ``sklearn/datasets/data/``, found without importing scikit-learn (None: not there)."""
    spec = importlib.util.find_spec("sklearn")
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    paths = [Path(folder) / "datasets" / "data" / name for folder in folders]
    return next((path for path in paths if path.is_file()), None)


def breast_cancer() -> Dataset:
    """scikit-learn's Wisconsin breast cancer set (569 x 30); 0 = malignant, 1 = benign."""
    # Deliberately lazy: importing scikit-learn takes about 2 s, and only this loader needs it.
    from sklearn.datasets import load_breast_cancer

    return _from_sklearn("breast_cancer", load_breast_cancer(), "binary")


def diabetes() -> Dataset:
    """scikit-learn's diabetes set (442 x 10, scaled features) with the raw target (25..346)."""
    # Deliberately lazy: importing scikit-learn takes about 2 s, and only this loader needs it.
    from sklearn.datasets import load_diabetes

    return _from_sklearn("diabetes", load_diabetes(scaled=True), "regression")


# ---------------------------------------------------------------------- registry

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
