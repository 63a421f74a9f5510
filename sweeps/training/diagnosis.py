"""Fit diagnosis: did a training run deliver a good model, and if not, what went wrong?

The diagnosis reads the learning curves (per-epoch training and validation loss and the
task's score: accuracy, or R² for regression) and gives one **label** with a one-line
**reason** naming the numbers, plus an optional **hint**:

=============  ==========================================================================
``good``       none of the faults below
``overfit``    validation got worse while training kept improving, or a large gap
               between training and validation at the delivered epoch
``underfit``   the model cannot fit even its training data: a high training loss
               relative to a constant predictor
``unstable``   the training loss jumps back up instead of settling (learning rate too high)
``diverged``   the loss became NaN or infinite, or exploded far above a constant predictor
=============  ==========================================================================

Hint ``train longer``: the monitored loss was still falling clearly when training stopped.
That is not a fault of the delivered model, so it is reported beside the label, not as one.

**The scale.** Every loss threshold is a fraction of ``L0``, the loss of the best constant
predictor on the training targets (:meth:`ann.MLP.constant_loss`: the class entropy for
cross-entropy, the target variance for MSE). ``loss / L0`` is 1 for a model that learned
nothing and 0 for a perfect one, whatever the task, the number of classes or the units of
the target; so a loss that creeps from 0.0093 to 0.0075 moves by 0.3 % of ``L0``, not by
20 %.

**The delivered epoch** ``d``: the epoch whose weights the run delivers -- the best epoch
when early stopping restored the best weights, else the last epoch ``T``. Epochs after
``d`` (early stopping's patience) are not held against the model.

Quantities (epochs are 1-based; ``train``/``val`` are the loss curves, divided by ``L0``
where a rule says "in ``L0``"):

``train_loss_ratio``, ``val_loss_ratio``
    ``train[d] / L0`` and ``val[d] / L0``.
``gap``
    ``(val[d] - train[d]) / L0``: the generalisation gap in ``L0``.
``val_rise``
    ``(val[d] - min(val[1..d])) / L0``: how far validation got worse before ``d``.
``train_gain_after_best_val``
    ``(train[b] - train[d]) / L0`` where ``b`` is the epoch of ``min(val[1..d])``:
    positive when training kept improving while validation got worse.
``train_unsettled``
    The share of epochs whose training loss is more than ``UNSETTLED_MARGIN`` (0.1) ``L0``
    above its best so far: near 0 for a loss that falls and settles (a rare spike that
    recovers included), large for one that oscillates or climbs back.
``val_jitter``
    The median over epochs of ``|log(val[t] / val[t-1])|``, a move smaller than
    ``JITTER_FLOOR`` (0.01) ``L0`` counting as 0: how much the validation loss typically
    jumps from one epoch to the next (the training loss is averaged over an epoch's
    batches and hides what the validation loss, measured at the epoch's end, shows).
``train_peak``
    ``max(train) / L0``.
``train_skill``, ``val_skill``, ``skill_gap``
    The score at ``d`` as a fraction of the way from a constant predictor to a perfect one,
    ``(score - baseline) / (1 - baseline)`` (baseline: the majority-class share for
    accuracy, 0 for R²), and ``train_skill - val_skill`` (classification only: a small
    validation set's own variance moves R², so for regression the loss gap decides).
``still_falling``
    ``(mean(m[T-2w+1..T-w]) - mean(m[T-w+1..T])) / L0`` with ``w = max(2, T // 5)``:
    how much the monitored loss ``m`` (validation, else training) fell over the last
    window; only when ``d = T`` (a restored early stop is not still falling).

Rules, in this order (the constants are the module constants below):

1. **diverged**: a loss is NaN or infinite; or ``train_peak > EXPLODE_RATIO`` (10: the loss
   blew up to ten times a constant predictor's).
2. **unstable**: ``train_unsettled > UNSTABLE_SHARE`` (0.2: the training loss spent more
   than a fifth of the epochs well above its best: it oscillates or climbs back); or
   ``val_jitter > UNSTABLE_JITTER`` (0.25: the validation loss typically moves by more than
   a quarter in log terms, ~28 %, every epoch).
3. **underfit**: ``train_loss_ratio > UNDERFIT_LOSS`` (0.6) or ``train_skill <
   UNDERFIT_SKILL`` (0.4): the model is poor on its own training data (checked before
   overfitting: a model that fits nothing has nothing to overfit).
4. **overfit** (needs validation data): ``val_rise > OVERFIT_RISE`` (0.05) while the training
   loss did not get worse (``train_gain_after_best_val >= 0``); or ``gap > OVERFIT_GAP``
   (0.1) with ``val[d] > OVERFIT_GAP_RATIO * train[d]`` (1.5); or, for classification,
   ``skill_gap > OVERFIT_SKILL_GAP`` (0.2).
5. **good**.

Hint: ``train longer`` when ``still_falling > STILL_FALLING`` (0.02) and the label is good or
underfit.

The rules were checked on a labelled corpus of real runs of known cause
(``tests/train/test_train_fit_corpus.py``; docs/explanation/fit-diagnosis.md has the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from sweeps.core import vocabulary as V

EXPLODE_RATIO = 10.0
UNSETTLED_MARGIN = 0.1
UNSTABLE_SHARE = 0.2
JITTER_FLOOR = 0.01
UNSTABLE_JITTER = 0.25
OVERFIT_RISE = 0.05
OVERFIT_GAP = 0.10
OVERFIT_GAP_RATIO = 1.5
OVERFIT_SKILL_GAP = 0.20
UNDERFIT_LOSS = 0.60
UNDERFIT_SKILL = 0.40
STILL_FALLING = 0.02

#: The hint for a run whose loss was still falling when it stopped.
HINT_TRAIN_LONGER = "train longer"


@dataclass(frozen=True)
class Diagnosis:
    """The label, a one-line reason, the hint (or ``""``) and the numbers the rules used."""

    label: str
    reason: str
    best_epoch: int
    delivered_epoch: int = 0
    hint: str = ""
    numbers: dict[str, float] = field(default_factory=dict)

    def metrics(self, prefix: str = V.FIT_PREFIX) -> dict[str, float]:
        """The finite numbers, named for MLflow (``fit/gap``, ...)."""
        return {prefix + key: value for key, value in self.numbers.items() if math.isfinite(value)}

    @property
    def summary(self) -> str:
        """``label: reason`` with the hint, one line."""
        hint = f" [hint: {self.hint}]" if self.hint else ""
        return f"{self.label}: {self.reason}{hint}"


# ---------------------------------------------------------------------- quantities


def skill(score: float, baseline: float) -> float:
    """``(score - baseline) / (1 - baseline)``: 0 for a constant predictor, 1 for a perfect one."""
    if not math.isfinite(score) or baseline >= 1.0:
        return math.nan
    return (score - baseline) / (1.0 - baseline)


def share_above_best(curve: Sequence[float], margin: float) -> float:
    """The share of points of ``curve`` more than ``margin`` above the lowest value before them."""
    values = np.asarray(curve, dtype=np.float64)
    if values.size == 0:
        return 0.0
    return float(np.mean(values - np.minimum.accumulate(values) > margin))


def jitter(curve: Sequence[float], floor: float) -> float:
    """Median of ``|log(curve[t] / curve[t-1])|``, moves below ``floor`` counted as 0; 0 below 3 points."""
    values = np.asarray(curve, dtype=np.float64)
    if values.size < 3 or np.any(values <= 0):
        return 0.0
    moves = np.abs(np.diff(np.log(values)))
    moves[np.abs(np.diff(values)) < floor] = 0.0
    return float(np.median(moves))


def fall_over_last_window(curve: Sequence[float]) -> float:
    """How much ``curve`` fell over its last window of ``w = max(2, T // 5)`` epochs:
    ``mean(window before) - mean(last window)`` (positive: still falling); 0 below 4 epochs."""
    n = len(curve)
    if n < 4:
        return 0.0
    w = min(max(2, n // 5), n // 2)
    return float(np.mean(curve[n - 2 * w : n - w]) - np.mean(curve[n - w :]))


def majority_share(labels: Sequence) -> float:
    """The share of the most frequent label (the accuracy of always predicting it)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return math.nan
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)


