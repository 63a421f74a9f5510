"""The seeds' worked numbers, one SGD step by hand, and one Adam step by the published formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ann
from ann.activations import Linear, Sigmoid
from ann.network import Network
from ann.optimizers import SGD, Adam


def seeds_network() -> Network:
    """2 inputs -> 3 sigmoid hidden units -> 1 linear output, with the seeds' weights."""
    net = Network([2, 3, 1], [Sigmoid(), Linear()], dtype=np.float64, rng=np.random.default_rng(0))
    # Column j holds the weights into hidden unit j: (0.8, 0.2), (0.4, 0.9), (0.3, 0.5).
    net.W[0][...] = np.array([[0.8, 0.4, 0.3], [0.2, 0.9, 0.5]])
    net.W[1][...] = np.array([[0.3], [0.5], [0.9]])
    return net


def test_forward_pass_of_the_seeds_example():
    net = seeds_network()
    out = net.forward(np.array([[1.0, 1.0]]))
    hidden = net.workspace(1).a[0][0]
    # The seeds quote 0.731, 0.785, 0.689 (truncated to 3 digits) and 1.235.
    np.testing.assert_allclose(hidden, [0.731, 0.785, 0.689], atol=1.1e-3)
    np.testing.assert_allclose(hidden, [1 / (1 + math.exp(-s)) for s in (1.0, 1.3, 0.8)])
    assert net.output_pre_activation()[0, 0] == pytest.approx(1.235, abs=2.5e-3)
    assert out[0, 0] == pytest.approx(0.3 * hidden[0] + 0.5 * hidden[1] + 0.9 * hidden[2])


def test_gradient_descent_on_a_parabola():
    """f(x) = x^2 - x + 1, f'(x) = 2x - 1, from x = 9 with rate 0.1: 7.3, then 5.94."""
    x = np.array([9.0])
    sgd = SGD(x, lr=0.1)
    visited = []
    for _ in range(2):
        sgd.step(2 * x - 1)
        visited.append(float(x[0]))
    assert visited == pytest.approx([7.3, 5.94], abs=1e-12)


def test_one_sgd_step_by_hand():
    """A 2-1 linear neuron, half squared error, one sample: w -= lr * (a - y) * x."""
    model = ann.MLP(hidden_layers=[], task="regression", loss="half_squared_error",
                    optimizer="sgd", lr=0.5, batch_size=1, epochs=1, standardize=False,
                    shuffle=False, dtype="float64")
    X, y = np.array([[1.0, 2.0]]), np.array([3.0])
    model.loss_and_gradients(X, y)  # sets the network up
    W, b = model.parameters()
    W[...] = [[0.1], [0.2]]
    b[...] = [0.3]
    # a = 0.1*1 + 0.2*2 + 0.3 = 0.8; dL/da = a - y = -2.2
    loss, (dW, db) = model.loss_and_gradients(X, y)
    assert loss == pytest.approx(0.5 * 2.2**2)
    np.testing.assert_allclose(dW, [[-2.2], [-4.4]])
    np.testing.assert_allclose(db, [-2.2])
    net = model.network_
    SGD(net.theta, lr=0.5).step(net.grad)
    np.testing.assert_allclose(W, [[0.1 + 0.5 * 2.2], [0.2 + 0.5 * 4.4]])
    np.testing.assert_allclose(b, [0.3 + 0.5 * 2.2])


def test_adam_matches_the_published_algorithm():
    """Kingma & Ba (2015), Algorithm 1, three steps with changing gradients."""
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    theta = np.array([0.5, -1.5, 2.0])
    adam = Adam(theta, lr=lr, beta1=b1, beta2=b2, eps=eps)
    expected = theta.copy()
    m = np.zeros(3)
    v = np.zeros(3)
    for t, g in enumerate([np.array([0.1, -0.2, 3.0]), np.array([-0.3, 0.0, 1.0]),
                           np.array([2.0, 0.5, -0.1])], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        adam.step(g.copy())
        np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-15)
    # The first step moves every parameter by almost exactly lr (the bias correction).
    assert adam.t == 3


def test_perceptron_with_step_output_learns_and_and_or():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    for y in (np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])):
        model = ann.MLP(hidden_layers=[], task="binary", output_activation="step",
                        loss="half_squared_error", optimizer="sgd", lr=0.1, batch_size=1,
                        epochs=50, init="small", standardize=False, seed=0)
        model.fit(X, y)
        np.testing.assert_array_equal(model.predict(X), y)
