"""Learning-rate schedules: the learning rate of each epoch.

A schedule sets the optimizer's learning rate once per epoch, before the epoch's first
batch (the rate is constant within an epoch, and the history's ``lr`` is exactly the
rate the epoch used). ``lr`` below is the configured (peak) learning rate, ``e`` the
1-based epoch and ``E`` the number of epochs:

=================  ===================================================================
``constant``       ``lr``
``step``           ``lr * gamma ** floor((e - 1) / step_size)``    (PyTorch ``StepLR``)
``exponential``    ``lr * gamma ** (e - 1)``                (PyTorch ``ExponentialLR``)
``cosine``         linear warm-up ``lr * e / W`` for ``e <= W = warmup_epochs``, then
                   ``min_lr + (lr - min_lr) (1 + cos(pi (e - W - 1) / (E - W))) / 2``
                   (Loshchilov & Hutter 2017, SGDR eq. 5, one cycle without restarts;
                   the warm-up of Goyal et al. 2017)
``one_cycle``      from ``lr / div_factor`` up to ``lr`` over the first ``pct_start``
                   of the epochs, then down to ``lr / (div_factor * final_div_factor)``,
                   both halves cosine (Smith & Topin 2019; PyTorch ``OneCycleLR`` with
                   ``total_steps = E`` and ``three_phase=False``)
``plateau``        ``lr``, multiplied by ``plateau_factor`` (not below ``min_lr``)
                   whenever the monitored loss (``val_loss``, else ``train_loss``) has
                   not improved on its best by the relative ``plateau_threshold`` for
                   more than ``plateau_patience`` epochs (PyTorch
                   ``ReduceLROnPlateau``, mode ``min``, threshold mode ``rel``)
=================  ===================================================================

Every schedule has :meth:`Schedule.lr_at` (the rate of epoch ``e``) and
:meth:`Schedule.observe` (the monitored loss at the end of an epoch; only ``plateau``
uses it).
"""

from __future__ import annotations

import math


class Schedule:
    """Base class and the ``constant`` schedule."""

    name = "constant"

    def __init__(self, lr: float, epochs: int, **_) -> None:
        self.base_lr = lr
        self.epochs = epochs

    def lr_at(self, epoch: int) -> float:
        """The learning rate of 1-based ``epoch``."""
        return self.base_lr

    def observe(self, monitored: float) -> None:
        """The monitored loss at the end of an epoch."""


class Constant(Schedule):
    name = "constant"


class Step(Schedule):
    name = "step"

    def __init__(self, lr, epochs, step_size=10, gamma=0.5, **_):
        super().__init__(lr, epochs)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** ((epoch - 1) // self.step_size)


class Exponential(Schedule):
    name = "exponential"

    def __init__(self, lr, epochs, gamma=0.5, **_):
        super().__init__(lr, epochs)
        self.gamma = gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch - 1)


class Cosine(Schedule):
    name = "cosine"

    def __init__(self, lr, epochs, warmup_epochs=0, min_lr=0.0, **_):
        super().__init__(lr, epochs)
        self.warmup, self.min_lr = warmup_epochs, min_lr

    def lr_at(self, epoch):
        lr, warmup = self.base_lr, self.warmup
        if epoch <= warmup:
            return lr * epoch / warmup
        progress = (epoch - warmup - 1) / (self.epochs - warmup)
        return self.min_lr + (lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


class OneCycle(Schedule):
    name = "one_cycle"

    def __init__(self, lr, epochs, pct_start=0.3, div_factor=25.0, final_div_factor=1e4, **_):
        super().__init__(lr, epochs)
        self.initial = lr / div_factor
        self.final = self.initial / final_div_factor
        # PyTorch's phase boundaries in steps counted from 0, with one step per epoch.
        self.peak_step = max(0.0, pct_start * epochs - 1.0)
        self.last_step = epochs - 1.0

    def lr_at(self, epoch):
        step = epoch - 1.0
        if step <= self.peak_step:
            progress = step / self.peak_step if self.peak_step > 0 else 1.0
            return _cosine_between(self.initial, self.base_lr, progress)
        progress = (step - self.peak_step) / (self.last_step - self.peak_step)
        return _cosine_between(self.base_lr, self.final, progress)


class Plateau(Schedule):
    name = "plateau"

    def __init__(self, lr, epochs, plateau_factor=0.1, plateau_patience=5,
                 plateau_threshold=1e-4, min_lr=0.0, **_):
        super().__init__(lr, epochs)
        self.factor, self.patience = plateau_factor, plateau_patience
        self.threshold, self.min_lr = plateau_threshold, min_lr
        self.current = lr
        self.best = math.inf
        self.bad_epochs = 0

    def lr_at(self, epoch):
        return self.current

    def observe(self, monitored):
        if monitored < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = monitored, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.current = max(self.current * self.factor, self.min_lr)
            self.bad_epochs = 0


def _cosine_between(start: float, end: float, progress: float) -> float:
    """From ``start`` (progress 0) to ``end`` (progress 1) along half a cosine."""
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, Step, Exponential, Cosine, OneCycle, Plateau)
}


def make_schedule(name: str, lr: float, epochs: int, **settings) -> Schedule:
    """The schedule ``name`` for peak rate ``lr`` over ``epochs``; other settings are ignored."""
    return SCHEDULES[name](lr, epochs, **settings)