@dataclass(frozen=True)
class _Curves:
    """The inputs of the rules, cut to what the run delivered."""

    train: list[float]
    val: list[float]
    train_score: list[float]
    val_score: list[float]
    L0: float
    baseline: float
    score_name: str
    delivered: int  # 1-based

    @property
    def has_val(self) -> bool:
        return len(self.val) == len(self.train) and len(self.val) > 0


def _numbers(c: _Curves) -> dict[str, float]:
    d = c.delivered - 1
    nan = math.nan
    L0 = c.L0
    n = dict.fromkeys(V.FIT_NUMBERS, nan)
    n["constant_loss"] = L0
    n["train_loss_ratio"] = c.train[d] / L0
    n["train_unsettled"] = share_above_best(c.train, UNSETTLED_MARGIN * L0)
    n["train_peak"] = max(c.train) / L0
    monitored = c.val if c.has_val else c.train
    if c.delivered == len(c.train):
        n["still_falling"] = fall_over_last_window(monitored) / L0
    else:
        n["still_falling"] = 0.0
    if len(c.train_score) == len(c.train):
        n["train_skill"] = skill(c.train_score[d], c.baseline)
    if c.has_val:
        val_to_d = c.val[: d + 1]
        b = int(np.argmin(val_to_d))
        n["val_loss_ratio"] = c.val[d] / L0
        n["val_jitter"] = jitter(c.val, JITTER_FLOOR * L0)
        n["gap"] = (c.val[d] - c.train[d]) / L0
        n["val_rise"] = (c.val[d] - c.val[b]) / L0
        n["train_gain_after_best_val"] = (c.train[b] - c.train[d]) / L0
        if c.score_name == "accuracy" and len(c.val_score) == len(c.val) and len(c.train_score) == len(c.train):
            n["val_skill"] = skill(c.val_score[d], c.baseline)
            n["skill_gap"] = n["train_skill"] - n["val_skill"]
    return n


