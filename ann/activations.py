"""Activation functions and their derivatives.

Each activation is a small object with two methods that work in place on preallocated
buffers, so the training loop allocates nothing per step:

* ``forward(z, out, training)`` writes ``a = f(z)`` into ``out`` and returns it;
* ``backward(z, a, grad)`` turns ``grad = dL/da`` into ``dL/dz = dL/da * f'(z)`` in place
  and returns it (softmax applies its Jacobian, since its outputs are coupled).

Two activations are not differentiable in the usual sense, and their gradients are
documented choices:

* ``step`` (Heaviside, ``a = 1 if z >= 0 else 0``) is trained with the *straight-through
  estimator*: the backward pass treats it as the identity, ``dL/dz = dL/da``. With a step
  output and half squared error this is exactly Rosenblatt's perceptron rule
  ``w += lr * (y - a) * x``, so a perceptron learns AND and OR.
* ``rrelu`` (randomized leaky ReLU) draws a slope ``U(lower, upper)`` for every negative
  input on every training forward pass and uses it in the backward pass of that step; at
  inference (``training=False``) it is a leaky ReLU with the mean slope
  ``(lower + upper) / 2``.

Layers own their activation objects (:func:`make_activation` builds a fresh one), because
``rrelu`` remembers the slopes it drew between the forward and the backward pass.
"""

from __future__ import annotations

import math

import numpy as np


