"""Training behaviour: learning real tasks, gradient-descent variants, control of the fit."""

from __future__ import annotations

import numpy as np
import pytest

import ann
from ann.data import load_dataset, split_dataset

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_Y = np.array([0, 1, 1, 0])

#: The recipes docs/reference/engine.md documents for the bundled data sets (all else at MLP defaults).
DIGITS_RECIPE = dict(hidden_layers=[128], l2=1e-3)
DIABETES_RECIPE = dict(hidden_layers=[8], activation="tanh", early_stopping=True)


def test_xor_is_learned_to_full_accuracy():
    model = ann.MLP(hidden_layers=[4], activation="tanh", lr=0.05, batch_size=4, epochs=1000)
    history = model.fit(XOR_X, XOR_Y)
    np.testing.assert_array_equal(model.predict(XOR_X), XOR_Y)
    assert history.history["train_accuracy"][-1] == 1.0
    assert model.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0


def _test_score(name: str, metric: str, recipe: dict, seeds=(0, 1, 2)) -> list[float]:
    scores = []
    for seed in seeds:
        splits = split_dataset(load_dataset(name), seed=seed)
        model = ann.MLP(seed=seed, **recipe)
        model.fit(splits.X_train, splits.y_train, validation_data=(splits.X_val, splits.y_val))
        scores.append(model.evaluate(splits.X_test, splits.y_test)[metric])
    return scores


@pytest.mark.slow
def test_digits_reaches_96_percent_test_accuracy():
    scores = _test_score("digits", "accuracy", DIGITS_RECIPE)
    assert np.mean(scores) >= 0.96, scores
    assert min(scores) >= 0.94, scores


def test_diabetes_reaches_r2_of_0_40():
    scores = _test_score("diabetes", "r2", DIABETES_RECIPE)
    assert np.mean(scores) >= 0.40, scores


@pytest.mark.parametrize("batch_size", [None, 1, 16], ids=["batch", "stochastic", "mini-batch"])
def test_every_gradient_descent_variant_reduces_the_loss(batch_size):
    data = load_dataset("moons", n_samples=200, noise=0.1, seed=0)
    batch_size = batch_size or len(data.X)
    model = ann.MLP(hidden_layers=[16], optimizer="sgd", lr=0.1, batch_size=batch_size,
                    epochs=30, seed=0)
    loss = model.fit(data.X, data.y).history["train_loss"]
    assert loss[-1] < 0.8 * loss[0]
    initial = ann.MLP(hidden_layers=[16], seed=0).loss_and_gradients(data.X, data.y)[0]
    assert model.evaluate(data.X, data.y)["loss"] < initial


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_every_optimizer_learns_moons(optimizer):
    data = load_dataset("moons", n_samples=300, noise=0.1, seed=1)
    lr = 1e-2 if optimizer in ("adam", "rmsprop") else 0.1
    model = ann.MLP(hidden_layers=[16, 16], optimizer=optimizer, lr=lr, epochs=60, seed=0)
    model.fit(data.X, data.y)
    assert model.evaluate(data.X, data.y)["accuracy"] >= 0.95


