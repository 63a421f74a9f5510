"""Loss functions: the value, and the gradient with respect to the output pre-activation.

Notation: ``y`` targets, ``z`` the output layer's pre-activation (logits), ``a = f(z)`` the
network's output, ``n`` samples, ``k`` outputs. Every loss is a mean over the batch:

=========================  =====================================================
``mse``                    ``mean((a - y)^2)`` over samples and outputs
``half_squared_error``     ``mean(1/2 (y - a)^2)`` (the classic textbook cost)
``mae``                    ``mean(|a - y|)``; gradient ``sign(a - y)``, 0 at a tie
``binary_crossentropy``    ``mean(-y log a - (1 - y) log(1 - a))`` with a sigmoid output
``categorical_crossentropy`` ``mean_i(-sum_c y_ic log a_ic)`` with a softmax output
=========================  =====================================================

The two cross-entropies are paired with their canonical output (sigmoid, softmax) and
computed from the logits, so they stay finite for any logit:

* BCE: ``max(z, 0) - z y + log(1 + e^-|z|)``, and ``dL/dz = (a - y) / (n k)``;
* CCE: ``logsumexp(z) - sum_c y_c z_c``, and ``dL/dz = (a - y) / n``.

The other losses return ``dL/da`` and let the output activation apply ``f'(z)``.

``constant_value(y)`` is the loss of the best constant prediction (the same output for every
sample), the reference a fit is judged against: ``mean((y - mean y)^2)`` for ``mse``, half
of it for ``half_squared_error``, ``mean(|y - median y|)`` for ``mae``, the entropy of the
class shares ``-sum_c p_c log p_c`` for the cross-entropies.
"""

from __future__ import annotations

import numpy as np

from ann.activations import Activation, Sigmoid, Softmax, logit_shift, row_sums


def _mean(x: np.ndarray) -> float:
    """``mean(x)`` as a float, without numpy's Python-level wrappers (the hot path)."""
    return float(np.add.reduce(x, axis=None)) / x.size


class Loss:
    """Base class. ``value`` is a float; ``output_gradient`` returns ``dL/dz`` (new array)."""

    name = "loss"

    def value(self, y: np.ndarray, z: np.ndarray, a: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, y: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``dL/da`` for the batch mean."""
        raise NotImplementedError

    def output_gradient(
        self, y: np.ndarray, z: np.ndarray, a: np.ndarray, activation: Activation
    ) -> np.ndarray:
        """``dL/dz`` by the chain rule through the output activation."""
        return activation.backward(z, a, self.gradient(y, a))

    def constant_value(self, y: np.ndarray) -> float:
        """The loss of the best constant prediction for targets ``y`` (n x k)."""
        raise NotImplementedError


def _entropy(p: np.ndarray) -> np.ndarray:
    """``-p log p`` elementwise, 0 where ``p = 0``."""
    p = np.asarray(p, dtype=np.float64)
    return -p * np.log(np.where(p > 0, p, 1.0))


class MeanSquaredError(Loss):
    name = "mse"

    def value(self, y, z, a):
        diff = a - y
        return _mean(diff * diff)

    def gradient(self, y, a):
        return (a - y) * (2.0 / a.size)

    def constant_value(self, y):
        y = np.asarray(y, dtype=np.float64)
        return float(np.mean((y - y.mean(axis=0)) ** 2))


class HalfSquaredError(Loss):
    name = "half_squared_error"

    def value(self, y, z, a):
        diff = a - y
        return 0.5 * _mean(diff * diff)

    def gradient(self, y, a):
        return (a - y) * (1.0 / a.size)

    def constant_value(self, y):
        y = np.asarray(y, dtype=np.float64)
        return 0.5 * float(np.mean((y - y.mean(axis=0)) ** 2))


class MeanAbsoluteError(Loss):
    name = "mae"

    def value(self, y, z, a):
        return _mean(np.abs(a - y))

    def gradient(self, y, a):
        return np.sign(a - y) * (1.0 / a.size)

    def constant_value(self, y):
        y = np.asarray(y, dtype=np.float64)
        return float(np.mean(np.abs(y - np.median(y, axis=0))))


class BinaryCrossEntropy(Loss):
    """BCE from the logits of a sigmoid output."""

    name = "binary_crossentropy"

    def value(self, y, z, a):
        # -y log s(z) - (1-y) log(1-s(z)) = log(1 + e^z) - z y, with log(e^0 + e^z) computed
        # stably by logaddexp
        return _mean(np.logaddexp(0.0, z) - z * y)

    def output_gradient(self, y, z, a, activation):
        if not isinstance(activation, Sigmoid):
            raise ValueError("binary_crossentropy needs a sigmoid output")
        return (a - y) * (1.0 / a.size)

    def constant_value(self, y):
        p = np.asarray(y, dtype=np.float64).mean(axis=0)  # the share of 1s per output
        return float(np.mean(_entropy(p) + _entropy(1.0 - p)))


class CategoricalCrossEntropy(Loss):
    """CCE from the logits of a softmax output (log-sum-exp)."""

    name = "categorical_crossentropy"

    def value(self, y, z, a):
        # mean_i(log sum_j e^z_ij - sum_j y_ij z_ij), the log-sum-exp shifted by c when needed
        c = logit_shift(z)
        log_sum_exp = np.log(row_sums(np.exp(z - c)))
        if isinstance(c, np.ndarray):  # the row maxima
            log_sum_exp += c[:, 0]
        return _mean(log_sum_exp - row_sums(y * z))

    def output_gradient(self, y, z, a, activation):
        if not isinstance(activation, Softmax):
            raise ValueError("categorical_crossentropy needs a softmax output")
        return (a - y) * (1.0 / a.shape[0])

    def constant_value(self, y):
        p = np.asarray(y, dtype=np.float64).mean(axis=0)  # the class shares
        return float(_entropy(p).sum())


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        MeanSquaredError,
        HalfSquaredError,
        MeanAbsoluteError,
        BinaryCrossEntropy,
        CategoricalCrossEntropy,
    )
}


def make_loss(name: str) -> Loss:
    return LOSSES[name]()
