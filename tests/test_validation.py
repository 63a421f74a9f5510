"""Bad input: every error names the argument, the value and what is allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ann
from ann import params

X = np.random.default_rng(0).normal(size=(20, 3))
Y_CLASS = np.arange(20) % 2
Y_REG = np.linspace(0.0, 1.0, 20)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"lr": 0}, "lr=0.0 is not allowed: expected a finite number > 0"),
        ({"lr": -0.1}, "lr=-0.1"),
        ({"lr": math.inf}, "lr=inf"),
        ({"lr": math.nan}, "lr=nan"),
        ({"batch_size": 0}, "batch_size=0 is not allowed: expected an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"hidden_layers": [8, 0]}, "hidden_layers[1]=0 is not allowed: expected an integer in [1, 65536]"),
        ({"hidden_layers": [-3]}, "hidden_layers[0]=-3"),
        ({"hidden_layers": "64"}, "hidden_layers='64'"),
        ({"activation": "sigmod"}, "activation='sigmod' is not allowed: expected one of 'step', 'sigmoid'"),
        ({"loss": "hinge"}, "loss='hinge'"),
        ({"optimizer": "adagrad"}, "optimizer='adagrad' is not allowed: expected one of 'sgd'"),
        ({"dropout": 1.0}, "dropout=1.0 is not allowed: expected a finite number in [0, 1)"),
        ({"epochs": 0}, "epochs=0"),
        ({"dtype": "float16"}, "dtype='float16'"),
        ({"early_stopping": "yes"}, "early_stopping='yes'"),
        ({"rrelu_lower": 0.5, "rrelu_upper": 0.2}, "rrelu_lower=0.5 is not allowed: expected a slope <= rrelu_upper=0.2"),
        ({"task": "regression", "loss": "categorical_crossentropy"},
         "loss='categorical_crossentropy' is not allowed: expected a loss for a regression task"),
        ({"task": "multiclass", "loss": "binary_crossentropy"}, "a loss for a multiclass task"),
        ({"task": "binary", "output_activation": "softmax"}, "an output activation for a binary task"),
        ({"optimizer": "adam", "weight_decay": 0.01},
         "weight_decay=0.01 is not allowed: expected 0 with optimizer 'adam' (decoupled weight decay is for"),
        ({"optimizer": "adamw", "weight_decay": -0.1}, "weight_decay=-0.1 is not allowed: expected a finite number >= 0"),
        ({"optimizer": "sgd", "lr": 0.5, "weight_decay": 2.0}, "weight_decay=2.0 is not allowed: expected a decay with lr * weight_decay < 1"),
        ({"clip_norm": 0}, "clip_norm=0.0 is not allowed: expected a finite number > 0"),
        ({"lr_schedule": "linear"}, "lr_schedule='linear' is not allowed: expected one of 'constant', 'step'"),
        ({"lr_schedule": "cosine", "warmup_epochs": 10, "epochs": 10},
         "warmup_epochs=10 is not allowed: expected an integer in [0, 10) (fewer than epochs=10)"),
        ({"lr_schedule": "cosine", "min_lr": 0.1, "lr": 0.01}, "min_lr=0.1 is not allowed: expected a rate in [0, lr=0.01]"),
        ({"gamma": 0}, "gamma=0.0 is not allowed: expected a finite number in (0, 1]"),
        ({"step_size": 0}, "step_size=0"),
        ({"pct_start": 1.0}, "pct_start=1.0 is not allowed: expected a finite number in (0, 1)"),
        ({"plateau_factor": 1.0}, "plateau_factor=1.0"),
    ],
)
def test_constructor_rejects_bad_values(kwargs, fragment):
    with pytest.raises(ann.InvalidParameterError) as caught:
        ann.MLP(**kwargs)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_loss_that_does_not_fit_the_inferred_task_is_refused_in_fit():
    model = ann.MLP(loss="categorical_crossentropy", batch_size=4, epochs=1)
    with pytest.raises(ann.InvalidParameterError, match="a loss for a regression task"):
        model.fit(X, Y_REG)


def test_batch_size_larger_than_the_training_set():
    with pytest.raises(ann.InvalidParameterError, match=r"batch_size=64 .* \[1, 20\] \(the training set has 20 samples\)"):
        ann.MLP(batch_size=64, epochs=1).fit(X, Y_CLASS)


@pytest.mark.parametrize(
    "X_bad, y_bad, fragment",
    [
        (X, Y_CLASS[:-1], "X and y have different lengths: 20 samples but y has 19"),
        (np.where(np.eye(20, 3) == 1, np.nan, X), Y_CLASS, "X holds 3 NaN or infinite value(s), first at row 0, column 0"),
        (np.where(np.eye(20, 3) == 1, np.inf, X), Y_CLASS, "NaN or infinite"),
        (X, np.where(np.arange(20) == 4, np.nan, Y_REG), "y holds NaN or infinite values"),
        (X[:, 0], Y_CLASS, "X must be 2-D"),
        (X, np.zeros(20, int), "y has a single class (0)"),
        ([["a", "b", "c"]] * 20, Y_CLASS, "X must hold numbers only"),
    ],
)
def test_fit_rejects_bad_data(X_bad, y_bad, fragment):
    with pytest.raises(ann.DataError) as caught:
        ann.MLP(batch_size=4, epochs=1).fit(X_bad, y_bad)
    assert fragment in str(caught.value)


def test_finite_data_whose_sum_overflows_is_accepted():
    """The finite check sums X in its own dtype; an overflow there is not a bad value."""
    big = np.full((20, 3), 3e38, np.float32)  # finite, but 20 of them sum to inf
    big[:, 1] = np.arange(20)
    history = ann.MLP(batch_size=4, epochs=2).fit(big, Y_CLASS)
    assert history.epochs == 2 and np.isfinite(history.history["train_loss"]).all()
    big[7, 1] = np.inf
    with pytest.raises(ann.DataError, match=r"X holds 1 NaN or infinite value\(s\), first at row 7, column 1"):
        ann.MLP(batch_size=4, epochs=2).fit(big, Y_CLASS)


def test_validation_data_is_checked_like_training_data():
    model = ann.MLP(batch_size=4, epochs=1)
    with pytest.raises(ann.DataError, match="X_val has 2 features but X has 3"):
        model.fit(X, Y_CLASS, validation_data=(X[:, :2], Y_CLASS))
    with pytest.raises(ann.DataError, match="X_val and y_val have different lengths"):
        model.fit(X, Y_CLASS, validation_data=(X, Y_CLASS[:5]))


def test_unfitted_model_says_so():
    with pytest.raises(ann.AnnError, match="not fitted yet"):
        ann.MLP().predict(X)


def test_predict_checks_the_number_of_features():
    model = ann.MLP(batch_size=4, epochs=1)
    model.fit(X, Y_CLASS)
    with pytest.raises(ann.DataError, match="X has 2 features; the model was fitted with 3"):
        model.predict(X[:, :2])


def test_the_table_covers_every_constructor_argument():
    import inspect

    arguments = set(inspect.signature(ann.MLP).parameters)
    assert arguments == set(params.PARAMETERS) | {"hidden_layers"}
    assert arguments == set(params.PARAMETERS_DEFAULTS)
    for name, default in params.PARAMETERS_DEFAULTS.items():
        assert inspect.signature(ann.MLP).parameters[name].default == default
        params.check(name, default)  # every default is itself allowed


def test_optimizer_settings_table_matches_the_optimizers():
    import inspect

    from ann.optimizers import OPTIMIZERS

    assert set(params.OPTIMIZER_SETTINGS) == set(OPTIMIZERS) == set(params.OPTIMIZERS)
    for name, settings in params.OPTIMIZER_SETTINGS.items():
        accepted = set(inspect.signature(OPTIMIZERS[name]).parameters) - {"theta", "n_weights", "_"}
        assert set(settings) == accepted, name


def test_schedule_settings_table_matches_the_schedules():
    import inspect

    from ann.schedules import SCHEDULES

    assert set(params.SCHEDULE_SETTINGS) == set(SCHEDULES) == set(params.SCHEDULES)
    for name, settings in params.SCHEDULE_SETTINGS.items():
        accepted = set(inspect.signature(SCHEDULES[name]).parameters) - {"lr", "epochs", "_"}
        assert set(settings) == accepted, name
