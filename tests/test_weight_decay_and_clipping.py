"""Decoupled weight decay (AdamW, SGDW) and gradient clipping against their published formulas."""

from __future__ import annotations

import numpy as np
import pytest

import ann
from ann.data import load_dataset
from ann.training import clip_by_global_norm
from ann.optimizers import SGD, AdamW, Momentum, Nesterov

GRADIENTS = [np.array([0.1, -0.2, 3.0]), np.array([-0.3, 0.0, 1.0]), np.array([2.0, 0.5, -0.1])]


def test_adamw_matches_loshchilov_and_hutter_algorithm_2():
    """theta_t = theta_{t-1} - eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda theta_{t-1}),
    with eta_t the learning rate and alpha = 1 (PyTorch's AdamW); biases (the last entry) not decayed."""
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    theta = np.array([0.5, -1.5, 2.0])
    adamw = AdamW(theta, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd, n_weights=2)
    expected, m, v = theta.copy(), np.zeros(3), np.zeros(3)
    decayed = np.array([1.0, 1.0, 0.0])
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        expected = expected - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * decayed * expected)
        adamw.step(g.copy())
        np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-15)


def test_adamw_without_decay_is_adam():
    from ann.optimizers import Adam

    a, b = np.array([0.5, -1.5, 2.0]), np.array([0.5, -1.5, 2.0])
    adam, adamw = Adam(a, lr=0.01), AdamW(b, lr=0.01, weight_decay=0.0)
    for g in GRADIENTS:
        adam.step(g.copy())
        adamw.step(g.copy())
    assert np.array_equal(a, b)


def test_momentum_with_decay_matches_sgdw_algorithm_1():
    """SGDW: m_t = mu m_{t-1} + eta_t g_t;  theta_t = theta_{t-1} - m_t - eta_t lambda theta_{t-1}."""
    lr, mu, wd = 0.1, 0.9, 0.05
    theta = np.array([0.5, -1.5, 2.0])
    opt = Momentum(theta, lr=lr, momentum=mu, weight_decay=wd)
    expected, m = theta.copy(), np.zeros(3)
    for g in GRADIENTS:
        m = mu * m + lr * g
        expected = expected - m - lr * wd * expected
        opt.step(g.copy())
        np.testing.assert_allclose(theta, expected, rtol=1e-12)


def test_nesterov_and_sgd_with_decay():
    lr, mu, wd = 0.1, 0.9, 0.05
    theta, plain = np.array([0.5, -1.5, 2.0]), np.array([0.5, -1.5, 2.0])
    nesterov, sgd = Nesterov(theta, lr=lr, momentum=mu, weight_decay=wd), SGD(plain, lr=lr, weight_decay=wd)
    expected_n, expected_s, v = theta.copy(), plain.copy(), np.zeros(3)
    for g in GRADIENTS:
        v = mu * v - lr * g
        expected_n = expected_n + mu * v - lr * g - lr * wd * expected_n
        expected_s = expected_s - lr * (g + wd * expected_s)
        nesterov.step(g.copy())
        sgd.step(g.copy())
        np.testing.assert_allclose(theta, expected_n, rtol=1e-12)
        np.testing.assert_allclose(plain, expected_s, rtol=1e-12)


def test_decay_in_fit_shrinks_the_weights_and_not_the_biases():
    data = load_dataset("moons", n_samples=200, seed=0)
    kwargs = dict(hidden_layers=[16], optimizer="adamw", lr=0.01, epochs=30, seed=0, dtype="float64")
    free = ann.MLP(**kwargs, weight_decay=0.0)
    decayed = ann.MLP(**kwargs, weight_decay=0.5)
    free.fit(data.X, data.y)
    decayed.fit(data.X, data.y)
    norm = lambda model: sum(float(np.sum(W**2)) for W in model.network_.W)
    assert norm(decayed) < 0.8 * norm(free)


@pytest.mark.parametrize("norm_scale", [0.3, 1.0, 5.0])
def test_clip_by_global_norm_is_the_tensorflow_formula(norm_scale):
    """tf.clip_by_global_norm: t * clip_norm / max(global_norm, clip_norm)."""
    g = np.random.default_rng(0).normal(size=50)
    g *= norm_scale / np.linalg.norm(g)
    clip = 1.0
    expected = g * clip / max(np.linalg.norm(g), clip)
    clip_by_global_norm(g, clip)
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    assert np.linalg.norm(g) <= clip + 1e-12


def test_fit_clips_the_whole_gradient_before_the_step():
    """One batch-GD step of SGD equals theta - lr * clip(grad), grad over every weight and bias."""
    data = load_dataset("moons", n_samples=64, seed=0)
    kwargs = dict(hidden_layers=[8], optimizer="sgd", lr=0.5, seed=0, dtype="float64", l2=0.01)
    reference = ann.MLP(**kwargs)
    _, grads = reference.loss_and_gradients(data.X, data.y)
    before = [p.copy() for p in reference.parameters()]
    full = np.concatenate([g.ravel() for g in grads])
    clip = 0.25 * np.linalg.norm(full)
    model = ann.MLP(**kwargs, clip_norm=clip, epochs=1, batch_size=64)
    model.fit(data.X, data.y)
    scale = clip / np.linalg.norm(full)
    for after, start, grad in zip(model.parameters(), before, grads):
        np.testing.assert_allclose(after, start - 0.5 * scale * grad, rtol=1e-10, atol=1e-12)


def test_clipping_tames_a_rate_that_otherwise_diverges():
    data = load_dataset("regression", n_samples=200, seed=0)
    kwargs = dict(hidden_layers=[32], optimizer="sgd", lr=0.3, epochs=20, seed=0, standardize=False)
    with pytest.raises(ann.NonFiniteLossError):
        ann.MLP(**kwargs).fit(data.X * 10, data.y)
    history = ann.MLP(**kwargs, clip_norm=1.0).fit(data.X * 10, data.y)
    assert np.isfinite(history.history["train_loss"]).all()