def test_same_seed_gives_identical_weights_and_history():
    data = load_dataset("spiral", n_samples=300, seed=0)
    runs = []
    for _ in range(2):
        model = ann.MLP(hidden_layers=[16], activation="rrelu", dropout=0.2, epochs=5, seed=42)
        history = model.fit(data.X, data.y, validation_data=(data.X, data.y))
        runs.append((history.history, model.network_.theta.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = ann.MLP(hidden_layers=[16], activation="rrelu", dropout=0.2, epochs=5, seed=43)
    assert other.fit(data.X, data.y).history["train_loss"] != runs[0][0]["train_loss"]


def test_history_has_one_value_per_epoch_for_each_metric():
    data = load_dataset("regression", n_samples=200, seed=0)
    model = ann.MLP(hidden_layers=[8], epochs=7)
    history = model.fit(data.X[:150], data.y[:150], validation_data=(data.X[150:], data.y[150:]))
    assert set(history.history) == {
        "train_loss", "train_mae", "train_rmse", "train_r2",
        "val_loss", "val_mae", "val_rmse", "val_r2", "lr",
    }
    assert all(len(values) == 7 for values in history.history.values())
    assert history.epochs == 7 and len(history.epoch_seconds) == 7
    assert history.best_epoch == 1 + int(np.argmin(history.history["val_loss"]))


def test_callback_sees_every_epoch_and_can_stop_training():
    data = load_dataset("moons", n_samples=100, seed=0)
    seen = []

    def callback(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 3

    history = ann.MLP(hidden_layers=[4], epochs=10).fit(
        data.X, data.y, validation_data=(data.X, data.y), callbacks=[callback]
    )
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert seen[0][1] == ["epoch_seconds", "lr", "train_accuracy", "train_loss", "val_accuracy", "val_loss"]
    assert history.epochs == 3 and history.stopped_early and history.stop_reason == "callback"


def test_exception_in_callback_propagates():
    class Pruned(Exception):
        pass

    def prune(epoch, logs):
        raise Pruned(epoch)

    data = load_dataset("moons", n_samples=50, seed=0)
    with pytest.raises(Pruned):
        ann.MLP(hidden_layers=[4], epochs=5).fit(data.X, data.y, callbacks=[prune])


def test_early_stopping_restores_the_best_weights():
    data = load_dataset("moons", n_samples=60, noise=0.45, seed=0)
    val = load_dataset("moons", n_samples=200, noise=0.45, seed=1)
    model = ann.MLP(hidden_layers=[128, 128], lr=1e-2, epochs=400, early_stopping=True,
                    patience=15, seed=0)
    history = model.fit(data.X, data.y, validation_data=(val.X, val.y))
    assert history.stop_reason == "early_stopping" and history.epochs < 400
    assert history.epochs == history.best_epoch + 15
    best = history.history["val_loss"][history.best_epoch - 1]
    assert model.evaluate(val.X, val.y)["loss"] == pytest.approx(best, rel=1e-5)
    assert best < history.history["val_loss"][-1]


def test_non_finite_loss_raises_with_the_epoch():
    data = load_dataset("regression", n_samples=200, seed=0)
    model = ann.MLP(hidden_layers=[32, 32], optimizer="sgd", lr=50.0, epochs=20, seed=0)
    with pytest.raises(ann.NonFiniteLossError) as caught:
        model.fit(data.X, data.y)
    assert 1 <= caught.value.epoch <= 20
    assert not np.isfinite(caught.value.value)
    assert f"epoch {caught.value.epoch}" in str(caught.value)


def test_dropout_is_applied_in_training_only():
    data = load_dataset("moons", n_samples=100, seed=0)
    model = ann.MLP(hidden_layers=[64], dropout=0.5, epochs=3, seed=0)
    model.fit(data.X, data.y)
    first = model.predict_proba(data.X)
    np.testing.assert_array_equal(first, model.predict_proba(data.X))  # inference: no dropout
    net = model.network_
    inputs = model._inputs(data.X)
    train_out = [net.forward(inputs, training=True).copy() for _ in range(2)]
    assert not np.array_equal(train_out[0], train_out[1])


def test_float32_by_default_and_float64_on_request():
    data = load_dataset("moons", n_samples=64, seed=0)
    for dtype in ("float32", "float64"):
        model = ann.MLP(hidden_layers=[4], epochs=1, dtype=dtype)
        model.fit(data.X, data.y)
        assert all(p.dtype == np.dtype(dtype) for p in model.parameters())


def test_predictions_keep_the_label_values_of_y():
    data = load_dataset("spiral", n_samples=150, seed=0)
    labels = np.array(["red", "green", "blue"])[data.y]
    model = ann.MLP(hidden_layers=[32], lr=1e-2, epochs=50)
    model.fit(data.X, labels)
    assert set(model.predict(data.X)) <= {"red", "green", "blue"}
    proba = model.predict_proba(data.X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert list(model.classes_) == ["blue", "green", "red"]


def test_binary_predict_proba_has_two_columns():
    data = load_dataset("circles", n_samples=100, seed=0)
    model = ann.MLP(hidden_layers=[8], epochs=5)
    model.fit(data.X, data.y)
    proba = model.predict_proba(data.X)
    assert proba.shape == (100, 2)
    np.testing.assert_array_equal(model.predict(data.X), (proba[:, 1] >= 0.5).astype(int))


def test_zero_hidden_layers_is_a_linear_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0
    model = ann.MLP(hidden_layers=[], optimizer="adam", lr=0.05, epochs=200, batch_size=200)
    model.fit(X, y)
    assert model.n_parameters_ == 4
    assert model.evaluate(X, y)["r2"] > 0.9999
