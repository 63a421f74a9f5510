"""The estimator's parts on their own: the history, the task and targets, the input checks, early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ann
from ann.activations import Linear
from ann.checks import check_validation_data, check_X
from ann.history import History
from ann.network import Network, default_init
from ann.targets import encode_labels, encode_targets, fit_targets, infer_task
from ann.training import Batches, EarlyStopping


def test_history_records_metrics_and_the_best_epoch_of_the_monitored_loss():
    history = History()
    for epoch, (train, val) in enumerate([(1.0, 0.9), (0.8, 0.7), (0.6, math.nan), (0.5, 0.8)], 1):
        np.testing.assert_equal(history.record(epoch, {"train_loss": train, "val_loss": val}, 0.1), val)
    assert history.monitor == "val_loss" and history.best_epoch == 2 and history.best_loss == 0.7
    assert history.history["train_loss"] == [1.0, 0.8, 0.6, 0.5] and history.epochs == 4
    assert history.epoch_seconds == [0.1] * 4


@pytest.mark.parametrize("y, task", [
    (np.array([0.5, 1.5]), "regression"),
    (np.array([3, 7, 3]), "binary"),
    (np.array(["a", "b", "c"]), "multiclass"),
])
def test_the_task_is_inferred_from_the_targets(y, task):
    assert infer_task("auto", y) == task
    assert infer_task("multiclass", y) == "multiclass"


def test_targets_are_encoded_as_the_network_sees_them():
    labels = np.array(["cat", "dog", "ant", "dog"])
    classes, scaler, n_outputs = fit_targets("multiclass", labels, standardize=True)
    assert classes.tolist() == ["ant", "cat", "dog"] and scaler is None and n_outputs == 3
    np.testing.assert_array_equal(encode_targets(labels, "multiclass", classes, None, "float32"),
                                  np.eye(3, dtype=np.float32)[[1, 2, 0, 2]])
    with pytest.raises(ann.DataError, match="label 'emu' not seen in training; known labels: \\['ant', 'cat', 'dog'\\]"):
        encode_labels(np.array(["emu"]), classes)
    values = np.array([1.0, 3.0])
    _, scaler, n_outputs = fit_targets("regression", values, standardize=True)
    assert n_outputs == 1
    np.testing.assert_array_equal(encode_targets(values, "regression", None, scaler, "float64"), [[-1.0], [1.0]])
    with pytest.raises(ann.InvalidParameterError, match="'multiclass' for 3 classes"):
        fit_targets("binary", labels, standardize=True)


def test_input_checks_name_the_problem():
    with pytest.raises(ann.DataError, match="X has 3 features; the model was fitted with 2"):
        check_X(np.ones((4, 3)), n_features=2)
    with pytest.raises(ann.DataError, match="X_val has 1 features but X has 2"):
        check_validation_data((np.ones((4, 1)), np.ones(4)), n_features=2)
    assert check_X(np.ones((2, 2), dtype=np.float32)).dtype == np.float32  # no upcast


def test_batches_cover_every_row_once_per_epoch():
    X = np.arange(10, dtype=np.float64).reshape(10, 1)
    batches = Batches(X, X.copy(), 4, np.random.default_rng(0))
    for _ in range(2):
        seen = np.concatenate([xb[:, 0].copy() for xb, _ in batches])
        assert sorted(seen.tolist()) == list(range(10))


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    net = Network([2, 1], [Linear()], rng=np.random.default_rng(0))
    stopping = EarlyStopping(net, patience=2, min_delta=0.0, restore_best_weights=True)
    assert not stopping.update(1.0)
    best = net.theta.copy()
    net.theta += 1.0
    assert not stopping.update(1.5)
    assert stopping.update(1.2)
    stopping.restore()
    np.testing.assert_array_equal(net.theta, best)
    assert default_init("relu") == "he" and default_init("tanh") == "xavier"
