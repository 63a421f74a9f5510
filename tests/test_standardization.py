"""Standardisation: NumPy's statistics without float64 copies, and a data set standardised once.

``fit(Z, y, standardized_by=scaler)`` must give the very run ``fit(X, y)`` gives with
``standardize=True`` (the sweep worker standardises its data once and trains every trial on it).
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import ann
import ann.estimator
import ann.preprocessing
from ann.data import load_dataset, split_dataset
from ann.preprocessing import Standardizer


def numpy_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What Standardizer computed before it worked in blocks: a float64 copy and NumPy's mean/std."""
    X64 = np.asarray(X, dtype=np.float64)
    scale = X64.std(axis=0)
    scale[scale < 1e-12] = np.inf
    return X64.mean(axis=0), scale


def numpy_transform(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype) -> np.ndarray:
    out = np.array(X, dtype=dtype, order="C", copy=True)
    out -= mean.astype(dtype)
    out /= scale.astype(dtype)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(1, 3), (7, 2), (1000, 1), (2500, 37), (300, 784), (40000, 3)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_statistics_and_transform_are_numpys_to_the_last_bit(dtype, shape, order):
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(1e3, 250.0, size=shape) * rng.uniform(1e-3, 1e3, size=shape[1])
    X = np.asarray(X.astype(dtype), order=order)
    X[:, 0] = 2  # a constant column gets an infinite scale
    scaler = Standardizer().fit(X)
    mean, scale = numpy_statistics(X)
    np.testing.assert_array_equal(scaler.mean, mean)
    np.testing.assert_array_equal(scaler.scale, scale)
    assert scaler.scale[0] == np.inf
    for out_dtype in (np.float32, np.float64):
        Z = scaler.transform(X, dtype=out_dtype)
        assert Z.dtype == out_dtype and Z.flags.c_contiguous
        np.testing.assert_array_equal(Z, numpy_transform(X, mean, scale, out_dtype))



