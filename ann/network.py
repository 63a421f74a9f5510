"""A feed-forward network of dense layers: forward propagation and backpropagation.

For layer ``l`` with input ``a[l-1]`` (``a[0] = X``), weights ``W[l]`` (fan_in x fan_out)
and bias ``b[l]``::

    z[l] = a[l-1] @ W[l] + b[l]
    a[l] = f_l(z[l])

Backpropagation applies the chain rule from the output back, with ``delta[l] = dL/dz[l]``::

    dL/dW[l]    = a[l-1].T @ delta[l]
    dL/db[l]    = sum over the batch of delta[l]  (= 1.T @ delta[l], one BLAS call)
    dL/da[l-1]  = delta[l] @ W[l].T
    delta[l-1]  = dL/da[l-1] * f'_{l-1}(z[l-1])

All weights and biases live in one flat vector (:attr:`Network.theta`, weights of every
layer first, then every bias) and all gradients in another (:attr:`Network.grad`); the
per-layer ``W``, ``b``, ``dW``, ``db`` are views into them. Optimizers and L2 decay then act
on whole vectors at once. Activations are kept in buffers allocated once per batch size,
so a training step allocates almost nothing.
"""

from __future__ import annotations

import numpy as np

from ann.activations import Activation, Linear


#: Activations whose usual initialisation is He; the rest get Xavier/Glorot.
RELU_FAMILY = frozenset({"relu", "leaky_relu", "rrelu", "elu", "gelu", "swish"})


def default_init(activation: str) -> str:
    """``he`` for the ReLU family (He et al. 2015), ``xavier`` for the rest (Glorot & Bengio 2010)."""
    return "he" if activation in RELU_FAMILY else "xavier"


def initial_weights(
    scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator, scale: float = 0.01
) -> np.ndarray:
    """Initial weights for one layer; biases always start at zero.

    * ``small``: ``N(0, 1) * scale`` -- close to 0 but not 0, the textbook start;
    * ``xavier`` (Glorot uniform): ``U(-r, r)`` with ``r = sqrt(6 / (fan_in + fan_out))``;
    * ``he`` (He normal): ``N(0, 2 / fan_in)``.
    """
    if scheme == "small":
        return rng.standard_normal((fan_in, fan_out)) * scale
    if scheme == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))
    if scheme == "he":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    raise ValueError(f"unknown initialisation {scheme!r}")


class _Workspace:
    """Buffers for one batch size: pre-activations, activations, gradients, dropout masks."""

    def __init__(self, n: int, sizes: list[int], activations: list[Activation], dtype) -> None:
        outs = sizes[1:]
        self.z = [np.empty((n, width), dtype) for width in outs]
        # A linear layer's activation is its pre-activation: share the buffer.
        self.a = [
            z if isinstance(f, Linear) else np.empty_like(z) for z, f in zip(self.z, activations)
        ]
        self.grad_a = [np.empty((n, width), dtype) for width in outs[:-1]]
        self.ones = np.ones(n, dtype)  # db = ones @ delta, the batch sum as one BLAS call
        self.dropped: list[np.ndarray | None] = [None] * (len(outs) - 1)
        self.masks: list[np.ndarray | None] = [None] * (len(outs) - 1)


class Network:
    """Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with one activation each."""

    def __init__(
        self,
        sizes: list[int],
        activations: list[Activation],
        *,
        dtype=np.float32,
        init: str = "xavier",
        init_scale: float = 0.01,
        rng: np.random.Generator,
        dropout: float = 0.0,
        dropout_rng: np.random.Generator | None = None,
    ) -> None:
        if len(activations) != len(sizes) - 1:
            raise ValueError("one activation per layer")
        self.sizes = list(sizes)
        self.activations = activations
        self.dtype = np.dtype(dtype)
        self.dropout = dropout
        self.dropout_rng = dropout_rng if dropout_rng is not None else np.random.default_rng(0)

        shapes = list(zip(sizes[:-1], sizes[1:]))
        self.n_weights = sum(i * o for i, o in shapes)
        self.n_parameters = self.n_weights + sum(sizes[1:])
        self.theta = np.zeros(self.n_parameters, self.dtype)
        self.grad = np.zeros(self.n_parameters, self.dtype)
        self.n_layers = len(shapes)
        self.W, self.b = self._views(self.theta, shapes)
        self.dW, self.db = self._views(self.grad, shapes)
        for W, (fan_in, fan_out) in zip(self.W, shapes):
            W[...] = initial_weights(init, fan_in, fan_out, rng, init_scale)
        self._workspaces: dict[int, _Workspace] = {}

    def _views(self, flat: np.ndarray, shapes):
        weights, biases = [], []
        w_offset, b_offset = 0, self.n_weights
        for fan_in, fan_out in shapes:
            weights.append(flat[w_offset : w_offset + fan_in * fan_out].reshape(fan_in, fan_out))
            biases.append(flat[b_offset : b_offset + fan_out])
            w_offset += fan_in * fan_out
            b_offset += fan_out
        return weights, biases

    def workspace(self, n: int) -> _Workspace:
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) > 4:  # evaluation batches of odd sizes: keep it bounded
                self._workspaces.clear()
            ws = self._workspaces[n] = _Workspace(n, self.sizes, self.activations, self.dtype)
        return ws

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Forward propagation; returns the output activation (a buffer, valid until the next call).

        ``training=True`` applies dropout to the hidden layers and draws rrelu slopes.
        """
        ws = self.workspace(X.shape[0])
        dropout = training and self.dropout > 0.0
        a = X
        for l, (W, b, z, out, f) in enumerate(zip(self.W, self.b, ws.z, ws.a, self.activations)):
            np.matmul(a, W, out=z)
            z += b
            a = f.forward(z, out, training)
            if dropout and l < self.n_layers - 1:
                a = self._drop(ws, l, a)
        self.z_out = z
        self._last = (ws, X, dropout)
        return a

    def _drop(self, ws: _Workspace, l: int, a: np.ndarray) -> np.ndarray:
        """Inverted dropout: zero each unit with probability p and scale the rest by 1/(1-p)."""
        keep = 1.0 - self.dropout
        if ws.masks[l] is None:
            ws.masks[l] = np.empty_like(a)
            ws.dropped[l] = np.empty_like(a)
        mask = ws.masks[l]
        self.dropout_rng.random(dtype=mask.dtype, out=mask)
        np.less(mask, keep, out=mask)
        mask *= 1.0 / keep
        return np.multiply(a, mask, out=ws.dropped[l])

    def backward(self, delta: np.ndarray) -> None:
        """Backpropagate ``delta = dL/dz`` of the output layer; fills :attr:`grad`."""
        ws, X, dropout = self._last
        for l in range(self.n_layers - 1, -1, -1):
            a_prev = X if l == 0 else (ws.dropped[l - 1] if dropout else ws.a[l - 1])
            np.matmul(a_prev.T, delta, out=self.dW[l])
            np.matmul(ws.ones, delta, out=self.db[l])
            if l == 0:
                break
            grad_a = ws.grad_a[l - 1]
            np.matmul(delta, self.W[l].T, out=grad_a)
            if dropout:
                grad_a *= ws.masks[l - 1]
            delta = self.activations[l - 1].backward(ws.z[l - 1], ws.a[l - 1], grad_a)

    def output_pre_activation(self) -> np.ndarray:
        """``z`` of the output layer from the last forward pass (also :attr:`z_out`)."""
        return self.z_out
