"""Fitting one network: the epochs' history, the stop signal, the diagnosis and final metrics.

The part of a training run shared by the untracked and the tracked run
(:mod:`sweeps.training.run`, :mod:`sweeps.training.tracked`):

* :class:`Recorder` -- the first fit callback: the run's one per-epoch history;
* :class:`StopRun` / :class:`RunEnd` -- the generic stop signal a callback raises (status + tags),
  and how a run ends;
* :func:`fit` -- ``MLP.fit`` on data standardised once, then the diagnosis and final metrics
  (:class:`Fitted`);
* :class:`Terminated` / :func:`sigterm_raises` -- SIGTERM as an exception while a run trains.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import ann
from sweeps.core import vocabulary as V
from sweeps.training import diagnosis as D
from sweeps.training.data import PreparedData
from sweeps.training.threads import blas_threads, chosen_threads, current_threads, largest_product

log = logging.getLogger(__name__)

Callback = Callable[[int, Mapping[str, float]], Any]
#: ``extra`` of the log records that ``ann-train`` prints in its summary (kept off its console).
SUMMARY = {"summary": True}


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM during a run."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")


@dataclass
class RunEnd:
    """How a run ends: its MLflow status and what is written with its last batch."""

    status: str = "FINISHED"
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class StopRun(Exception):
    """Raised by a callback to stop training: the run ends as ``end`` says, then this propagates.

    ``str()`` is the reason; :attr:`epoch` is the last epoch trained.
    """

    def __init__(self, reason: str, end: RunEnd, epoch: int = 0) -> None:
        super().__init__(reason)
        self.end, self.epoch = end, epoch


# --------------------------------------------------------------------------- signals


@contextlib.contextmanager
def sigterm_raises() -> Iterable[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread while the block runs.

    Left alone when not in the main thread or when someone else handles SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- train


class Recorder:
    """The first fit callback: keeps the run's one history and hands each epoch to ``sink``."""

    def __init__(self, sink: Callable[[int, Mapping[str, float]], None] | None, epochs: int) -> None:
        self.sink = sink
        self.history: dict[str, list[float]] = {}
        self.epochs_seen = 0
        self.every = max(1, epochs // 20)
        self.epochs = epochs

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epochs_seen = epoch
        for key, value in logs.items():
            if key != "epoch_seconds":
                self.history.setdefault(key, []).append(float(value))
        if self.sink is not None:
            self.sink(epoch, logs)
        if epoch == 1 or epoch % self.every == 0 or epoch == self.epochs:
            shown = "  ".join(f"{V.metric_name(k)}={v:.4g}" for k, v in logs.items() if k != "epoch_seconds")
            log.info("epoch %d/%d  %s", epoch, self.epochs, shown)


@dataclass
class Fitted:
    """What a fit gave: the diagnosis, the final metrics, the epoch of the kept weights."""

    model: ann.MLP | ann.Ensemble
    recorder: Recorder
    history: Any                     # the engine's History, None when the loss became non-finite
    non_finite: ann.NonFiniteLossError | None
    diagnosis: D.Diagnosis
    metrics: dict[str, float]
    model_epoch: int

    @property
    def stop_reason(self) -> str | None:
        if self.non_finite is not None:
            return str(self.non_finite)
        return (self.history.stop_reason or None) if self.history is not None else None

    def result(self, **extra) -> dict[str, Any]:
        """The run's result: ``extra``, the fit tags, the final metrics, ``curves`` and ``stop_reason``."""
        out = {**extra, **fit_tags(self.diagnosis), **self.metrics, "curves": self.recorder.history}
        if self.stop_reason:
            out["stop_reason"] = self.stop_reason
        return out


def fit(model: ann.MLP, data: PreparedData, recorder: Recorder, callbacks: Sequence[Callback],
        members: int = 1, threads: int | None = None) -> Fitted:
    """Run ``fit`` (a non-finite loss ends it early), then diagnose and score the network.

    ``members`` > 1 (``training.ensemble``): then train ``members - 1`` more networks of the
    same configuration, seeded ``seed + 1``, ``seed + 2``, ... (not recorded: the first
    network is the run's, its curves and diagnosis; ``callbacks`` still stop them), and score
    their :class:`ann.Ensemble`. ``threads``: ``training.threads`` (None: auto, :mod:`sweeps.training.threads`).
    """
    with blas_threads(chosen_threads(threads, step_product(model, data))):
        return _fit(model, data, recorder, callbacks, members)


def training_threads(model: ann.MLP, data: PreparedData, threads: int | None) -> int | None:
    """The BLAS threads :func:`fit` trains ``model`` on ``data`` with (None: no BLAS library found)."""
    return chosen_threads(threads, step_product(model, data)) or current_threads()


def step_product(model: ann.MLP, data: PreparedData) -> int:
    """Multiply-adds of the largest matrix product of one of ``model``'s training steps on ``data``."""
    n_rows, n_features = len(data.train), data.n_features
    n_outputs = data.dataset.n_classes if data.task == "multiclass" else 1
    return largest_product(n_features, model.hidden_layers, n_outputs or 1, min(model.batch_size, n_rows))


def _fit(model: ann.MLP, data: PreparedData, recorder: Recorder, callbacks: Sequence[Callback], members: int) -> Fitted:
    if model.standardize:  # standardised once per data set and dtype, reused by every run of the process
        prepared = data.standardized(model.dtype)
        X, X_val, X_test, scaler = prepared.X_train, prepared.X_val, prepared.X_test, prepared.scaler
    else:
        X, X_val, X_test, scaler = data.X_train, data.X_val, data.X_test, None
    validation = (X_val, data.y_val) if X_val is not None else None
    history = non_finite = None
    try:
        history = model.fit(X, data.y_train, validation_data=validation, callbacks=[recorder, *callbacks],
                            standardized_by=scaler)
    except ann.NonFiniteLossError as error:
        non_finite = error
    fitted = _summaries(model, data, recorder, history, non_finite, (X_test, scaler))
    if members > 1 and history is not None:
        fitted = _ensemble(fitted, data, members, X, validation, scaler, callbacks)
    return fitted


def _ensemble(fitted: Fitted, data: PreparedData, members: int, X, validation, scaler, callbacks) -> Fitted:
    """``fitted`` with its network as the first of ``members`` (the others trained now): the
    ensemble's test scores, its size, and the first network's test scores beside them."""
    first = fitted.model
    networks = [first]
    for index in range(1, members):
        seed = None if first.seed is None else (first.seed + index) % 2**32
        member = ann.MLP(**{**first.get_params(), "seed": seed})
        try:
            member.fit(X, data.y_train, validation_data=validation, callbacks=list(callbacks), standardized_by=scaler)
        except ann.NonFiniteLossError as error:
            log.warning("ensemble member %d (seed %s) is left out: %s", index + 1, seed, error)
            continue
        networks.append(member)
    ensemble = ann.Ensemble(networks)
    metrics = dict(fitted.metrics)
    metrics[V.ENSEMBLE_MEMBERS] = float(len(networks))
    metrics[V.N_PARAMETERS] = float(ensemble.n_parameters_)
    if data.X_test is not None:
        for key, value in ensemble.evaluate(data.X_test, data.y_test).items():
            metrics[V.ENSEMBLE_FIRST_PREFIX + key] = metrics.get(f"{key}/test", math.nan)
            metrics[f"{key}/test"] = value
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    return dataclasses.replace(fitted, model=ensemble, metrics=metrics)


def _summaries(model: ann.MLP, data: PreparedData, recorder: Recorder, history, non_finite, test) -> Fitted:
    """Diagnosis, final metrics and the epoch the final weights belong to. ``test``: the test
    inputs as the model takes them and the scaler they are standardised by (None: raw)."""
    curves = recorder.history
    epochs_run, best = (history.epochs, history.best_epoch) if history is not None else (recorder.epochs_seen, 0)
    restored = model.early_stopping and model.restore_best_weights and history is not None
    model_epoch = best if restored else epochs_run
    diagnosis = D.diagnose(
        curves, data.task, model.constant_loss(data.y_train) if model.network_ is not None else math.nan,
        baseline=None if data.task == "regression" else D.majority_share(data.y_train),
        non_finite=non_finite is not None, delivered_epoch=model_epoch,
    )
    best = best or diagnosis.best_epoch
    metrics: dict[str, float] = {}
    if history is not None:
        metrics[V.FIT_SECONDS] = history.fit_seconds
        metrics[V.STOPPED_EARLY] = float(history.stopped_early)
    metrics[V.EPOCHS_RUN] = float(epochs_run)
    metrics[V.BEST_EPOCH] = float(best)
    metrics[V.N_PARAMETERS] = float(model.n_parameters_) if model.network_ is not None else math.nan
    if best:
        for key, values in curves.items():
            if key.startswith("val_") and len(values) >= best:
                metrics[V.best_metric(V.metric_name(key))] = values[best - 1]
    X_test, scaler = test
    if history is not None and X_test is not None:
        for key, value in model.evaluate(X_test, data.y_test, standardized_by=scaler).items():
            metrics[f"{key}/test"] = value
    metrics.update(diagnosis.metrics())
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    return Fitted(model, recorder, history, non_finite, diagnosis, metrics, model_epoch)


def fit_tags(diagnosis: D.Diagnosis) -> dict[str, str]:
    """The run tags of the diagnosis: ``fit``, ``fit_reason`` and (when there is one) ``fit_hint``."""
    tags = {V.TAG_FIT: diagnosis.label, V.TAG_FIT_REASON: diagnosis.reason}
    if diagnosis.hint:
        tags[V.TAG_FIT_HINT] = diagnosis.hint
    return tags