def test_a_column_constant_in_training_reaches_the_network_as_0_whatever_it_holds_later():
    """A one-hot category or a missing-value indicator the training rows never had: the network
    saw 0 there and learned nothing from it, so the value it takes later is not passed on."""
    X_train = np.array([[1.0, 0.0, 5.0], [3.0, 0.0, 5.0], [2.0, 0.0, 5.0]])
    scaler = Standardizer().fit(X_train)
    Z = scaler.transform(np.array([[2.0, 1.0, 7.0], [4.0, 0.0, -3.0]]))
    np.testing.assert_array_equal(np.abs(Z[:, 1:]), 0.0)
    np.testing.assert_array_equal(scaler.inverse_transform(Z)[:, 1:], [[0.0, 5.0], [0.0, 5.0]])
    model = ann.MLP(hidden_layers=[4], epochs=3, batch_size=3, seed=0)
    model.fit(X_train, np.array([0, 1, 0]))
    unseen = np.array([[2.0, 1.0, 5.0], [2.0, 50.0, -5.0]])
    np.testing.assert_array_equal(model.predict_proba(unseen), model.predict_proba(np.array([[2.0, 0.0, 5.0]] * 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(1, 3), (7, 2), (1000, 1), (2500, 37), (300, 784), (40000, 3)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_some_rows_give_the_bits_of_those_rows_gathered(dtype, shape, order):
    # A sweep fits and standardises its training rows straight from the whole data set.
    rng = np.random.default_rng(sum(shape) + 1)
    X = np.asarray((rng.normal(50.0, 20.0, size=shape) * rng.uniform(1e-2, 1e2, size=shape[1])).astype(dtype), order=order)
    rows = rng.permutation(shape[0])[: max(1, 2 * shape[0] // 3)]
    scaler, gathered = Standardizer().fit(X, rows=rows), Standardizer().fit(X[rows])
    np.testing.assert_array_equal(scaler.mean, gathered.mean)
    np.testing.assert_array_equal(scaler.scale, gathered.scale)
    for out_dtype in (np.float32, np.float64):
        Z = scaler.transform(X, dtype=out_dtype, rows=rows)
        assert Z.dtype == out_dtype and Z.flags.c_contiguous and Z.shape == (len(rows), shape[1])
        np.testing.assert_array_equal(Z, gathered.transform(X[rows], dtype=out_dtype))


def test_fit_does_not_copy_a_large_float32_array_to_float64():
    # 20,000 x 200 float32 is 16 MB; a float64 copy (the old path) would add 32 MB at once.
    tracemalloc = pytest.importorskip("tracemalloc")
    X = np.random.default_rng(0).random((20_000, 200), dtype=np.float32)
    tracemalloc.start()
    Standardizer().fit(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4e6, f"fit allocated {peak / 1e6:.1f} MB at its peak"


def split(name: str, **options):
    parts = split_dataset(load_dataset(name, **options), val_size=0.2, test_size=0.0, seed=0)
    return parts.X_train, parts.y_train, parts.X_val, parts.y_val


@pytest.mark.parametrize(
    "name, options, dtype",
    [
        ("spiral", {"n_samples": 300}, "float32"),
        ("moons", {"n_samples": 200}, "float64"),
        ("regression", {"n_samples": 200, "n_features": 3}, "float32"),
    ],
)
def test_fit_on_data_standardised_once_is_the_standardize_true_run(tmp_path, name, options, dtype):
    X, y, X_val, y_val = split(name, **options)
    settings = dict(hidden_layers=[16, 8], epochs=4, batch_size=16, dropout=0.1, dtype=dtype, seed=3)
    plain = ann.MLP(**settings)
    plain_history = plain.fit(X, y, validation_data=(X_val, y_val))

    scaler = Standardizer().fit(X)
    Z, Z_val = scaler.transform(X, dtype=dtype), scaler.transform(X_val, dtype=dtype)
    for _ in range(2):  # the same standardised arrays serve any number of models
        model = ann.MLP(**settings)
        history = model.fit(Z, y, validation_data=(Z_val, y_val), standardized_by=scaler)
        assert history.history == plain_history.history
        for a, b in zip(model.parameters(), plain.parameters()):
            np.testing.assert_array_equal(a, b)
        assert model.x_scaler_ is scaler
        np.testing.assert_array_equal(model.predict(X_val), plain.predict(X_val))  # raw inputs
        assert model.evaluate(X_val, y_val) == plain.evaluate(X_val, y_val)
        assert model.evaluate(Z_val, y_val, standardized_by=scaler) == plain.evaluate(X_val, y_val)  # scored once standardised
    np.testing.assert_array_equal(Z, scaler.transform(X, dtype=dtype))  # fit left Z as it was

    model.save(tmp_path / "model")
    loaded = ann.MLP.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.x_scaler_.mean, scaler.mean)
    np.testing.assert_array_equal(loaded.predict(X_val), plain.predict(X_val))


def test_standardized_by_is_refused_where_it_cannot_hold():
    X, y, _, _ = split("moons", n_samples=100)
    scaler = Standardizer().fit(X)
    Z = scaler.transform(X, dtype="float32")
    fitted = ann.MLP(hidden_layers=[4], epochs=1)
    fitted.fit(Z, y, standardized_by=scaler)
    with pytest.raises(ann.InvalidParameterError, match="the model.s own scaler"):
        fitted.evaluate(Z, y, standardized_by=Standardizer().fit(X))  # equal statistics, another scaler
    with pytest.raises(ann.InvalidParameterError, match="standardized_by=.*None when standardize=False"):
        ann.MLP(standardize=False).fit(Z, y, standardized_by=scaler)
    with pytest.raises(ann.InvalidParameterError, match="a fitted ann.preprocessing.Standardizer"):
        ann.MLP().fit(Z, y, standardized_by=Standardizer())
    with pytest.raises(ann.InvalidParameterError, match="a fitted ann.preprocessing.Standardizer"):
        ann.MLP().fit(Z, y, standardized_by=(scaler.mean, scaler.scale))
    with pytest.raises(ann.DataError, match="fitted on 2 features but X has 3"):
        ann.MLP().fit(np.hstack([Z, Z[:, :1]]), y, standardized_by=scaler)
    with pytest.raises(ann.DataError, match=r"X is float64 but the model computes in float32: .*dtype='float32'"):
        ann.MLP().fit(scaler.transform(X), y, standardized_by=scaler)
    with pytest.raises(ann.DataError, match=r"X_val is float64 .*scaler.transform\(X_val, dtype='float32'\)"):
        ann.MLP().fit(Z, y, validation_data=(scaler.transform(X), y), standardized_by=scaler)


@pytest.mark.parametrize("module", [ann.preprocessing, ann.estimator])
def test_the_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
