"""The fit diagnosis on synthetic learning curves, one per label, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeps import diagnosis as D


def curves(train, val=None, train_acc=None, val_acc=None):
    history = {"train_loss": list(train)}
    if val is not None:
        history["val_loss"] = list(val)
    if train_acc is not None:
        history["train_accuracy"] = list(train_acc)
    if val_acc is not None:
        history["val_accuracy"] = list(val_acc)
    return history


EPOCHS = np.arange(1, 101)


def test_good_fit_levels_off_with_a_small_gap():
    train = 0.2 + 0.5 * np.exp(-EPOCHS / 8)
    val = train + 0.03
    result = D.diagnose(curves(train, val, 0.95 - 0.4 * np.exp(-EPOCHS / 8), 0.93 - 0.4 * np.exp(-EPOCHS / 8)),
                        "binary", baseline=0.5)
    assert result.label == "good", result.reason
    assert result.numbers["gap_last"] == pytest.approx(0.03)


def test_overfit_validation_loss_rises_while_training_loss_falls():
    train = 0.7 * np.exp(-EPOCHS / 20)
    val = 0.3 + 0.4 * np.exp(-EPOCHS / 10) + 0.004 * np.maximum(EPOCHS - 30, 0)
    result = D.diagnose(curves(train, val), "binary", baseline=0.5)
    assert result.label == "overfit", result.reason
    assert 20 <= result.best_epoch <= 40
    assert result.numbers["val_rise"] > D.OVERFIT_RISE
    assert result.numbers["gap_last"] > result.numbers["gap_best"]


def test_overfit_from_a_large_skill_gap():
    train = 0.5 * np.exp(-EPOCHS / 10) + 0.01
    val = 0.5 * np.exp(-EPOCHS / 10) + 0.4  # flat at the end, but far above
    acc_train = np.full(100, 1.0)
    acc_val = np.full(100, 0.75)
    result = D.diagnose(curves(train, val, acc_train, acc_val), "binary", baseline=0.5)
    assert result.label == "overfit", result.reason
    assert result.numbers["skill_gap"] == pytest.approx(0.5)


def test_underfit_when_the_training_score_is_poor():
    train = 0.9 + 0.2 * np.exp(-EPOCHS / 5)
    val = train + 0.01
    acc = np.full(100, 0.45)  # three classes: baseline 1/3
    result = D.diagnose(curves(train, val, acc, acc), "multiclass", baseline=1 / 3)
    assert result.label == "underfit", result.reason
    assert result.numbers["train_skill"] == pytest.approx((0.45 - 1 / 3) / (2 / 3))


def test_underfit_when_still_improving_at_the_end():
    train = 1.0 - 0.008 * EPOCHS  # a straight, still falling line
    val = train + 0.02
    result = D.diagnose(curves(train, val), "binary", baseline=0.5)
    assert result.label == "underfit", result.reason
    assert result.numbers["val_trend"] < -D.UNDERFIT_TREND
    assert result.best_epoch == 100


def test_diverged_on_non_finite_loss():
    result = D.diagnose(curves([0.7, 0.6], [0.7, 0.65]), "binary", non_finite=True)
    assert result.label == "diverged"
    assert "NaN or infinite" in result.reason
    assert D.diagnose(curves([0.7, math.inf], [0.7, math.nan]), "binary").label == "diverged"


def test_diverged_when_training_loss_explodes():
    train = np.concatenate([np.linspace(1.0, 0.4, 50), np.linspace(0.4, 5.0, 50)])
    result = D.diagnose(curves(train, train + 0.1), "regression")
    assert result.label == "diverged", result.reason


def test_diverged_in_the_first_epoch_has_no_curves():
    result = D.diagnose({}, "binary", non_finite=True)
    assert result.label == "diverged"
    assert result.best_epoch == 0
    assert result.metrics() == {}


def test_without_validation_data_only_training_curves_count():
    train = 0.2 + 0.5 * np.exp(-EPOCHS / 8)
    result = D.diagnose(curves(train, train_acc=np.full(100, 0.95)), "binary", baseline=0.5)
    assert result.label == "good"
    assert math.isnan(result.numbers["gap_best"])
    assert "fit/gap_best" not in result.metrics()


def test_regression_skill_is_r2():
    train = 0.2 + 0.5 * np.exp(-EPOCHS / 8)
    history = curves(train, train + 0.01)
    history["train_r2"] = list(np.full(100, 0.3))
    history["val_r2"] = list(np.full(100, 0.28))
    result = D.diagnose(history, "regression")
    assert result.label == "underfit"
    assert result.numbers["train_skill"] == pytest.approx(0.3)


def test_numbers_are_logged_as_fit_metrics():
    train = 0.2 + 0.5 * np.exp(-EPOCHS / 8)
    metrics = D.diagnose(curves(train, train + 0.05), "binary").metrics()
    assert set(metrics) >= {"fit/gap_best", "fit/gap_last", "fit/val_rise", "fit/val_trend", "fit/train_trend"}


def test_trend_and_skill_helpers():
    assert D.trend([1.0, 1.0, 1.0]) == 0.0  # too short
    assert D.trend([4, 3, 2, 1]) == pytest.approx((1.5 - 3.5) / 3.5)
    assert D.skill(0.5, 0.5) == 0.0
    assert D.skill(1.0, 0.5) == 1.0
    assert D.majority_share([0, 0, 1, 2]) == 0.5