# --------------------------------------------------------------------------- rules


def _diverged(c: _Curves, n: Mapping[str, float]) -> str | None:
    if n["train_peak"] > EXPLODE_RATIO:
        return (f"the training loss exploded to {max(c.train):.4g}, {n['train_peak']:.0f}x a constant "
                f"predictor's {c.L0:.3g}: learning rate far too high")
    return None


def _unstable(c: _Curves, n: Mapping[str, float]) -> str | None:
    if n["train_unsettled"] > UNSTABLE_SHARE:
        return (f"the training loss did not settle: {n['train_unsettled']:.0%} of the epochs ended more than "
                f"{UNSETTLED_MARGIN:g} of a constant predictor's loss above its best ({min(c.train):.3g}): "
                f"learning rate too high")
    if n["val_jitter"] > UNSTABLE_JITTER:
        return (f"the validation loss jumps by {math.expm1(n['val_jitter']):.0%} from one epoch to the next "
                f"(median): learning rate too high")
    return None


def _overfit(c: _Curves, n: Mapping[str, float]) -> str | None:
    if not c.has_val:
        return None
    d = c.delivered - 1
    if n["val_rise"] > OVERFIT_RISE and n["train_gain_after_best_val"] >= 0:
        best = int(np.argmin(c.val[: c.delivered])) + 1
        return (f"the validation loss rose from {c.val[best - 1]:.3g} (epoch {best}) to {c.val[d]:.3g} "
                f"(epoch {c.delivered}) while the training loss fell to {c.train[d]:.3g}")
    if n["gap"] > OVERFIT_GAP and c.val[d] > OVERFIT_GAP_RATIO * c.train[d]:
        return (f"the validation loss {c.val[d]:.3g} is far above the training loss {c.train[d]:.3g} "
                f"at epoch {c.delivered} (a gap of {n['gap']:.2f} of a constant predictor's loss)")
    if math.isfinite(n["skill_gap"]) and n["skill_gap"] > OVERFIT_SKILL_GAP:
        return (f"the training accuracy {c.train_score[d]:.3g} is well above the validation "
                f"accuracy {c.val_score[d]:.3g} at epoch {c.delivered}")
    return None


def _underfit(c: _Curves, n: Mapping[str, float]) -> str | None:
    ratio, train_skill = n["train_loss_ratio"], n["train_skill"]
    if ratio > UNDERFIT_LOSS or (math.isfinite(train_skill) and train_skill < UNDERFIT_SKILL):
        return (f"even on the training data the loss is {ratio:.2f} of a constant predictor's"
                + (f" and the {c.score_name} {c.train_score[c.delivered - 1]:.3g}" if c.train_score else "")
                + ": too little capacity or learning")
    return None


