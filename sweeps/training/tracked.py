"""A training run tracked in MLflow, with the slow part of its end off the training thread.

What a run records (metric names put training and validation of one quantity in the
same MLflow chart section):

* params: the flattened config (``model.hidden_layers``, ``model.n_hidden_layers``,
  ``model.layer_1_units``, ``optimizer.lr``, ``training.batch_size``, ``dataset.name``,
  ...), plus what the data decided (``dataset.task``, ``dataset.n_train``, ...);
* per epoch, ``step=epoch``: ``loss/train``, ``loss/val``, ``accuracy/train``,
  ``accuracy/val`` (or ``mae/*``, ``rmse/*``, ``r2/*``) and ``time/epoch_seconds``,
  sent every ``tracking.flush_interval`` seconds while the run trains;
* at the end: ``loss/test`` and the task's metrics on the test set, ``best/loss/val``
  and the best epoch's other validation metrics, ``best_epoch``, ``epochs_run``,
  ``n_parameters``, ``time/fit_seconds``, the diagnosis numbers ``fit/*``;
* tags: ``fit`` (good / overfit / underfit / unstable / diverged), ``fit_reason``, ``fit_hint``
  (``train longer`` when the loss was still falling), ``blas_threads`` (``training.threads``
  resolved: the last bits of a run depend on it), ``seed``, ``versions.*``,
  ``git.commit``, ``command``, ``dataset``, ``task``, and the run's description
  (``mlflow.note.content``: the fit verdict, best epoch, test scores);
* artifacts: ``config/config.yaml`` (resolved), ``config/overrides.yaml``,
  ``plots/learning_curve.png``, and the network as a logged pyfunc model ``model``;
* once per experiment (or per sweep, for a child run): a saved view of the MLflow UI
  whose first chart is ``loss/train`` vs ``loss/val`` of every run (:mod:`sweeps.tracking.ui_views`).

Who writes what: the training thread creates the run, hands each epoch's metrics to a
:class:`~sweeps.tracking.metric_logger.MetricLogger` (params and config files go out from its
thread while the network trains) and, at the end, queues what decides the run in one
batch -- the last epochs' metrics, the final metrics and tags, the model's ``models:/``
id. The session's :class:`~sweeps.tracking.session.BackgroundWriter` then draws the
learning curve, writes and uploads the model's files and ends the run FINISHED, while
the next trial already trains. A single run (``ann-train``) writes its last batch before
:func:`train_tracked` returns; in a sweep's worker the last batch joins the writer's queue
too, and every write of the logger and the writer is made by the session's helper process
(:class:`~sweeps.tracking.session.RemoteClient`): a store's writes are Python work that, in
a thread of this process, would slow the training down (docs/benchmarks.md, "Writes in the
helper process").
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from omegaconf import OmegaConf

from sweeps.config.run_spec import RunSpec, resolved_yaml, run_params
from sweeps.core import vocabulary as V
from sweeps.core.errors import one_line
from sweeps.core.redaction import redact_optional
from sweeps.tracking import client as tracking
from sweeps.tracking import links
from sweeps.tracking.metric_logger import MetricLogger
from sweeps.tracking.model_logging import (
    N_EXAMPLE_ROWS, finalize_failed, logged_model_name, start_logged_model, upload_logged_model, write_logged_model,
)
from sweeps.tracking.reproducibility import reproducibility_tags
from sweeps.tracking.system_metrics import start_system_metrics
from sweeps.training import diagnosis as D
from sweeps.training.data import PreparedData, resolved_params
from sweeps.training.plots import save_learning_curve
from sweeps.training.fitting import (
    SUMMARY, Fitted, Recorder, RunEnd, StopRun, Terminated, fit, fit_tags, sigterm_raises, training_threads,
)
from sweeps.training.run_inputs import log_dataset_inputs

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """Everything :func:`train_tracked` needs (see :func:`sweeps.training.run.train`)."""

    spec: RunSpec
    data: PreparedData
    model: Any
    session: Any                     # sweeps.tracking.session.Session
    callbacks: Sequence[Callable]
    parent_run_id: str | None
    run_name: str
    tags: dict[str, str]
    overrides: list[str]
    on_run: Callable[[str, str], None] | None
    on_result: Callable[[dict[str, Any]], RunEnd | None] | None


class _Stopwatch:
    """Adds up the wall time of ``with watch(phase):`` blocks: the training thread's tracking work."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    @contextlib.contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - started


