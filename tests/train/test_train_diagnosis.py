"""The fit diagnosis on synthetic learning curves: one test per rule, its edge and its scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeps.core import vocabulary as V
from sweeps.training import diagnosis as D
EPOCHS = np.arange(1, 101)
L0 = 0.693  # a balanced binary task's constant-predictor loss


def curves(train, val=None, train_acc=None, val_acc=None, score="accuracy"):
    history = {"train_loss": list(map(float, train))}
    if val is not None:
        history["val_loss"] = list(map(float, val))
    if train_acc is not None:
        history[f"train_{score}"] = list(map(float, train_acc))
    if val_acc is not None:
        history[f"val_{score}"] = list(map(float, val_acc))
    return history


def settle(start, end, tau=8.0):
    return end + (start - end) * np.exp(-EPOCHS / tau)


def test_good_fit_levels_off_with_a_small_gap():
    train = settle(0.6, 0.1)
    result = D.diagnose(curves(train, train + 0.02, settle(0.6, 0.97), settle(0.6, 0.96)), "binary", L0, baseline=0.5)
    assert result.label == "good", result.reason
    assert result.hint == ""
    assert result.numbers["gap"] == pytest.approx(0.02 / L0)
    assert result.delivered_epoch == 100


def test_overfit_validation_rises_while_training_keeps_falling():
    train = settle(0.6, 0.01, tau=20)
    val = 0.3 + 0.3 * np.exp(-EPOCHS / 10) + 0.002 * np.maximum(EPOCHS - 30, 0)
    result = D.diagnose(curves(train, val), "binary", L0, baseline=0.5)
    assert result.label == "overfit", result.reason
    assert result.numbers["val_rise"] > D.OVERFIT_RISE
    assert result.numbers["train_gain_after_best_val"] > 0
    assert "rose from" in result.reason


def test_a_small_rise_of_a_loss_near_zero_is_not_overfitting():
    # 0.0075 -> 0.0093 is a 24 % relative rise but 0.3 % of a constant predictor's loss.
    train = settle(0.5, 0.001)
    val = np.concatenate([settle(0.5, 0.0075)[:60], np.linspace(0.0075, 0.0093, 40)])
    result = D.diagnose(curves(train, val), "binary", L0, baseline=0.5)
    assert result.label == "good", result.reason
    assert result.numbers["val_rise"] < 0.01


def test_overfit_from_a_large_gap_at_the_delivered_epoch():
    train = settle(0.6, 0.001)
    val = settle(0.6, 0.3)  # flat at the end, but far above training
    result = D.diagnose(curves(train, val), "binary", L0, baseline=0.5)
    assert result.label == "overfit", result.reason
    assert result.numbers["gap"] > D.OVERFIT_GAP
    assert "far above" in result.reason


def test_overfit_from_a_large_accuracy_gap_but_not_from_an_r2_gap():
    train, val = settle(0.6, 0.10), settle(0.6, 0.14)
    acc = curves(train, val, np.full(100, 1.0), np.full(100, 0.75))
    assert D.diagnose(acc, "binary", L0, baseline=0.5).label == "overfit"
    # A small validation set's own variance moves R²: for regression the loss gap decides.
    r2 = curves(train, val, np.full(100, 0.9), np.full(100, 0.6), score="r2")
    assert D.diagnose(r2, "regression", 1.0).label == "good"


def test_early_stopping_with_restored_weights_is_judged_at_its_best_epoch():
    train = settle(0.6, 0.1, tau=10) - 0.0005 * EPOCHS
    val = np.concatenate([settle(0.6, 0.12, tau=10)[:40], settle(0.6, 0.12, tau=10)[39] + 0.004 * np.arange(1, 61)])
    restored = D.diagnose(curves(train[:60], val[:60]), "binary", L0, delivered_epoch=40)
    assert restored.label == "good", restored.reason
    assert restored.delivered_epoch == 40
    assert restored.numbers["val_rise"] == 0
    assert D.diagnose(curves(train[:60], val[:60]), "binary", L0).label == "overfit"  # last epoch delivered


def test_underfit_when_the_training_loss_stays_near_a_constant_predictors():
    train = settle(0.8, 0.6)
    result = D.diagnose(curves(train, train + 0.01, np.full(100, 0.6), np.full(100, 0.6)), "binary", L0, baseline=0.5)
    assert result.label == "underfit", result.reason
    assert result.numbers["train_loss_ratio"] == pytest.approx(0.6 / L0, rel=1e-3)


def test_underfit_when_the_training_score_is_poor():
    train = settle(0.6, 0.35)  # 0.5 of L0: the loss alone would pass
    acc = np.full(100, 0.6)  # skill 0.2
    result = D.diagnose(curves(train, train, acc, acc), "binary", L0, baseline=0.5)
    assert result.label == "underfit", result.reason
    assert result.numbers["train_skill"] == pytest.approx(0.2)


def test_an_underfit_model_is_not_called_overfit_for_a_noisy_validation_score():
    train = np.full(100, 0.69)
    result = D.diagnose(curves(train, train + 0.02, np.full(100, 0.55), np.full(100, 0.35)), "binary", L0, baseline=0.5)
    assert result.label == "underfit", result.reason


def test_still_falling_is_a_hint_not_a_label():
    train = 0.5 - 0.003 * EPOCHS  # a straight, still falling line, ending at 0.2
    result = D.diagnose(curves(train, train + 0.01), "binary", L0, baseline=0.5)
    assert result.label == "good", result.reason
    assert result.hint == D.HINT_TRAIN_LONGER
    assert result.numbers["still_falling"] > D.STILL_FALLING
    assert "hint: train longer" in result.summary


def test_a_tiny_fall_of_a_loss_near_zero_gives_no_hint():
    train = np.linspace(0.0093, 0.0075, 100)
    result = D.diagnose(curves(train, train), "binary", L0)
    assert result.label == "good"
    assert result.hint == ""


def test_unstable_when_the_training_loss_keeps_climbing_back():
    rng = np.random.default_rng(0)
    train = 0.3 + 0.25 * np.abs(np.sin(EPOCHS * 1.7)) + 0.02 * rng.random(100)
    result = D.diagnose(curves(train, train + 0.05), "binary", L0)
    assert result.label == "unstable", result.reason
    assert result.numbers["train_unsettled"] > D.UNSTABLE_SHARE


def test_a_single_spike_that_recovers_is_not_instability():
    train = settle(0.6, 0.02)
    train[70] = 0.4  # one Adam spike late in training
    result = D.diagnose(curves(train, train + 0.01), "binary", L0)
    assert result.label == "good", result.reason
    assert result.numbers["train_unsettled"] < D.UNSTABLE_SHARE


def test_unstable_when_the_validation_loss_jumps_every_epoch():
    train = settle(0.6, 0.05)
    val = np.where(EPOCHS % 2 == 0, 0.05, 0.25)
    result = D.diagnose(curves(train, val), "binary", L0)
    assert result.label == "unstable", result.reason
    assert result.numbers["val_jitter"] > D.UNSTABLE_JITTER


def test_jitter_ignores_moves_below_the_floor():
    tiny = np.where(EPOCHS % 2 == 0, 0.001, 0.003)  # x3 every epoch, but 0.3 % of L0
    assert D.jitter(tiny, D.JITTER_FLOOR * L0) == 0.0
    assert D.jitter(tiny, 0.0) == pytest.approx(math.log(3))


def test_diverged_on_non_finite_loss():
    result = D.diagnose(curves([0.7, 0.6], [0.7, 0.65]), "binary", L0, non_finite=True)
    assert result.label == "diverged"
    assert "NaN or infinite" in result.reason
    assert D.diagnose(curves([0.7, math.inf], [0.7, math.nan]), "binary", L0).label == "diverged"


def test_diverged_when_the_training_loss_explodes():
    train = settle(0.6, 0.2)
    train[50] = 12 * L0
    result = D.diagnose(curves(train, train + 0.1), "binary", L0)
    assert result.label == "diverged", result.reason
    assert result.numbers["train_peak"] > D.EXPLODE_RATIO


def test_diverged_in_the_first_epoch_has_no_curves():
    result = D.diagnose({}, "binary", L0, non_finite=True)
    assert result.label == "diverged"
    assert result.best_epoch == 0
    assert result.metrics() == {}


def test_without_validation_data_only_training_curves_count():
    train = settle(0.6, 0.1)
    result = D.diagnose(curves(train, train_acc=np.full(100, 0.95)), "binary", L0, baseline=0.5)
    assert result.label == "good"
    assert math.isnan(result.numbers["gap"])
    assert "fit/gap" not in result.metrics()


def test_the_scale_is_the_constant_predictors_loss():
    # The same curves, divided by L0, give the same verdict and numbers for any L0.
    train, val = settle(0.9, 0.1), settle(0.9, 0.35)
    small = D.diagnose(curves(train, val), "multiclass", 1.0)
    large = D.diagnose(curves(10 * train, 10 * val), "multiclass", 10.0)
    assert small.label == large.label == "overfit"
    assert small.numbers["gap"] == pytest.approx(large.numbers["gap"])


def test_constant_loss_must_be_known():
    with pytest.raises(ValueError, match="constant_loss"):
        D.diagnose(curves([0.5, 0.4]), "binary", math.nan)
    assert D.diagnose(curves([0.0, 0.0]), "regression", 0.0).label == "good"


def test_numbers_are_logged_as_fit_metrics():
    train = settle(0.6, 0.1)
    metrics = D.diagnose(curves(train, train + 0.05, np.full(100, 0.9), np.full(100, 0.88)), "binary", L0,
                         baseline=0.5).metrics()
    assert set(metrics) == {f"fit/{name}" for name in V.FIT_NUMBERS}


def test_helpers():
    assert D.fall_over_last_window([1.0, 1.0, 1.0]) == 0.0  # too short
    assert D.fall_over_last_window([4, 3, 2, 1]) == pytest.approx(3.5 - 1.5)
    assert D.share_above_best([1, 0.5, 0.9, 0.4], 0.2) == 0.25
    assert D.skill(0.5, 0.5) == 0.0
    assert D.skill(1.0, 0.5) == 1.0
    assert D.majority_share([0, 0, 1, 2]) == 0.5


def test_constant_predictor_losses_match_their_formulas():
    from ann.losses import make_loss

    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    p = np.array([0.5, 0.25, 0.25])
    assert make_loss("categorical_crossentropy").constant_value(y) == pytest.approx(-(p * np.log(p)).sum())
    b = np.array([[1.0], [0.0], [0.0], [0.0]])
    assert make_loss("binary_crossentropy").constant_value(b) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    r = np.array([[1.0], [2.0], [3.0], [10.0]])
    assert make_loss("mse").constant_value(r) == pytest.approx(np.var(r))
    assert make_loss("half_squared_error").constant_value(r) == pytest.approx(np.var(r) / 2)
    assert make_loss("mae").constant_value(r) == pytest.approx(np.mean(np.abs(r - 2.5)))
    # No constant does better: the best constant's loss is the minimum over constants.
    for c in np.linspace(0, 10, 41):
        assert make_loss("mse").value(r, None, np.full_like(r, c)) >= make_loss("mse").constant_value(r) - 1e-12
