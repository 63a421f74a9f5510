"""Fit diagnosis: is a trained network good, overfitting, underfitting or diverged?

The diagnosis reads only the learning curves (per-epoch training and validation loss and
the task's score: accuracy, or R² for regression) and gives one label with its reason.

Quantities (epochs are 1-based, ``T`` is the last epoch run):

``best_epoch`` ``b``
    The epoch with the lowest validation loss (training loss without validation data).
``gap_best``, ``gap_last``
    The generalisation gap, validation loss minus training loss, at ``b`` and at ``T``.
``val_rise``
    How far the validation loss ended above its minimum: ``(val[T] - val[b]) / val[b]``.
``train_trend``, ``val_trend``
    Relative change of the loss over the last window of ``w = max(2, T // 5)`` epochs:
    ``(mean(last w) - mean(w before)) / mean(w before)``; negative means still falling.
    Needs ``T >= 4`` (else 0).
``train_skill``, ``val_skill``
    The score as a fraction of the way from a constant predictor to a perfect one:
    ``(score - baseline) / (1 - baseline)``, where the baseline is the share of the
    majority class in the training data (accuracy) or 0 (R²). 1 is perfect, 0 is no
    better than always predicting the same thing. ``train_skill`` is taken at ``b``.
``skill_gap``
    ``train_skill - val_skill`` at ``T``.

Rules, applied in this order (the thresholds are the module constants below):

1. **diverged** -- a loss became NaN or infinite, or the training loss ended above its
   first value and more than ``DIVERGE_FACTOR`` (2) times its minimum.
2. **overfit** (needs validation data) -- the validation loss ended more than
   ``OVERFIT_RISE`` (10 %) above its minimum while the training loss kept falling after
   the best epoch, or the skill gap at the end is above ``OVERFIT_SKILL_GAP`` (0.2).
3. **underfit** -- the model at its best epoch is not even good on its training data
   (``train_skill < UNDERFIT_SKILL``, 0.5), or it was still improving when training
   ended (the monitored loss fell by more than ``UNDERFIT_TREND``, 5 %, over the last
   window: train longer or faster).
4. **good** -- none of the above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

DIVERGE_FACTOR = 2.0
OVERFIT_RISE = 0.10
OVERFIT_SKILL_GAP = 0.20
UNDERFIT_SKILL = 0.50
UNDERFIT_TREND = 0.05

LABELS = ("good", "overfit", "underfit", "diverged")
_EPS = 1e-12


@dataclass(frozen=True)
class Diagnosis:
    """The label, a one-line reason and the numbers the rules used."""

    label: str
    reason: str
    best_epoch: int
    numbers: dict[str, float] = field(default_factory=dict)

    def metrics(self, prefix: str = "fit/") -> dict[str, float]:
        """The finite numbers, named for MLflow (``fit/gap_best``, ...)."""
        return {prefix + key: value for key, value in self.numbers.items() if math.isfinite(value)}


def skill(score: float, baseline: float) -> float:
    """``(score - baseline) / (1 - baseline)``: 0 for a constant predictor, 1 for a perfect one."""
    if not math.isfinite(score) or baseline >= 1.0:
        return math.nan
    return (score - baseline) / (1.0 - baseline)


def trend(curve: Sequence[float]) -> float:
    """Relative change of ``curve`` over its last window (negative: still falling)."""
    n = len(curve)
    if n < 4:
        return 0.0
    w = max(2, n // 5)
    w = min(w, n // 2)
    late = sum(curve[n - w :]) / w
    early = sum(curve[n - 2 * w : n - w]) / w
    return (late - early) / max(abs(early), _EPS)


def diagnose(
    history: Mapping[str, Sequence[float]],
    task: str,
    baseline: float | None = None,
    non_finite: bool = False,
) -> Diagnosis:
    """Diagnose a run from its per-epoch ``history`` (the engine's ``History.history``).

    Args:
        history: ``train_loss`` and optionally ``val_loss``, with ``train_accuracy`` /
            ``val_accuracy`` (classification) or ``train_r2`` / ``val_r2`` (regression).
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        baseline: the score of a constant predictor: the majority-class share of the
            training labels for classification; ignored (0) for regression.
        non_finite: the loss became NaN or infinite (training was stopped by the engine).
    """
    train = [float(v) for v in history.get("train_loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    has_val = len(val) == len(train) and len(val) > 0
    score_name = "r2" if task == "regression" else "accuracy"
    base = 0.0 if task == "regression" else (baseline if baseline is not None else 0.5)
    train_score = [float(v) for v in history.get(f"train_{score_name}", [])]
    val_score = [float(v) for v in history.get(f"val_{score_name}", [])]

    T = len(train)
    nan = math.nan
    monitored = val if has_val else train
    finite = all(math.isfinite(v) for v in train + val)
    if T and finite:
        best = min(range(T), key=lambda i: monitored[i]) + 1
    else:
        best = 0
    numbers: dict[str, float] = {
        "gap_best": nan, "gap_last": nan, "val_rise": nan,
        "train_trend": nan, "val_trend": nan,
        "train_skill": nan, "val_skill": nan, "skill_gap": nan,
    }

    if non_finite or not finite or T == 0:
        where = f" after epoch {T}" if T else " in the first epoch"
        return Diagnosis("diverged", f"the loss became NaN or infinite{where}", best, numbers)

    b = best - 1
    numbers["train_trend"] = trend(train)
    if len(train_score) == T:
        numbers["train_skill"] = skill(train_score[b], base)
    if has_val:
        numbers["gap_best"] = val[b] - train[b]
        numbers["gap_last"] = val[-1] - train[-1]
        numbers["val_rise"] = (val[-1] - val[b]) / max(abs(val[b]), _EPS)
        numbers["val_trend"] = trend(val)
        if len(val_score) == T and len(train_score) == T:
            numbers["val_skill"] = skill(val_score[-1], base)
            numbers["skill_gap"] = skill(train_score[-1], base) - numbers["val_skill"]

    if train[-1] > train[0] and train[-1] > DIVERGE_FACTOR * min(train):
        return Diagnosis(
            "diverged",
            f"the training loss ended at {train[-1]:.4g}, above its start ({train[0]:.4g}) "
            f"and over {DIVERGE_FACTOR:g}x its minimum ({min(train):.4g})",
            best, numbers,
        )

    if has_val:
        rise = numbers["val_rise"]
        if rise > OVERFIT_RISE and train[-1] < train[b]:
            return Diagnosis(
                "overfit",
                f"the validation loss ended {rise:.0%} above its minimum at epoch {best} "
                f"while the training loss kept falling (gap {numbers['gap_best']:.3g} -> {numbers['gap_last']:.3g})",
                best, numbers,
            )
        gap = numbers["skill_gap"]
        if math.isfinite(gap) and gap > OVERFIT_SKILL_GAP:
            return Diagnosis(
                "overfit",
                f"the training {score_name} is well above the validation {score_name} "
                f"(skill {numbers['train_skill']:.2f} vs {numbers['val_skill']:.2f} of the way from a constant predictor)",
                best, numbers,
            )

    train_skill = numbers["train_skill"]
    if math.isfinite(train_skill) and train_skill < UNDERFIT_SKILL:
        return Diagnosis(
            "underfit",
            f"even on the training data the model gets only {train_skill:.2f} of the way from a "
            f"constant predictor to a perfect one ({score_name} at epoch {best}): it is too simple or trained too little",
            best, numbers,
        )
    last_trend = numbers["val_trend"] if has_val else numbers["train_trend"]
    if last_trend < -UNDERFIT_TREND:
        which = "validation" if has_val else "training"
        return Diagnosis(
            "underfit",
            f"the {which} loss was still falling ({-last_trend:.0%} over the last epochs) "
            f"when training ended: train longer or with a larger learning rate",
            best, numbers,
        )
    return Diagnosis(
        "good",
        f"the validation loss levelled off at epoch {best} with a small gap to the training loss"
        if has_val else f"the training loss levelled off (best epoch {best})",
        best, numbers,
    )


def majority_share(labels: Sequence[int]) -> float:
    """The share of the most frequent label (the accuracy of always predicting it)."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.size == 0:
        return math.nan
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)
