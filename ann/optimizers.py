"""Gradient-descent update rules on one flat parameter vector.

The network keeps all its weights and biases in a single contiguous array ``theta``
(the layers' ``W`` and ``b`` are views into it) and all gradients in ``g``, so each rule
is a handful of whole-vector operations written in place, with ``t`` the step count:

=============  ===============================================================
``sgd``        ``theta -= lr * g``
``momentum``   ``v = mu v - lr g;  theta += v``
``nesterov``   ``v = mu v - lr g;  theta += mu v - lr g``  (Sutskever et al. 2013)
``rmsprop``    ``s = rho s + (1 - rho) g^2;  theta -= lr g / (sqrt(s) + eps)``
``adam``       ``m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;``
               ``theta -= lr * m_hat / (sqrt(v_hat) + eps)`` with
               ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``
               (Kingma & Ba 2015, Algorithm 1; :class:`Adam` says how it is
               computed in ten passes)
``adamw``      ``adam`` with decoupled weight decay (Loshchilov & Hutter 2019,
               Algorithm 2): ``theta -= lr (m_hat / (sqrt(v_hat) + eps) + wd theta)``
=============  ===============================================================

Decoupled weight decay (``weight_decay``, ``wd`` above; read by ``adamw``, ``sgd``,
``momentum`` and ``nesterov``) shrinks the weights directly, ``theta -= lr * wd * theta``
with the ``theta`` of before the step, instead of adding ``wd * theta`` to the gradient
(which is ``l2``, and which Adam would rescale per parameter). For momentum this is
SGDW (Loshchilov & Hutter 2019, Algorithm 1): ``v = mu v - lr g;  theta += v - lr wd theta``.
The decay is scaled by the (scheduled) learning rate ``lr``, as in PyTorch's ``AdamW``
and optax's ``adamw`` (the paper's ``eta_t`` is ``lr`` and its ``alpha`` is 1). Like
``l2`` it applies to the weights, not the biases.

``step`` may overwrite ``g`` (it is recomputed for every batch).
"""

from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """Base class: holds the learning rate and the step count ``t``.

    ``n_weights``: the leading entries of ``theta`` that are weights (the rest are
    biases), the part decoupled weight decay shrinks; ``None``: all of ``theta``.
    """

    name = "optimizer"

    def __init__(self, theta: np.ndarray, lr: float, weight_decay: float = 0.0,
                 n_weights: int | None = None) -> None:
        self.theta = theta
        self.lr = lr
        self.t = 0
        self.scratch = np.empty_like(theta)
        self.weight_decay = weight_decay
        self.weights = theta[:n_weights] if n_weights is not None else theta

    def step(self, g: np.ndarray) -> None:
        raise NotImplementedError

    def decay_weights(self) -> None:
        """``theta -= lr * wd * theta`` on the weights: decoupled weight decay."""
        self.weights *= 1.0 - self.lr * self.weight_decay


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, theta, lr, weight_decay=0.0, n_weights=None, **_):
        super().__init__(theta, lr, weight_decay, n_weights)

    def step(self, g):
        self.t += 1
        if self.weight_decay:
            self.decay_weights()
        g *= self.lr
        self.theta -= g


class Momentum(Optimizer):
    name = "momentum"

    def __init__(self, theta, lr, momentum=0.9, weight_decay=0.0, n_weights=None, **_):
        super().__init__(theta, lr, weight_decay, n_weights)
        self.mu = momentum
        self.v = np.zeros_like(theta)

    def step(self, g):
        self.t += 1
        if self.weight_decay:  # before the update: it uses the theta of before the step
            self.decay_weights()
        g *= self.lr
        self.v *= self.mu
        self.v -= g
        self.theta += self.v


class Nesterov(Momentum):
    name = "nesterov"

    def step(self, g):
        self.t += 1
        if self.weight_decay:
            self.decay_weights()
        g *= self.lr  # g is now lr * g
        self.v *= self.mu
        self.v -= g
        np.multiply(self.v, self.mu, out=self.scratch)
        self.scratch -= g
        self.theta += self.scratch


class RMSprop(Optimizer):
    name = "rmsprop"

    def __init__(self, theta, lr, rho=0.9, eps=1e-8, **_):
        super().__init__(theta, lr)
        self.rho = rho
        self.eps = eps
        self.s = np.zeros_like(theta)

    def step(self, g):
        self.t += 1
        self.s *= self.rho
        np.multiply(g, g, out=self.scratch)
        self.scratch *= 1.0 - self.rho
        self.s += self.scratch
        np.sqrt(self.s, out=self.scratch)
        self.scratch += self.eps
        g /= self.scratch
        g *= self.lr
        self.theta -= g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), in ten passes over the parameters.

    The moments are kept without their ``(1 - beta)`` factors, ``M = m / (1 - b1)`` and
    ``V = v / (1 - b2)``, which turns the moving averages into ``M = b1 M + g`` and
    ``V = b2 V + g^2`` (two passes fewer). The constant factors move into two scalars:
    ``m_hat = (1 - b1) M / (1 - b1^t)`` and ``sqrt(v_hat) = c sqrt(V)`` with
    ``c = sqrt((1 - b2) / (1 - b2^t))``, so the published update
    ``theta -= lr * m_hat / (sqrt(v_hat) + eps)`` is, exactly,
    ``theta -= M / ((sqrt(V) + eps / c) * (1 - b1^t) c / (lr (1 - b1)))``.
    """

    name = "adam"

    def __init__(self, theta, lr, beta1=0.9, beta2=0.999, eps=1e-8, **_):
        super().__init__(theta, lr)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.M = np.zeros_like(theta)
        self.V = np.zeros_like(theta)

    def step(self, g):
        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.t
        # M = b1 M + g
        self.M *= b1
        self.M += g
        # V = b2 V + g^2
        self.V *= b2
        g *= g
        self.V += g
        # theta -= lr * m_hat / (sqrt(v_hat) + eps)
        c = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        denominator = np.sqrt(self.V, out=self.scratch)
        denominator += self.eps / c
        denominator *= (1.0 - b1**t) * c / (self.lr * (1.0 - b1))
        self.theta -= np.divide(self.M, denominator, out=denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2).

    ``theta -= lr * wd * theta`` (the weights of before the step), then Adam's step:
    together ``theta -= lr (m_hat / (sqrt(v_hat) + eps) + wd theta)``.
    """

    name = "adamw"

    def __init__(self, theta, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 n_weights=None, **_):
        super().__init__(theta, lr, beta1, beta2, eps)
        self.weight_decay = weight_decay
        self.weights = theta[:n_weights] if n_weights is not None else theta

    def step(self, g):
        if self.weight_decay:
            self.decay_weights()
        super().step(g)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, RMSprop, Adam, AdamW)
}


def make_optimizer(name: str, theta: np.ndarray, lr: float, **settings) -> Optimizer:
    """An optimizer updating ``theta`` in place; ``settings`` beyond its own are ignored."""
    return OPTIMIZERS[name](theta, lr, **settings)
