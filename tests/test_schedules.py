"""Learning-rate schedules against their published formulas, and the ``lr`` history."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ann
from ann.data import load_dataset
from ann.schedules import make_schedule


def rates(name: str, lr: float, epochs: int, **settings) -> list[float]:
    schedule = make_schedule(name, lr, epochs, **settings)
    return [schedule.lr_at(epoch) for epoch in range(1, epochs + 1)]


def test_constant_keeps_the_rate():
    assert rates("constant", 0.01, 4) == [0.01] * 4


def test_step_multiplies_by_gamma_every_step_size_epochs():
    """PyTorch StepLR: lr * gamma ** floor(epoch / step_size), epochs counted from 0."""
    assert rates("step", 1.0, 7, step_size=3, gamma=0.5) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_exponential_multiplies_by_gamma_every_epoch():
    """PyTorch ExponentialLR: lr * gamma ** epoch, epochs counted from 0."""
    np.testing.assert_allclose(rates("exponential", 2.0, 4, gamma=0.9), [2.0, 1.8, 1.62, 1.458])


def test_cosine_without_warm_up_is_sgdr_equation_5():
    """Loshchilov & Hutter (2017), eq. 5: min + (max - min)(1 + cos(pi T_cur / T_i)) / 2, T_i = E."""
    lr, low, epochs = 0.1, 0.01, 8
    expected = [low + (lr - low) * (1 + math.cos(math.pi * t / epochs)) / 2 for t in range(epochs)]
    np.testing.assert_allclose(rates("cosine", lr, epochs, min_lr=low), expected, rtol=1e-12)
    # Hand-checked points: the first epoch at the peak, half-way (T_cur = 4) at the middle.
    got = rates("cosine", lr, epochs, min_lr=low)
    assert got[0] == lr
    assert got[4] == pytest.approx((lr + low) / 2)


def test_cosine_warm_up_rises_linearly_then_follows_the_cosine():
    got = rates("cosine", 1.0, 10, warmup_epochs=4, min_lr=0.0)
    np.testing.assert_allclose(got[:4], [0.25, 0.5, 0.75, 1.0])
    # After the warm-up, a cosine over the remaining 6 epochs starting at the peak.
    expected = [(1 + math.cos(math.pi * t / 6)) / 2 for t in range(6)]
    np.testing.assert_allclose(got[4:], expected, rtol=1e-12)
    assert all(a > b for a, b in zip(got[4:], got[5:]))


def pytorch_one_cycle(max_lr, total_steps, pct_start, div_factor, final_div_factor):
    """torch.optim.lr_scheduler.OneCycleLR.get_lr (anneal_strategy='cos', three_phase=False)."""
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    phases = [
        {"end_step": float(pct_start * total_steps) - 1, "start_lr": initial, "end_lr": max_lr},
        {"end_step": total_steps - 1, "start_lr": max_lr, "end_lr": minimum},
    ]

    def annealing_cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    out = []
    for step_num in range(total_steps):
        start_step = 0.0
        for i, phase in enumerate(phases):
            end_step = phase["end_step"]
            if step_num <= end_step or i == len(phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                out.append(annealing_cos(phase["start_lr"], phase["end_lr"], pct))
                break
            start_step = phase["end_step"]
    return out


@pytest.mark.parametrize("epochs, pct_start", [(10, 0.3), (40, 0.25), (7, 0.5)])
def test_one_cycle_matches_pytorch_one_cycle_lr(epochs, pct_start):
    """Smith & Topin (2019) as PyTorch implements it, one step per epoch."""
    expected = pytorch_one_cycle(0.1, epochs, pct_start, 25.0, 1e4)
    got = rates("one_cycle", 0.1, epochs, pct_start=pct_start, div_factor=25.0, final_div_factor=1e4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] == pytest.approx(0.1 / 25)
    peak = pct_start * epochs  # the peak is reached exactly when it falls on an epoch
    assert max(got) <= 0.1 and (max(got) == pytest.approx(0.1)) == float(peak).is_integer()
    assert got[-1] == pytest.approx(0.1 / 25 / 1e4)


def test_one_cycle_with_a_rising_phase_shorter_than_one_epoch_starts_at_the_peak():
    got = rates("one_cycle", 0.1, 3, pct_start=0.2)
    assert got[0] == 0.1 and got[1] < got[0] and got[2] < got[1]


def pytorch_reduce_on_plateau(lr, losses, factor, patience, threshold, min_lr):
    """torch.optim.lr_scheduler.ReduceLROnPlateau (mode='min', threshold_mode='rel', cooldown=0).

    Returns the rate of each epoch: the rate after the previous epoch's step().
    """
    best, bad, out = math.inf, 0, []
    for loss in losses:
        out.append(lr)
        if loss < best * (1.0 - threshold):
            best, bad = loss, 0
        else:
            bad += 1
        if bad > patience:
            new_lr = max(lr * factor, min_lr)
            if lr - new_lr > 1e-8:
                lr = new_lr
            bad = 0
    return out


def test_plateau_reduces_after_patience_epochs_without_relative_improvement():
    losses = [1.0, 0.9, 0.9, 0.89995, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    schedule = make_schedule("plateau", 1.0, len(losses), plateau_factor=0.5, plateau_patience=2,
                             plateau_threshold=1e-4, min_lr=0.2)
    got = []
    for epoch, loss in enumerate(losses, start=1):
        got.append(schedule.lr_at(epoch))
        schedule.observe(loss)
    assert got == pytorch_reduce_on_plateau(1.0, losses, 0.5, 2, 1e-4, 0.2)
    # By hand: 0.89995 is not 1e-4 better than 0.9 (a bad epoch), so three bad epochs in a
    # row end at epoch 5 (rate halved from epoch 6); 0.5 resets; then halved to the floor 0.2.
    assert got == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]


@pytest.mark.parametrize("settings", [
    {"lr_schedule": "constant"},
    {"lr_schedule": "cosine", "warmup_epochs": 2, "min_lr": 1e-4},
    {"lr_schedule": "one_cycle", "pct_start": 0.25},
    {"lr_schedule": "step", "step_size": 3, "gamma": 0.1},
])
def test_history_records_the_rate_each_epoch_used(settings):
    data = load_dataset("moons", n_samples=200, seed=0)
    model = ann.MLP(hidden_layers=[8], lr=0.01, epochs=9, **settings)
    history = model.fit(data.X, data.y)
    name = settings["lr_schedule"]
    other = {k: v for k, v in settings.items() if k != "lr_schedule"}
    assert history.history["lr"] == rates(name, 0.01, 9, **other)


def test_plateau_in_fit_watches_the_validation_loss():
    data = load_dataset("moons", n_samples=300, noise=0.3, seed=0)
    split = 200
    model = ann.MLP(hidden_layers=[32], lr=0.05, epochs=40, lr_schedule="plateau",
                    plateau_patience=1, plateau_factor=0.5, min_lr=1e-4)
    history = model.fit(data.X[:split], data.y[:split], validation_data=(data.X[split:], data.y[split:]))
    lrs = history.history["lr"]
    assert lrs == pytorch_reduce_on_plateau(0.05, history.history["val_loss"], 0.5, 1, 1e-4, 1e-4)
    assert min(lrs) < 0.05  # the validation loss did stall in 40 epochs at this rate


def test_a_schedule_does_not_change_a_constant_run():
    """The constant schedule is the engine of before: same seed, same weights."""
    data = load_dataset("moons", n_samples=200, seed=0)
    plain = ann.MLP(hidden_layers=[8], epochs=5).fit(data.X, data.y).history
    cosine_flat = ann.MLP(hidden_layers=[8], epochs=5, lr_schedule="step", step_size=100).fit(data.X, data.y).history
    assert plain == cosine_flat