def train_tracked(request: RunRequest) -> dict[str, Any]:
    """Create the run, train, end it (see the module docstring); the run's result."""
    watch = _Stopwatch()
    session, spec = request.session, request.spec
    with watch("start"):
        run_id = tracking.create_run(session.client, session.experiment_id, run_name=request.run_name,
                                     tags=request.tags, parent_run_id=request.parent_run_id).info.run_id
    log.info("MLflow run %s (%s) in experiment %r at %s", request.run_name, run_id,
             spec.tracking.experiment_name, redact_optional(spec.tracking.uri))
    if request.on_run is not None:
        request.on_run(run_id, session.experiment_id)
    logger = system = None
    try:
        with sigterm_raises():
            with watch("start"):
                logger = MetricLogger(session.writes, run_id, spec.tracking.flush_interval)
                if spec.tracking.system_metrics:  # CPU, memory, ... sampled by MLflow's monitor thread
                    system = start_system_metrics(spec.tracking.uri, run_id,
                                                           spec.tracking.system_metrics_interval)
                params = run_params(spec, resolved_params(spec, request.data))
                _submit_start(request, logger, run_id, params)

            def sink(epoch: int, logs: Mapping[str, float]) -> None:
                with watch("epochs"):
                    logger.log({V.metric_name(k): v for k, v in logs.items()}, step=epoch)

            recorder = Recorder(sink, spec.model_kwargs.get("epochs", 100))
            fitted = fit(request.model, request.data, recorder, request.callbacks, spec.ensemble, spec.threads)
            with watch("end"):
                return _finish(request, run_id, fitted, logger, system, params, watch)
    except BaseException as error:
        _end_early(request.session, run_id, logger, system, error)
        raise


def _submit_start(request: RunRequest, logger, run_id: str, params: Mapping[str, str]) -> None:
    """Params, the run's reproducibility tags, config files, Dataset column and UI view: from the logger's thread."""
    session, spec, client = request.session, request.spec, request.session.writes
    tags = {**reproducibility_tags(spec.model_kwargs.get("seed")), "dataset": spec.dataset, "task": request.data.task}
    threads = training_threads(request.model, request.data, spec.threads)
    if threads is not None:  # every run, pruned ones too: their last bits depend on it
        tags[V.TAG_BLAS_THREADS] = str(threads)
    tags = {key: value for key, value in tags.items() if key not in request.tags}
    logger.submit(tracking.log_params_and_tags, client, run_id, params, tags)
    # The YAML is written where the files are (OmegaConf's dump: 15 ms of Python a run).
    logger.submit(session.writer.offloaded, log_config_files, client, run_id, spec, list(request.overrides))
    logger.submit(log_dataset_inputs, client, run_id, spec, request.data)  # the Dataset column
    # The UI view that shows loss/train vs loss/val first (once per experiment or sweep).
    logger.submit(session.ensure_view, request.data.task, request.parent_run_id)


def log_config_files(client, run_id: str, spec: RunSpec, overrides: Sequence[str]) -> None:
    """``config/config.yaml`` (resolved, credentials redacted) and ``config/overrides.yaml``;
    may run in a helper process."""
    tracking.log_text(client, run_id, resolved_yaml(spec), "config/config.yaml")
    tracking.log_text(client, run_id, _overrides_yaml(overrides), "config/overrides.yaml")