#: Each rule returns its reason, or None when it does not apply (tried in this order).
RULES = {
    "diverged": _diverged,
    "unstable": _unstable,
    "underfit": _underfit,
    "overfit": _overfit,
}


def _good_reason(c: _Curves) -> str:
    d = c.delivered - 1
    if c.has_val:
        return (f"validation loss {c.val[d]:.3g} vs training {c.train[d]:.3g} at epoch {c.delivered} "
                f"({c.val[d] / c.L0:.2f} of a constant predictor's)")
    return f"training loss {c.train[d]:.3g} at epoch {c.delivered} ({c.train[d] / c.L0:.2f} of a constant predictor's)"


# ------------------------------------------------------------------------ diagnose


def diagnose(
    history: Mapping[str, Sequence[float]],
    task: str,
    constant_loss: float,
    *,
    baseline: float | None = None,
    non_finite: bool = False,
    delivered_epoch: int | None = None,
) -> Diagnosis:
    """Diagnose a run from its per-epoch ``history`` (the engine's ``History.history``).

    Args:
        history: ``train_loss`` and optionally ``val_loss``, with ``train_accuracy`` /
            ``val_accuracy`` (classification) or ``train_r2`` / ``val_r2`` (regression).
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        constant_loss: ``L0``, the loss of the best constant predictor on the training
            targets, on the scale of the history's losses (:meth:`ann.MLP.constant_loss`).
        baseline: the score of a constant predictor: the majority-class share of the
            training labels for classification; ignored (0) for regression.
        non_finite: the loss became NaN or infinite (training was stopped by the engine).
        delivered_epoch: the epoch whose weights the run delivers (the best epoch after
            early stopping restored it); default the last epoch.

    >>> d = diagnose({"train_loss": [0.6, 0.3, 0.2, 0.15], "val_loss": [0.6, 0.35, 0.3, 0.29]},
    ...              "binary", constant_loss=0.693)
    >>> d.label, d.delivered_epoch
    ('good', 4)
    """
    train = [float(v) for v in history.get("train_loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    has_val = len(val) == len(train) and len(val) > 0
    monitored = val if has_val else train
    finite = all(math.isfinite(v) for v in train + val)
    T = len(train)
    best = int(np.argmin(monitored)) + 1 if T and finite else 0
    empty = dict.fromkeys(V.FIT_NUMBERS, math.nan)

    if non_finite or not finite or T == 0:
        where = f" after epoch {T}" if T else " in the first epoch"
        return Diagnosis("diverged", f"the loss became NaN or infinite{where}: learning rate far too high",
                         best, T, "", empty)
    if not math.isfinite(constant_loss) or constant_loss < 0:
        raise ValueError(f"constant_loss={constant_loss!r}: expected a finite loss >= 0")
    if constant_loss == 0:
        # Targets a constant predicts perfectly: there is nothing to learn or to judge.
        return Diagnosis("good", "a constant predicts these targets exactly", best, T, "", empty)

    score_name = "r2" if task == "regression" else "accuracy"
    delivered = min(max(1, delivered_epoch or T), T)
    curves = _Curves(
        train=train, val=val if has_val else [],
        train_score=[float(v) for v in history.get(f"train_{score_name}", [])],
        val_score=[float(v) for v in history.get(f"val_{score_name}", [])],
        L0=float(constant_loss),
        baseline=0.0 if task == "regression" else (baseline if baseline is not None else 0.5),
        score_name=score_name, delivered=delivered,
    )
    return _judge(curves, best, delivered)


def _judge(curves: "_Curves", best: int, delivered: int) -> Diagnosis:
    """The first rule of :data:`RULES` that holds gives the label (none: good), with its reason and hint."""
    numbers = _numbers(curves)
    label, reason = "good", None
    for name, rule in RULES.items():
        reason = rule(curves, numbers)
        if reason is not None:
            label = name
            break
    if reason is None:
        reason = _good_reason(curves)
    hint = HINT_TRAIN_LONGER if label in ("good", "underfit") and numbers["still_falling"] > STILL_FALLING else ""
    return Diagnosis(label, reason, best, delivered, hint, numbers)
