"""One tracked training run: validated config -> data -> ``ann.MLP`` -> MLflow.

:func:`train` is what ``ann-train`` runs and what a sweep calls for every trial. It
validates everything it can before a run exists (config, data, tracking store), so a
user's mistake creates no run; once the run exists it always ends it: FINISHED,
FAILED (with the error as the ``error`` tag) or KILLED (Ctrl-C, SIGTERM, a pruned
Optuna trial).

What a run records (metric names put training and validation of one quantity in the
same MLflow chart section):

* params: the flattened config (``model.hidden_layers``, ``model.n_hidden_layers``,
  ``model.layer_1_units``, ``optimizer.lr``, ``training.batch_size``, ``dataset.name``,
  ...), plus what the data decided (``dataset.task``, ``dataset.n_train``, ...);
* per epoch, ``step=epoch``: ``loss/train``, ``loss/val``, ``accuracy/train``,
  ``accuracy/val`` (or ``mae/*``, ``rmse/*``, ``r2/*``) and ``time/epoch_seconds``;
* at the end: ``loss/test`` and the task's metrics on the test set, ``best/loss/val``
  and the best epoch's other validation metrics, ``best_epoch``, ``epochs_run``,
  ``n_parameters``, ``time/fit_seconds``, the diagnosis numbers ``fit/*``;
* tags: ``fit`` (good / overfit / underfit / unstable / diverged), ``fit_reason``, ``fit_hint``
  (``train longer`` when the loss was still falling), ``seed``,
  ``versions.*``, ``git.commit``, ``command``, ``dataset``, ``task``, and the run's
  description (``mlflow.note.content``: the fit verdict, best epoch, test scores); a
  sweep's trial (a child run tagged ``sweep.trial_number``) gets ``mlflow.runColor``, its
  own colour in the UI's charts;
* artifacts: ``config/config.yaml`` (resolved), ``config/overrides.yaml``,
  ``plots/learning_curve.png``, and the network as a logged pyfunc model ``model``;
* once per experiment (or per sweep, for a child run): a saved view of the MLflow UI
  whose first chart is ``loss/train`` vs ``loss/val`` of every run (:mod:`sweeps.tracking.ui_views`);
  ``experiment_url`` opens it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

import ann
from ann import params as P
from ann.data import Dataset, load_dataset, split_dataset
from sweeps.core import vocabulary as V
from sweeps.training import diagnosis as D
from sweeps.core.names import describe_config
from sweeps.config.run_spec import RunSpec, build_run_spec, format_value, resolved_yaml, run_params
from sweeps.core.errors import ConfigError, TrackingError, UserError, one_line
from sweeps.core.redaction import redact, redact_optional
from sweeps.tracking import links

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
class PreparedData:
    dataset: Dataset
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def task(self) -> str:
        return self.dataset.task


# ------------------------------------------------------------------------------ data


def prepare_data(spec: RunSpec) -> PreparedData:
    """Load and split the data set; problems are one-line :class:`UserError`s."""
    try:
        dataset = load_dataset(spec.dataset, **spec.dataset_options)
        splits = split_dataset(dataset, val_size=spec.val_size, test_size=spec.test_size, seed=spec.split_seed)
    except ann.InvalidParameterError as error:
        key = error.name if error.name in ("val_size", "test_size", "val_size + test_size") else None
        if key is not None:
            raise ConfigError(f"training.{key.split()[0]}", error.value, error.allowed) from None
        raise ConfigError(f"dataset.{error.name}", error.value, error.allowed) from None
    except ann.DataError as error:
        raise UserError(_data_error(spec, str(error))) from None
    X_val = splits.X_val if len(splits.X_val) else None
    X_test = splits.X_test if len(splits.X_test) else None
    return PreparedData(
        dataset=dataset,
        X_train=splits.X_train,
        y_train=splits.y_train,
        X_val=X_val,
        y_val=splits.y_val if X_val is not None else None,
        X_test=X_test,
        y_test=splits.y_test if X_test is not None else None,
    )


def _data_error(spec: RunSpec, message: str) -> str:
    options = spec.dataset_options
    if "target column" in message and "target" in options:
        return f"dataset.target={options['target']!r} cannot be used: {message}"
    if "feature column" in message and options.get("features") is not None:
        return f"dataset.features={format_value(options['features'])} cannot be used: {message}"
    if "path" in options:
        return f"dataset.path={options['path']!r} cannot be used: {message}"
    return f"dataset={spec.dataset} cannot be used: {message}"


def build_model(spec: RunSpec, data: PreparedData) -> ann.MLP:
    """The engine's estimator for this data, with the checks that need the data."""
    kwargs = dict(spec.model_kwargs)
    task = data.task
    try:
        P.check_task_fit(task, kwargs.get("loss"), kwargs.get("output_activation"))
    except ann.InvalidParameterError as error:
        raise ConfigError(f"model.{error.name}", error.value, error.allowed) from None
    n_train = len(data.X_train)
    if kwargs.get("batch_size", 32) > n_train:
        raise ConfigError(
            "training.batch_size", kwargs["batch_size"],
            f"an integer in [1, {n_train}] (the training set has {n_train} samples)",
        )
    return ann.MLP(**kwargs, task=task)


