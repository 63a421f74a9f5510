"""The learning-curve PNG."""

from __future__ import annotations

import matplotlib.image as mpimg

from sweeps.training.plots import learning_curve_figure, save_learning_curve


def test_learning_curve_png_has_both_panels_and_the_best_epoch(tmp_path):
    history = {
        "train_loss": [0.9, 0.6, 0.4, 0.3], "val_loss": [0.95, 0.7, 0.5, 0.55],
        "train_accuracy": [0.5, 0.7, 0.8, 0.9], "val_accuracy": [0.5, 0.65, 0.75, 0.74],
    }
    path = save_learning_curve(tmp_path / "curve.png", history, "binary", best_epoch=3, title="moons")
    image = mpimg.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 800
    figure = learning_curve_figure(history, "binary", best_epoch=3)
    loss_axes, metric_axes = figure.axes
    assert loss_axes.get_title() == "loss" and metric_axes.get_title() == "accuracy"
    labels = [line.get_label() for line in loss_axes.get_lines()]
    assert labels == ["training", "validation", "best epoch (3)"]


def test_regression_plots_r2_and_works_without_validation(tmp_path):
    history = {"train_loss": [1.0, 0.5], "train_r2": [0.1, 0.6]}
    figure = learning_curve_figure(history, "regression")
    assert figure.axes[1].get_title() == "R²"
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["training"]


def test_the_learning_curve_title_carries_the_verdict_its_reason_and_hint():
    from sweeps.training.diagnosis import Diagnosis
    from sweeps.training.tracked import curve_title

    diagnosis = Diagnosis("good", "validation loss 0.1 vs training 0.09 at epoch 50", 50, 50, "train longer")
    title = curve_title("moons", diagnosis)
    first, second = title.split("\n")
    assert first == "moons: fit = good [train longer]"
    assert second == diagnosis.reason
    long = Diagnosis("overfit", "x" * 400, 3, 10)
    assert len(curve_title("digits", long).split("\n")[1]) <= 140
