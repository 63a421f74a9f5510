"""Backpropagation against central differences, in float64, relative error <= 1e-6."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ann
from ann.activations import RReLU, Step
from ann.params import HIDDEN_ACTIVATIONS, LOSSES_FOR_TASK

TOLERANCE = 1e-6
H = 1e-6

# (task, loss, output activation): every loss on every task it fits, with each output it fits.
OUTPUT_CASES = [
    (task, loss, output)
    for task, losses in LOSSES_FOR_TASK.items()
    for loss in losses
    for output in {
        "regression": ["linear", "tanh", "sigmoid"],
        "binary": ["sigmoid"],
        "multiclass": ["softmax"],
    }[task]
]
# Step is checked against its documented straight-through gradient below.
SMOOTH_HIDDEN = [name for name in HIDDEN_ACTIVATIONS if name != "step"]


def make_data(task: str, n: int = 9, d: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if task == "regression":
        y = rng.normal(size=(n, 2))
    elif task == "binary":
        y = np.arange(n) % 2
    else:
        y = np.arange(n) % 3
    return X, y


def numeric_gradients(model: ann.MLP, X, y) -> list[np.ndarray]:
    grads = []
    for param in model.parameters():
        grad = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + H
            plus, _ = model.loss_and_gradients(X, y)
            param[index] = saved - H
            minus, _ = model.loss_and_gradients(X, y)
            param[index] = saved
            grad[index] = (plus - minus) / (2 * H)
        grads.append(grad)
    return grads


def relative_error(numeric: list[np.ndarray], analytic: list[np.ndarray]) -> float:
    a = np.concatenate([g.ravel() for g in numeric])
    b = np.concatenate([g.ravel() for g in analytic])
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def check(model: ann.MLP, task: str, seed: int = 0) -> float:
    X, y = make_data(task, seed=seed)
    _, analytic = model.loss_and_gradients(X, y)
    return relative_error(numeric_gradients(model, X, y), analytic)


@pytest.mark.parametrize(
    "activation, hidden_layers, case",
    [
        (activation, hidden, case)
        for activation, hidden, case in itertools.product(
            SMOOTH_HIDDEN, [[5], [5, 4]], OUTPUT_CASES
        )
    ]
    + [("relu", [], case) for case in OUTPUT_CASES],
    ids=lambda v: str(v),
)
def test_backprop_matches_central_differences(activation, hidden_layers, case):
    task, loss, output = case
    model = ann.MLP(
        hidden_layers=hidden_layers, activation=activation, task=task, loss=loss,
        output_activation=output, dtype="float64", init="xavier", seed=3,
    )
    assert check(model, task) <= TOLERANCE


@pytest.mark.parametrize("optimizer_free_l2", [0.0, 0.3])
def test_l2_penalty_gradient(optimizer_free_l2):
    model = ann.MLP(hidden_layers=[4], activation="tanh", task="multiclass", l2=optimizer_free_l2,
                    dtype="float64", seed=1)
    assert check(model, "multiclass") <= TOLERANCE


def test_step_uses_straight_through_gradient():
    """A step layer passes dL/da through unchanged: dL/dz = dL/da (documented)."""
    X, y = make_data("regression", n=6, d=3, seed=4)
    model = ann.MLP(hidden_layers=[4], activation="step", task="regression",
                    loss="half_squared_error", dtype="float64", seed=2, standardize=False)
    loss, grads = model.loss_and_gradients(X, y)
    W1, b1, W2, b2 = model.parameters()
    z1 = X @ W1 + b1
    a1 = (z1 >= 0).astype(float)
    out = a1 @ W2 + b2
    delta2 = (out - y) / out.size               # half squared error, mean over elements
    delta1 = delta2 @ W2.T                       # straight-through: f'(z) taken as 1
    expected = [X.T @ delta1, delta1.sum(0), a1.T @ delta2, delta2.sum(0)]
    assert loss == pytest.approx(0.5 * np.mean((out - y) ** 2), rel=1e-12)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_rrelu_backward_uses_the_slopes_drawn_in_training():
    act = RReLU(0.1, 0.3, np.random.default_rng(0))
    z = np.random.default_rng(1).normal(size=(50, 7))
    a = act.forward(z, np.empty_like(z), training=True)
    negative = z < 0
    slopes = a[negative] / z[negative]
    assert np.all((slopes >= 0.1) & (slopes <= 0.3)) and slopes.std() > 0.03
    grad = act.backward(z, a, np.ones_like(z))
    np.testing.assert_allclose(grad[negative], slopes)
    np.testing.assert_array_equal(grad[~negative], 1.0)
    # Inference: the mean slope, deterministic.
    a_eval = act.forward(z, np.empty_like(z), training=False)
    np.testing.assert_allclose(a_eval[negative], 0.2 * z[negative])


def test_step_forward_is_a_threshold_at_zero():
    z = np.array([[-2.0, -1e-9, 0.0, 1e-9, 3.0]])
    np.testing.assert_array_equal(Step().forward(z, np.empty_like(z)), [[0, 0, 1, 1, 1]])