def _finish(request: RunRequest, run_id: str, fitted: Fitted, logger, system, params, watch) -> dict[str, Any]:
    """The run's last batch from this thread; its PNG, model files and end from the background writer."""
    session, spec, data = request.session, request.spec, request.data
    final_step = max(1, fitted.model_epoch)
    final_tags = {**fit_tags(fitted.diagnosis), V.TAG_NOTE: run_description(fitted.diagnosis, fitted.metrics, data.task)}
    if fitted.stop_reason:
        final_tags["stop_reason"] = fitted.stop_reason
    if fitted.non_finite is not None:
        log.warning("%s", fitted.non_finite)
    logged = None
    if spec.tracking.log_model and fitted.history is not None:
        logged = start_logged_model(session.client, run_id, session.experiment_id,
                                    name=logged_model_name(request.run_name), params=params)
        final_tags["model_uri"] = logged.uri
    result = fitted.result(run_id=run_id, experiment_id=session.experiment_id,
                           model_uri=logged.uri if logged else None)
    end = (request.on_result(result) if request.on_result is not None else None) or RunEnd()
    logger.log({**fitted.metrics, **end.metrics}, step=final_step, model_id=logged.model_id if logged else None)
    # The last metrics and tags in one batch: written when train() returns, or (a sweep's
    # offloading writer) queued before the run's tail, so the next trial need not wait for it.
    if session.writer.offload:
        session.writer.submit(logger.close, {**final_tags, **end.tags})
    else:
        logger.close(tags={**final_tags, **end.tags})
    session.writer.submit(_tail, session, run_id, fitted, data, logged, system, end.status,
                          curve_title(spec.dataset, fitted.diagnosis))
    log.info("fit: %s", fitted.diagnosis.summary, extra=SUMMARY)
    log.info("view the run at %s", links.run_url(spec.tracking.uri, session.experiment_id, run_id), extra=SUMMARY)
    return {**result, "tracking_seconds": watch.seconds, "tracking_phases": dict(watch.phases),
            "run_url": links.run_url(spec.tracking.uri, session.experiment_id, run_id),
            "experiment_url": links.experiment_url(spec.tracking.uri, session.experiment_id,
                                                      session.view_id(data.task, request.parent_run_id))}


def _tail(session, run_id: str, fitted: Fitted, data: PreparedData, logged, system, status: str, title: str) -> None:
    """In the background: stop the system metrics, then write the run's files and end it
    (:func:`write_run_files`, in the writer's helper process for a sweep)."""
    try:
        if system is not None:
            system.stop()
    finally:
        session.writer.offloaded(
            write_run_files, session.writes, run_id, status, fitted.recorder.history, data.task,
            fitted.diagnosis.best_epoch or None, title, fitted.model if logged is not None else None, logged,
            max(1, fitted.model_epoch), data.dataset.feature_names, data.dataset.class_names,
            data.train.gather(N_EXAMPLE_ROWS), data.dataset.encoding)


def write_run_files(client, run_id: str, status: str, curves, task: str, best_epoch: int | None, title: str,
                    model, logged, model_step: int, feature_names, class_names, X_example, encoding=None) -> None:
    """Draw the learning curve and write the model's files (with ``logged``), upload them, end
    the run with ``status`` (a failed model is marked FAILED). Needs nothing of the training
    process but what it is given: it may run in a helper process."""
    try:
        with tempfile.TemporaryDirectory(prefix="ann-train-") as scratch:
            png = str(Path(scratch) / "learning_curve.png")
            save_learning_curve(png, curves, task, best_epoch, title)
            client.log_artifact(run_id, png, "plots")
            if logged is not None:
                local = write_logged_model(logged, model, scratch, feature_names=feature_names,
                                           class_names=class_names, X_example=X_example, encoding=encoding)
                upload_logged_model(client, run_id, local, model_step)
    except BaseException:
        if logged is not None:
            finalize_failed(client, logged.model_id)
        raise
    finally:
        tracking.terminate(client, run_id, status)


