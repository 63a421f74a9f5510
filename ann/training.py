"""The fit loop: mini-batches, one epoch of gradient descent, the epochs, early stopping.

Nothing here knows the estimator: :class:`ann.MLP` hands over its network, loss,
optimizer, schedule and settings. One step is the textbook one::

    a = f(x; theta)                 forward
    L = loss(y, a)                  (+ l2/2 * sum(W^2) on the weights)
    g = dL/dtheta                   backward (+ l2 * W)
    g = g * c / max(c, ||g||)       clip to the global norm c, if any
    theta = optimizer.step(g)
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator, Sequence

import numpy as np

from ann.exceptions import NonFiniteLossError
from ann.history import History
from ann.losses import Loss
from ann.network import Network
from ann.scoring import RunningScore


class Batches:
    """One epoch's mini-batches, reshuffled on every iteration when given a generator.

    Each batch is gathered straight into a small reusable buffer (its indices sorted, which
    only changes the order of rows inside the batch), so no shuffled copy of the whole
    training set is ever made.
    """

    def __init__(self, inputs, targets, batch_size: int, rng: np.random.Generator | None):
        self.inputs, self.targets = inputs, targets
        self.n, self.batch_size, self.rng = len(inputs), batch_size, rng
        if rng is not None and batch_size < self.n:
            self.x_buffer = np.empty((batch_size, inputs.shape[1]), inputs.dtype)
            self.y_buffer = np.empty((batch_size, targets.shape[1]), targets.dtype)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.batch_size >= self.n:  # batch gradient descent: the order does not matter
            return iter(((self.inputs, self.targets),))
        return self._mini_batches()

    def _mini_batches(self):
        if self.rng is None:
            for start in range(0, self.n, self.batch_size):
                yield self.inputs[start : start + self.batch_size], self.targets[start : start + self.batch_size]
            return
        order = self.rng.permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            index = np.sort(order[start : start + self.batch_size])
            m = len(index)
            # mode="clip": the indices are valid by construction, and the default "raise"
            # makes take() gather into a temporary copy of the buffer first.
            yield (
                self.inputs.take(index, axis=0, out=self.x_buffer[:m], mode="clip"),
                self.targets.take(index, axis=0, out=self.y_buffer[:m], mode="clip"),
            )


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the weights of the epoch with the lowest monitored loss
    are put back when training ends, whether it stopped early or ran all its epochs.
    """

    def __init__(self, net: Network, patience: int, min_delta: float, restore_best_weights: bool) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.net = net
        self.reference = math.inf  # the value an improvement must beat by min_delta
        self.best = math.inf
        self.best_theta = net.theta.copy() if restore_best_weights else None
        self.waited = 0

    def update(self, monitored: float) -> bool:
        """Record one epoch; True when patience has run out."""
        if monitored < self.best:
            self.best = monitored
            if self.best_theta is not None:
                np.copyto(self.best_theta, self.net.theta)
        if monitored < self.reference - self.min_delta:
            self.reference, self.waited = monitored, 0
        else:
            self.waited += 1
        return self.waited >= self.patience

    def restore(self) -> None:
        if self.best_theta is not None and math.isfinite(self.best):
            np.copyto(self.net.theta, self.best_theta)


def clip_by_global_norm(g: np.ndarray, clip_norm: float) -> None:
    """``g *= clip_norm / ||g||`` when ``||g|| > clip_norm`` (Pascanu et al. 2013, Algorithm 1).

    ``g`` holds every weight and bias gradient, so its norm is the global norm over all
    of them (as TensorFlow's ``clip_by_global_norm`` and PyTorch's ``clip_grad_norm_``).
    """
    norm = math.sqrt(float(g @ g))
    if norm > clip_norm:
        g *= clip_norm / norm


def l2_penalty(net: Network, l2: float) -> float:
    """``l2/2 * sum(W^2)`` over the weights (not the biases), in float64."""
    if not l2:
        return 0.0
    w = net.theta[: net.n_weights].astype(np.float64)
    return 0.5 * l2 * float(w @ w)


def add_l2_gradient(net: Network, l2: float) -> None:
    """``dL/dW += l2 * W``: the gradient of :func:`l2_penalty`."""
    if l2:
        net.grad[: net.n_weights] += l2 * net.theta[: net.n_weights]


def train_epoch(
    net: Network, loss: Loss, optimizer, batches: Batches, score: RunningScore,
    l2: float, clip_norm: float | None, epoch: int,
) -> dict[str, float]:
    """One pass of mini-batch gradient descent; returns the epoch's training metrics."""
    out_act = net.activations[-1]
    loss_sum = 0.0
    for xb, yb in batches:
        a = net.forward(xb, training=True)
        z = net.z_out
        batch_loss = loss.value(yb, z, a)
        if not math.isfinite(batch_loss):
            raise NonFiniteLossError(epoch, batch_loss)
        net.backward(loss.output_gradient(yb, z, a, out_act))
        add_l2_gradient(net, l2)
        if clip_norm is not None:
            clip_by_global_norm(net.grad, clip_norm)
        optimizer.step(net.grad)
        loss_sum += batch_loss * len(xb)
        score.add(yb, a)
    train_loss = loss_sum / batches.n + l2_penalty(net, l2)
    if not math.isfinite(train_loss):
        raise NonFiniteLossError(epoch, train_loss)
    return {"train_loss": train_loss, **score.result("train_")}


def run_epochs(
    history: History,
    epochs: int,
    train: Callable[[int], dict[str, float]],
    validate: Callable[[], dict[str, float]] | None,
    optimizer,
    schedule,
    callbacks: Sequence[Callable],
    stopping: EarlyStopping | None,
) -> None:
    """The epoch loop: set the rate, train, evaluate, record, call back, maybe stop.

    ``train(epoch)`` runs one epoch and returns its ``train_`` metrics; ``validate()``
    returns the validation metrics (named without the ``val_`` prefix).
    """
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        optimizer.lr = schedule.lr_at(epoch)
        logs = train(epoch)
        if validate is not None:
            logs.update({f"val_{name}": value for name, value in validate().items()})
        logs["lr"] = optimizer.lr
        monitored = history.record(epoch, logs, time.perf_counter() - started)
        schedule.observe(monitored)
        seconds = history.epoch_seconds[-1]
        for callback in callbacks:
            if callback(epoch, {**logs, "epoch_seconds": seconds}):
                history.stop_reason = "callback"
        if stopping is not None and stopping.update(monitored) and not history.stop_reason:
            history.stop_reason = "early_stopping"
        if history.stop_reason:
            history.stopped_early = epoch < epochs
            break
    if stopping is not None:
        stopping.restore()