class Activation:
    """Base class: ``a = f(z)`` and ``dL/dz = dL/da * f'(z)``."""

    name = "activation"

    def forward(self, z: np.ndarray, out: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Linear(Activation):
    """``f(z) = z``."""

    name = "linear"

    def forward(self, z, out, training=False):
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(self, z, a, grad):
        return grad


class Step(Activation):
    """Heaviside step ``f(z) = 1 if z >= 0 else 0``; straight-through gradient (identity)."""

    name = "step"

    def forward(self, z, out, training=False):
        return np.heaviside(z, 1.0, out=out)

    def backward(self, z, a, grad):
        return grad  # straight-through estimator, see the module docstring


class Sigmoid(Activation):
    """``f(z) = 1 / (1 + e^-z)``, computed as ``(1 + tanh(z/2)) / 2`` (no overflow)."""

    name = "sigmoid"

    def forward(self, z, out, training=False):
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def backward(self, z, a, grad):
        grad *= a * (1.0 - a)  # f'(z) = f(z) (1 - f(z))
        return grad


class Tanh(Activation):
    """``f(z) = tanh(z)``."""

    name = "tanh"

    def forward(self, z, out, training=False):
        return np.tanh(z, out=out)

    def backward(self, z, a, grad):
        grad *= 1.0 - a * a  # f'(z) = 1 - tanh(z)^2
        return grad


class ReLU(Activation):
    """``f(z) = max(z, 0)``; ``f'(z) = 1 if z > 0 else 0``."""

    name = "relu"

    def __init__(self) -> None:
        self._zeros = np.zeros((0, 0))

    def forward(self, z, out, training=False):
        # Against an array of zeros: NumPy's maximum with a scalar 0 is 3x slower.
        return np.maximum(z, self._zeros_like(z), out=out)

    def _zeros_like(self, z):
        n, width = z.shape
        if self._zeros.shape[0] < n or self._zeros.shape[1] != width or self._zeros.dtype != z.dtype:
            self._zeros = np.zeros_like(z)
        return self._zeros[:n]

    def backward(self, z, a, grad):
        # Multiply by the mask: boolean-index assignment (grad[a <= 0] = 0) is far slower.
        grad *= a > 0.0
        return grad


class LeakyReLU(Activation):
    """``f(z) = z if z > 0 else slope * z`` with ``0 < slope < 1``."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = slope

    def forward(self, z, out, training=False):
        np.multiply(z, self.slope, out=out)
        return np.maximum(z, out, out=out)  # max(z, slope*z) for slope < 1

    def backward(self, z, a, grad):
        grad *= np.where(z > 0.0, 1.0, self.slope).astype(grad.dtype, copy=False)
        return grad


class RReLU(Activation):
    """Randomized leaky ReLU: slope ``~ U(lower, upper)`` in training, the mean at inference."""

    name = "rrelu"

    def __init__(self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0, rng=None) -> None:
        self.lower = lower
        self.upper = upper
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.slopes: np.ndarray | float = (lower + upper) / 2.0

    def forward(self, z, out, training=False):
        if training:
            self.slopes = self.rng.uniform(self.lower, self.upper, size=z.shape).astype(z.dtype)
        else:
            self.slopes = (self.lower + self.upper) / 2.0
        np.multiply(z, self.slopes, out=out)
        return np.maximum(z, out, out=out)  # slopes < 1, so max picks z for z > 0

    def backward(self, z, a, grad):
        grad *= np.where(z > 0.0, 1.0, self.slopes).astype(grad.dtype, copy=False)
        return grad


class Swish(Activation):
    """``f(z) = z * sigmoid(z)``; ``f'(z) = s + f(z) * (1 - s)`` with ``s = sigmoid(z)``."""

    name = "swish"

    def forward(self, z, out, training=False):
        Sigmoid.forward(self, z, out)
        out *= z
        return out

    def backward(self, z, a, grad):
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        grad *= s + a * (1.0 - s)
        return grad


class ELU(Activation):
    """``f(z) = z if z > 0 else alpha * (e^z - 1)``; ``f'(z) = 1 or f(z) + alpha``."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def forward(self, z, out, training=False):
        np.minimum(z, 0.0, out=out)
        np.expm1(out, out=out)
        out *= self.alpha
        np.copyto(out, z, where=z > 0.0)
        return out

    def backward(self, z, a, grad):
        grad *= np.where(z > 0.0, 1.0, a + self.alpha)
        return grad


_GELU_C = math.sqrt(2.0 / math.pi)


class GELU(Activation):
    """Gaussian error linear unit, tanh form: ``0.5 z (1 + tanh(c (z + 0.044715 z^3)))``."""

    name = "gelu"

    def forward(self, z, out, training=False):
        np.tanh(_GELU_C * (z + 0.044715 * z**3), out=out)
        out += 1.0
        out *= 0.5 * z
        return out

    def backward(self, z, a, grad):
        t = np.tanh(_GELU_C * (z + 0.044715 * z**3))
        grad *= 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)
        return grad


class Softmax(Activation):
    """``f(z)_i = e^(z_i - c) / sum_j e^(z_j - c)`` over each row, ``c`` from :func:`logit_shift`."""

    name = "softmax"

    def forward(self, z, out, training=False):
        np.subtract(z, logit_shift(z), out=out)
        np.exp(out, out=out)
        out /= row_sums(out)[:, None]
        return out

    def backward(self, z, a, grad):
        # Jacobian-vector product: dL/dz_i = a_i (dL/da_i - sum_j dL/da_j a_j).
        grad -= row_sums(grad * a)[:, None]
        grad *= a
        return grad


#: Logits within +-60 need no shift before exp(): e^60 ~ 1e26 neither overflows nor, at
#: e^-60, vanishes in float32, even summed over a trillion classes.
EXP_SAFE_LOGIT = 60.0


def logit_shift(z: np.ndarray) -> np.ndarray | float:
    """A per-row constant ``c`` for computing ``e^(z - c)`` without overflow.

    Softmax and log-sum-exp give the same result for any ``c``; the usual choice, each row's
    maximum, is needed only for large logits (and NumPy's maximum over short rows is one of
    its slowest reductions). So: ``0`` when every logit is within :data:`EXP_SAFE_LOGIT`,
    else the row maxima as a column. NaN logits take the second branch and stay NaN.
    """
    if -EXP_SAFE_LOGIT <= z.min() and z.max() <= EXP_SAFE_LOGIT:
        return 0.0
    return np.maximum.reduce(z, axis=1, keepdims=True)


def row_sums(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=1)`` as the matrix-vector product ``x @ 1`` (4x faster on short rows)."""
    return x @ np.ones(x.shape[1], x.dtype)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Linear, Step, Sigmoid, Tanh, ReLU, LeakyReLU, RReLU, Swish, ELU, GELU, Softmax)
}


def make_activation(
    name: str,
    *,
    leaky_slope: float = 0.01,
    rrelu_lower: float = 1.0 / 8.0,
    rrelu_upper: float = 1.0 / 3.0,
    elu_alpha: float = 1.0,
    rng: np.random.Generator | None = None,
) -> Activation:
    """A fresh activation object for one layer, configured from the estimator's arguments."""
    if name == "leaky_relu":
        return LeakyReLU(leaky_slope)
    if name == "rrelu":
        return RReLU(rrelu_lower, rrelu_upper, rng)
    if name == "elu":
        return ELU(elu_alpha)
    return ACTIVATIONS[name]()