def _end_early(session, run_id: str, logger, system, error: BaseException) -> None:
    """A run stopped by a callback, an interrupt or a failure: keep its curves, tag it, end it.

    A single :class:`StopRun` run's curves must all be in the store when this returns: when
    they cannot be sent, the sending error replaces the stop. A sweep's worker (an offloading
    writer) queues them, with the run's end, after the earlier runs' tails.
    """
    if isinstance(error, StopRun) and logger is not None and session.writer.offload:
        # A sweep's pruned trial: the next trial trains while these go out.
        session.writer.submit(_close_stop_and_end, logger, error.end.tags, system, session.writes, run_id,
                              error.end.status)
        return
    sent = None
    if logger is not None:
        try:
            logger.close(tags=error.end.tags if isinstance(error, StopRun) else None)
        except BaseException as failure:  # noqa: BLE001
            sent = failure
    if isinstance(error, StopRun):
        if sent is not None:
            if system is not None:
                system.stop()
            raise sent from None
        session.writer.submit(_stop_and_end, system, session.writes, run_id, error.end.status)
        return
    if isinstance(error, (KeyboardInterrupt, Terminated, SystemExit)):
        status, tags = "KILLED", {V.TAG_KILLED_BY: one_line(error, typed=True)}
    else:
        status, tags = "FAILED", {V.TAG_ERROR: one_line(error, typed=True)[:5000]}
    with contextlib.suppress(BaseException):
        if system is not None:
            system.stop()
    with contextlib.suppress(Exception):
        tracking.set_tags(session.client, run_id, tags)
    with contextlib.suppress(Exception):
        tracking.terminate(session.client, run_id, status)


def _close_stop_and_end(logger, tags, system, client, run_id: str, status: str) -> None:
    try:
        logger.close(tags=tags)
    finally:
        _stop_and_end(system, client, run_id, status)


def _stop_and_end(system, client, run_id: str, status: str) -> None:
    if system is not None:
        system.stop()
    tracking.terminate(client, run_id, status)


def run_description(diagnosis: D.Diagnosis, metrics: Mapping[str, float], task: str) -> str:
    """The run's description on its MLflow page: the fit verdict and why, then the best epoch,
    test scores and size (two short paragraphs: the page shows about three lines before "Show more")."""
    lines = [f"**fit: {diagnosis.label}**: {diagnosis.reason}" + (f" (hint: {diagnosis.hint})" if diagnosis.hint else "")]
    facts = []
    if metrics.get(V.EPOCHS_RUN):
        best = int(metrics.get(V.BEST_EPOCH, 0))
        facts.append(f"best epoch {best} of {int(metrics[V.EPOCHS_RUN])}" if best else f"{int(metrics[V.EPOCHS_RUN])} epochs")
    scores = ("loss", "mae", "rmse", "r2") if task == "regression" else ("loss", "accuracy")
    tested = [f"{name} {metrics[f'{name}/test']:.4g}" for name in scores if f"{name}/test" in metrics]
    if tested:
        facts.append("test " + ", ".join(tested))
    if metrics.get(V.ENSEMBLE_MEMBERS, 1) > 1:
        first = [f"{name} {metrics[V.ENSEMBLE_FIRST_PREFIX + name]:.4g}" for name in scores
                 if V.ENSEMBLE_FIRST_PREFIX + name in metrics]
        facts.append(f"{int(metrics[V.ENSEMBLE_MEMBERS])} networks averaged (the first alone: " + ", ".join(first) + ")")
    if metrics.get(V.N_PARAMETERS):
        facts.append(f"{int(metrics[V.N_PARAMETERS])} parameters")
    if facts:
        lines.append(" · ".join(facts))
    return "\n\n".join(lines)


def curve_title(dataset: str, diagnosis: D.Diagnosis) -> str:
    """The learning-curve image's title: the verdict and its reason (wrapped to two lines)."""
    hint = f" [{diagnosis.hint}]" if diagnosis.hint else ""
    return f"{dataset}: fit = {diagnosis.label}{hint}\n{textwrap.shorten(diagnosis.reason, 140)}"


def _overrides_yaml(overrides: Sequence[str]) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(list(overrides))) if overrides else "[]\n"