def resolved_params(spec: RunSpec, data: PreparedData) -> dict[str, Any]:
    """Params known once the data is loaded: what ``null`` in the config became."""
    task = data.task
    model = spec.model_kwargs
    values = {
        "model.output_activation": model.get("output_activation") or P.OUTPUT_ACTIVATIONS_FOR_TASK[task][0],
        "model.loss": model.get("loss") or P.LOSSES_FOR_TASK[task][0],
        "dataset.task": task,
        "dataset.n_features": data.X_train.shape[1],
        "dataset.n_train": len(data.X_train),
        "dataset.n_val": 0 if data.X_val is None else len(data.X_val),
        "dataset.n_test": 0 if data.X_test is None else len(data.X_test),
    }
    if task != "regression":
        values["dataset.n_classes"] = data.dataset.n_classes
    return values


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


def _is_pruned(error: BaseException) -> bool:
    exceptions = sys.modules.get("optuna.exceptions")
    return exceptions is not None and isinstance(error, exceptions.TrialPruned)


# ----------------------------------------------------------------------------- train


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


class _Recorder:
    """The first fit callback: keeps the history and hands each epoch to MLflow."""

    def __init__(self, metric_logger, epochs: int, watch: _Stopwatch | None = None) -> None:
        self.watch = watch or _Stopwatch()
        self.metric_logger = metric_logger
        self.history: dict[str, list[float]] = {}
        self.epochs_seen = 0
        self.every = max(1, epochs // 20)
        self.epochs = epochs

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epochs_seen = epoch
        for key, value in logs.items():
            if key != "epoch_seconds":
                self.history.setdefault(key, []).append(float(value))
        if self.metric_logger is not None:
            with self.watch("epochs"):
                self.metric_logger.log({V.metric_name(k): v for k, v in logs.items()}, step=epoch)
        if epoch == 1 or epoch % self.every == 0 or epoch == self.epochs:
            shown = "  ".join(
                f"{V.metric_name(k)}={v:.4g}" for k, v in logs.items() if k != "epoch_seconds"
            )
            log.info("epoch %d/%d  %s", epoch, self.epochs, shown)


def train(
    cfg,
    *,
    callbacks: Sequence[Callback] = (),
    parent_run_id: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    overrides: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train one network as configured by ``cfg`` and track it in MLflow.

    Args:
        cfg: the composed config (``DictConfig`` from Hydra, or a plain mapping).
        callbacks: extra ``callback(epoch, logs)`` run after each epoch, after the metrics
            were handed to MLflow (a sweep's pruning callback may raise
            ``optuna.TrialPruned``: the run then ends KILLED with tag ``pruned=true``
            and the exception propagates).
        parent_run_id: make the run a nested child of this run.
        run_name: the run's name (default ``tracking.run_name``, else MLflow's choice).
        tags: extra run tags.
        overrides: the command-line overrides, logged as ``config/overrides.yaml``
            (default: Hydra's, when called from a Hydra app).

    Returns:
        ``run_id``, ``experiment_id``, ``model_uri`` (None without tracking), ``fit``,
        ``fit_reason``, and every final metric by its MLflow name (``loss/test``,
        ``best/loss/val``, ``best_epoch``, ``epochs_run``, ``fit/gap``, ...); tracked
        runs add ``run_url``, ``experiment_url`` and ``tracking_seconds`` /
        ``tracking_phases`` (the training thread's wall time spent on tracking).

    Raises:
        UserError: bad config, data or tracking store (no run was created).
        Exception: anything raised during training (the run is marked FAILED or KILLED first).
    """
    spec = build_run_spec(cfg)
    data = prepare_data(spec)
    model = build_model(spec, data)
    settings = spec.tracking

    client = experiment_id = run_id = None
    watch = _Stopwatch()  # the main thread's time spent on tracking
    if settings.enabled:
        with watch("start"):
            client, experiment_id = connect(spec)
    if overrides is None:
        overrides = hydra_overrides()

    if client is not None:
        from sweeps.tracking import client as tracking
        from sweeps.tracking import ui_views
        from sweeps.tracking.reproducibility import reproducibility_tags

        with watch("start"):
            run_tags = {
                **reproducibility_tags(spec.model_kwargs.get("seed")),
                "dataset": spec.dataset,
                "task": data.task,
                **{str(k): str(v) for k, v in (tags or {}).items()},
            }
            if parent_run_id and V.TAG_RUN_COLOUR not in run_tags:
                # A sweep's trials in distinct colours in the UI's charts (by trial number).
                colour = ui_views.run_colour(run_tags.get(V.TAG_TRIAL))
                if colour:
                    run_tags[V.TAG_RUN_COLOUR] = colour
            run = tracking.create_run(
                client, experiment_id, run_name=run_name or settings.run_name or default_run_name(spec), tags=run_tags,
                parent_run_id=parent_run_id,
            )
            run_id = run.info.run_id
        log.info("MLflow run %s (%s) in experiment %r at %s", run.info.run_name, run_id,
                 settings.experiment_name, redact_optional(settings.uri))

    if run_id is None:
        return _train_untracked(spec, data, model, callbacks)
    return _train_tracked(spec, data, model, client, experiment_id, run_id, callbacks, overrides, watch, parent_run_id,
                          run.info.run_name)


def default_run_name(spec: RunSpec) -> str:
    """The name of a run nobody named: ``moons relu 1x32 lr=1e-3 bs=32``."""
    # objective.py is the sweep's module (Optuna, storage): imported only when a name is needed.

    return f"{spec.dataset} {describe_config(spec.config)}"


def connect(spec: RunSpec):
    """Probe the tracking store and get (or create) the experiment; ``(client, id)``."""
    from mlflow.exceptions import MlflowException

    from sweeps.tracking import client as tracking
    settings = spec.tracking
    tracking.probe(settings.uri, settings.probe_timeout, settings.experiment_name)
    try:
        client = _client(settings.uri)
        experiment_id = tracking.get_or_create_experiment(client, settings.experiment_name, settings.artifact_location)
    except (MlflowException, OSError, ImportError) as error:
        raise TrackingError(
            f"tracking.uri={redact_optional(settings.uri)!r} cannot be used: {one_line(error, typed=True)[:300]}"
        ) from None
    return client, experiment_id


def _client(uri: str):
    """An MlflowClient for ``uri``; a store that cannot be opened is a :class:`TrackingError`."""
    from mlflow import MlflowClient

    try:
        if uri.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "mysql"):
            return MlflowClient(tracking_uri=uri)
        # A database store is created or upgraded by the first client that opens it: one
        # process at a time, or N processes started at once race through MLflow's migrations.
        from sweeps.core.locks import database_lock  # deliberate: imports SQLAlchemy, for database stores only

        with database_lock(uri, "mlflow:store"):
            client = MlflowClient(tracking_uri=uri)
            client._tracking_client.store  # noqa: B018 - opens (creates, upgrades) the store now
        return client
    except Exception as error:  # e.g. a database whose tables cannot be created or upgraded
        from mlflow.exceptions import MlflowException

        if isinstance(error, MlflowException):
            raise
        raise TrackingError(f"tracking.uri={redact_optional(uri)!r} cannot be used: {one_line(error, typed=True)[:300]}") from None


def hydra_overrides() -> list[str]:
    """The command-line overrides as typed (``${...}`` left unresolved), passwords in URIs hidden.

    Resolving them would write secrets that the user kept in the environment
    (``sweep.storage=${oc.env:OPTUNA_STORAGE}``) into logs and artifacts.
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        if HydraConfig.initialized():
            typed = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
            return [redact(str(override)) for override in typed]
    except Exception:  # not inside a Hydra app
        pass
    return []


def _fit(model: ann.MLP, data: PreparedData, callbacks: Sequence[Callback]):
    """Run ``fit``; returns ``(history or None, NonFiniteLossError or None)``."""
    validation = (data.X_val, data.y_val) if data.X_val is not None else None
    try:
        return model.fit(data.X_train, data.y_train, validation_data=validation, callbacks=list(callbacks)), None
    except ann.NonFiniteLossError as error:
        return None, error


def _summaries(
    model: ann.MLP, data: PreparedData, recorder: _Recorder, history, non_finite
) -> tuple[D.Diagnosis, dict[str, float], int]:
    """Diagnosis, final metrics and the epoch the final weights belong to."""
    curves = history.history if history is not None else recorder.history
    if history is not None:
        epochs_run, best = history.epochs, history.best_epoch
    else:
        epochs_run, best = recorder.epochs_seen, 0
    restored = model.early_stopping and model.restore_best_weights and history is not None
    model_epoch = best if restored else epochs_run
    diagnosis = D.diagnose(
        curves, data.task, _constant_loss(model, data),
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
    if history is not None and data.X_test is not None:
        for key, value in model.evaluate(data.X_test, data.y_test).items():
            metrics[f"{key}/test"] = value
    metrics.update(diagnosis.metrics())
    return diagnosis, {k: v for k, v in metrics.items() if math.isfinite(v)}, model_epoch


def _constant_loss(model: ann.MLP, data: PreparedData) -> float:
    """The training targets' constant-predictor loss (NaN when the network never got built)."""
    if model.network_ is None:
        return math.nan
    return model.constant_loss(data.y_train)


def _result(diagnosis: D.Diagnosis, metrics: Mapping[str, float], **extra) -> dict[str, Any]:
    return {**extra, **fit_tags(diagnosis), **metrics}


def fit_tags(diagnosis: D.Diagnosis) -> dict[str, str]:
    """The run tags of the diagnosis: ``fit``, ``fit_reason`` and (when there is one) ``fit_hint``."""
    tags = {V.TAG_FIT: diagnosis.label, V.TAG_FIT_REASON: diagnosis.reason}
    if diagnosis.hint:
        tags[V.TAG_FIT_HINT] = diagnosis.hint
    return tags


def _train_untracked(spec: RunSpec, data: PreparedData, model: ann.MLP, callbacks) -> dict[str, Any]:
    recorder = _Recorder(None, spec.model_kwargs.get("epochs", 100))
    with sigterm_raises():
        history, non_finite = _fit(model, data, [recorder, *callbacks])
    diagnosis, metrics, _ = _summaries(model, data, recorder, history, non_finite)
    if non_finite is not None:
        log.warning("%s", non_finite)
    log.info("fit: %s", diagnosis.summary, extra=SUMMARY)
    return _result(diagnosis, metrics, run_id=None, experiment_id=None, model_uri=None)


def _train_tracked(
    spec: RunSpec, data: PreparedData, model: ann.MLP, client, experiment_id: str, run_id: str,
    callbacks: Sequence[Callback], overrides: Sequence[str], watch: _Stopwatch, parent_run_id: str | None = None,
    run_name: str | None = None,
) -> dict[str, Any]:
    from sweeps.tracking import client as tracking
    from sweeps.tracking import ui_views
    from sweeps.training.plots import save_learning_curve
    from sweeps.training.run_inputs import log_dataset_inputs

    settings = spec.tracking
    metric_logger = system = None
    view: dict[str, str | None] = {}  # the id of the saved UI view, once written
    scratch = tempfile.TemporaryDirectory(prefix="ann-train-")
    try:
        with sigterm_raises():
            # Params and config files go out from the background thread while training runs.
            with watch("start"):
                metric_logger = tracking.MetricLogger(client, run_id, settings.flush_interval)
                if settings.system_metrics:  # CPU, memory, ... sampled by MLflow's monitor thread
                    system = tracking.start_system_metrics(settings.uri, run_id, settings.system_metrics_interval)
                params = run_params(spec, resolved_params(spec, data))
                metric_logger.submit(tracking.log_params, client, run_id, params)
                metric_logger.submit(tracking.log_text, client, run_id, resolved_yaml(spec), "config/config.yaml")
                metric_logger.submit(tracking.log_text, client, run_id, _overrides_yaml(overrides), "config/overrides.yaml")
                metric_logger.submit(log_dataset_inputs, client, run_id, spec, data)  # the Dataset column
                # The UI view that shows loss/train vs loss/val first (once per experiment or sweep).
                metric_logger.submit(lambda: view.update(id=ui_views.ensure_run_view_quietly(
                    client, experiment_id, data.task, parent_run_id)))

            recorder = _Recorder(metric_logger, spec.model_kwargs.get("epochs", 100), watch)
            history, non_finite = _fit(model, data, [recorder, *callbacks])

            diagnosis, metrics, model_epoch = _summaries(model, data, recorder, history, non_finite)
            final_step = max(1, model_epoch)
            final_tags = {**fit_tags(diagnosis), V.TAG_NOTE: run_description(diagnosis, metrics, data.task)}
            if non_finite is not None:
                final_tags["stop_reason"] = str(non_finite)
                log.warning("%s", non_finite)
            elif history is not None and history.stop_reason:
                final_tags["stop_reason"] = history.stop_reason
            with watch("end"):
                # The training thread prepares the model and draws the curves while the
                # background thread uploads what is ready; then it waits for the uploads.
                model_uri = None
                if settings.log_model and history is not None:
                    from sweeps.tracking.model_logging import logged_model_name, prepare_logged_model, upload_logged_model

                    prepared = prepare_logged_model(
                        client, run_id, experiment_id, model, scratch.name,
                        feature_names=data.dataset.feature_names,
                        class_names=data.dataset.class_names,
                        X_example=data.X_train,
                        params=params,
                        name=logged_model_name(run_name),
                    )
                    model_uri = final_tags["model_uri"] = prepared.uri
                metric_logger.submit(tracking.log_final, client, run_id, metrics, final_tags, final_step)
                if model_uri is not None:
                    metric_logger.submit(upload_logged_model, client, run_id, prepared, final_step)
                png = Path(scratch.name) / "learning_curve.png"
                save_learning_curve(png, history.history if history else recorder.history, data.task,
                                    diagnosis.best_epoch or None, curve_title(spec.dataset, diagnosis))
                metric_logger.submit(client.log_artifact, run_id, str(png), "plots")
                metric_logger.close()
                if system is not None:
                    system.stop()
    except BaseException as error:
        if metric_logger is not None:
            with contextlib.suppress(BaseException):
                metric_logger.close()  # keep the curves of a killed or failed run
        if system is not None:
            with contextlib.suppress(BaseException):
                system.stop()
        if isinstance(error, (KeyboardInterrupt, Terminated, SystemExit)) or _is_pruned(error):
            status = "KILLED"
            extra = {V.TAG_PRUNED: "true"} if _is_pruned(error) else {V.TAG_KILLED_BY: one_line(error, typed=True)}
        else:
            status = "FAILED"
            extra = {V.TAG_ERROR: one_line(error, typed=True)[:5000]}
        with contextlib.suppress(Exception):
            tracking.set_tags(client, run_id, extra)
        with contextlib.suppress(Exception):
            tracking.terminate(client, run_id, status)
        raise
    finally:
        scratch.cleanup()
    with watch("end"):
        tracking.terminate(client, run_id, "FINISHED")

    log.info("fit: %s", diagnosis.summary, extra=SUMMARY)
    log.info("view the run at %s", links.run_url(settings.uri, experiment_id, run_id), extra=SUMMARY)
    return _result(
        diagnosis, metrics, run_id=run_id, experiment_id=experiment_id, model_uri=model_uri,
        tracking_seconds=watch.seconds,
        tracking_phases=dict(watch.phases),
        run_url=links.run_url(settings.uri, experiment_id, run_id),
        experiment_url=links.experiment_url(settings.uri, experiment_id, view.get("id")),
    )




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
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(list(overrides))) if overrides else "[]\n"
