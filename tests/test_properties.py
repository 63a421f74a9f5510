"""Property-based tests (hypothesis): numerical stability, round trips, determinism."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ann
from ann.activations import Sigmoid, Softmax
from ann.losses import BinaryCrossEntropy, CategoricalCrossEntropy

logits = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(2, 6)),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@given(logits)
def test_softmax_rows_sum_to_one(z):
    a = Softmax().forward(z, np.empty_like(z))
    assert np.all(np.isfinite(a)) and np.all(a >= 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)


moderate_logits = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(2, 6)),
    elements=st.floats(-60, 60),  # the range where softmax skips the row-max shift
)


@given(st.one_of(logits, moderate_logits), st.data())
def test_softmax_and_cce_equal_the_row_max_shifted_textbook_forms(z, data):
    classes = data.draw(arrays(np.int64, z.shape[0], elements=st.integers(0, z.shape[1] - 1)))
    y = np.eye(z.shape[1])[classes]
    z_max = z.max(axis=1, keepdims=True)
    e = np.exp(z - z_max)
    expected_a = e / e.sum(axis=1, keepdims=True)
    expected_loss = np.mean(z_max[:, 0] + np.log(e.sum(axis=1)) - z[np.arange(len(z)), classes])

    a = Softmax().forward(z, np.empty_like(z))
    np.testing.assert_allclose(a, expected_a, rtol=1e-12, atol=1e-300)
    loss = CategoricalCrossEntropy().value(y, z, a)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12, atol=1e-12)


@given(logits, st.data())
def test_cross_entropies_stay_finite_for_huge_logits(z, data):
    classes = data.draw(arrays(np.int64, z.shape[0], elements=st.integers(0, z.shape[1] - 1)))
    y = np.eye(z.shape[1])[classes]
    a = Softmax().forward(z, np.empty_like(z))
    cce = CategoricalCrossEntropy()
    value = cce.value(y, z, a)
    assert np.isfinite(value) and value >= 0
    assert np.all(np.isfinite(cce.output_gradient(y, z, a, Softmax())))

    zb = z[:, :1]
    yb = (classes % 2).reshape(-1, 1).astype(float)
    ab = Sigmoid().forward(zb, np.empty_like(zb))
    bce = BinaryCrossEntropy()
    assert np.isfinite(bce.value(yb, zb, ab)) and bce.value(yb, zb, ab) >= 0
    assert np.all(np.isfinite(bce.output_gradient(yb, zb, ab, Sigmoid())))


@given(arrays(np.float64, st.integers(1, 16), elements=st.floats(-10, 10)), st.data())
def test_binary_crossentropy_is_the_textbook_formula(z, data):
    """The stable form from the logits equals -mean(y log a + (1 - y) log(1 - a))."""
    y = data.draw(arrays(np.float64, z.shape, elements=st.sampled_from([0.0, 1.0])))
    z, y = z.reshape(-1, 1), y.reshape(-1, 1)
    a = 1.0 / (1.0 + np.exp(-z))
    textbook = -np.mean(y * np.log(a) + (1.0 - y) * np.log1p(-a))
    value = BinaryCrossEntropy().value(y, z, Sigmoid().forward(z, np.empty_like(z)))
    np.testing.assert_allclose(value, textbook, rtol=1e-9, atol=1e-12)


small_problems = st.tuples(
    st.integers(0, 2**16),                                    # data seed
    st.lists(st.integers(1, 6), min_size=0, max_size=2),      # hidden layers
    st.sampled_from(["relu", "tanh", "rrelu", "swish", "elu", "step"]),
    st.sampled_from(["binary", "multiclass", "regression"]),
    st.sampled_from(["float32", "float64"]),
)


def _problem(seed, task):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(12, 3))
    y = {"binary": np.arange(12) % 2, "multiclass": np.arange(12) % 3,
         "regression": rng.normal(size=12)}[task]
    return X, y


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems)
def test_save_load_round_trips_exactly(problem):
    seed, hidden, activation, task, dtype = problem
    X, y = _problem(seed, task)
    model = ann.MLP(hidden_layers=hidden, activation=activation, epochs=2, batch_size=4,
                    dtype=dtype, seed=seed)
    model.fit(X, y)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "m")
        loaded = ann.MLP.load(Path(folder) / "m")
    np.testing.assert_array_equal(loaded.network_.theta, model.network_.theta)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems, st.floats(0.0, 0.5))
def test_same_seed_same_history(problem, dropout):
    seed, hidden, activation, task, dtype = problem
    X, y = _problem(seed, task)
    histories = [
        ann.MLP(hidden_layers=hidden, activation=activation, epochs=3, batch_size=5,
                dropout=dropout, dtype=dtype, seed=seed).fit(X, y, validation_data=(X, y)).history
        for _ in range(2)
    ]
    assert histories[0] == histories[1]
