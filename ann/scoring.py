"""Inference and scores: the network's outputs over many rows, class codes, the task's metrics.

Scores are in the target's own units: regression outputs and targets are un-standardised
with the target scaler before MAE, RMSE and R² are computed.
"""

from __future__ import annotations

import numpy as np

from ann.losses import Loss
from ann.metrics import regression_metrics
from ann.network import Network
from ann.preprocessing import Standardizer

#: Rows per forward pass when evaluating or predicting (bounds memory on big sets).
EVAL_CHUNK = 8192


def forward_all(net: Network, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output activations and logits for all rows, in chunks, inference mode."""
    outputs, logits = [], []
    for start in range(0, len(inputs), EVAL_CHUNK):
        a = net.forward(inputs[start : start + EVAL_CHUNK], training=False)
        outputs.append(a.copy())
        logits.append(net.output_pre_activation().copy())
    return np.concatenate(outputs), np.concatenate(logits)


def class_codes(task: str, a: np.ndarray) -> np.ndarray:
    """Predicted class codes from output activations: ``a >= 0.5`` (binary) or ``argmax a``."""
    if task == "binary":
        return (a[:, 0] >= 0.5).astype(np.intp)
    return np.argmax(a, axis=1)


class RunningScore:
    """Accumulates the task's metric over batches (accuracy, or MAE/RMSE/R² in target units)."""

    def __init__(self, task: str, y_scaler: Standardizer | None) -> None:
        self.task = task
        self.scaler = y_scaler
        self.count = 0
        self.correct = 0
        self.targets: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def add(self, targets: np.ndarray, outputs: np.ndarray) -> None:
        self.count += len(targets)
        if self.task == "regression":
            self.targets.append(np.array(targets, dtype=np.float64))
            self.outputs.append(np.array(outputs, dtype=np.float64))
        elif self.task == "binary":  # one column: compare it whole, no slicing (hot path)
            self.correct += int(np.count_nonzero((outputs >= 0.5) == (targets >= 0.5)))
        else:
            self.correct += int(
                np.count_nonzero(np.argmax(outputs, axis=1) == np.argmax(targets, axis=1))
            )

    def result(self, prefix: str = "") -> dict[str, float]:
        """The metrics, their names prefixed (``train_accuracy``, ...)."""
        if self.task != "regression":
            return {prefix + "accuracy": self.correct / self.count}
        y, a = np.concatenate(self.targets), np.concatenate(self.outputs)
        if self.scaler is not None:
            y, a = self.scaler.inverse_transform(y), self.scaler.inverse_transform(a)
        return {prefix + name: value for name, value in regression_metrics(y, a).items()}


def evaluate(
    net: Network, loss: Loss, task: str, y_scaler: Standardizer | None,
    inputs: np.ndarray, targets: np.ndarray,
) -> dict[str, float]:
    """``loss`` and the task's metrics on prepared inputs and targets (as the network sees them)."""
    a, z = forward_all(net, inputs)
    result = {"loss": loss.value(targets, z, a)}
    score = RunningScore(task, y_scaler)
    score.add(targets, a)
    result.update(score.result())
    return result
