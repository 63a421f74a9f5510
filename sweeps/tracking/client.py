"""A thin layer over :class:`mlflow.MlflowClient` for training runs.

* :func:`probe` asks the tracking store for an answer within a few seconds, so that a
  wrong ``tracking.uri`` fails at once instead of after the client's minutes of retries.
* :func:`get_or_create_experiment` creates the experiment tagged
  ``mlflow.experimentKind=custom_model_development`` (MLflow 3's "model training" kind).
* :class:`MetricLogger` batches per-epoch metrics and sends them from a background
  thread with one ``log_batch`` call every ``flush_interval`` seconds, so a running run
  shows its curves within seconds while training never waits for the network.

Every call names its run explicitly; nothing here uses MLflow's global active run. Every
tag, param and text artifact written here goes through :func:`sweeps.core.redaction.redact`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from sweeps.core import vocabulary as V
from sweeps.core.drivers import missing_driver
from sweeps.core.errors import TrackingError, one_line, root_cause
from sweeps.core.redaction import redact
from sweeps.core.storage import sqlite_path
from sweeps.tracking.links import HTTP_SCHEMES

log = logging.getLogger(__name__)

EXPERIMENT_KIND = "custom_model_development"
#: ``log_batch`` accepts at most this many metrics (and 100 params) per call.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000

_DB_SCHEMES = ("postgresql", "mysql", "mssql")


# ----------------------------------------------------------------------------- probe


def probe(uri: str, timeout: float = 5.0, experiment_name: str = "ann") -> None:
    """Check within ``timeout`` seconds that ``uri`` is a tracking store that answers.

    Raises:
        TrackingError: one line naming ``tracking.uri``, its value and what went wrong.
    """
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if scheme in HTTP_SCHEMES:
        _probe_http(uri, timeout, experiment_name)
    elif scheme == "sqlite":
        _probe_sqlite(uri, timeout)
    elif scheme in _DB_SCHEMES:
        _probe_database(uri, timeout)
    elif scheme in ("", "file"):
        path = Path(urlparse(uri).path if scheme == "file" else uri)
        parent = path if path.exists() else path.parent
        if not parent.exists():
            raise _error(uri, f"its folder {parent} does not exist")
    # Other schemes (databricks, ...) are left to the client.


def _error(uri: str, problem: str) -> TrackingError:
    return TrackingError(f"tracking.uri={redact(uri)!r} cannot be used: {problem}")


def _probe_http(uri: str, timeout: float, experiment_name: str) -> None:
    import requests
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(uri.rstrip("/")),
            "/api/2.0/mlflow/experiments/get-by-name",
            "GET",
            max_retries=0,
            timeout=timeout,
            raise_on_status=False,
            params={"experiment_name": experiment_name},
        )
    except (requests.exceptions.RequestException, MlflowException, OSError) as error:
        cause = _root_cause(error)
        timed_out = isinstance(error, requests.exceptions.Timeout) or "timed out" in cause
        reason = "no answer" if timed_out else "no MLflow server answers"
        raise _error(
            uri,
            f"{reason} within {timeout:g} s ({cause}); start one with "
            "`mlflow server --host 127.0.0.1 --port 5000`, or use tracking=local or tracking=off",
        ) from None
    if response.status_code in (200, 404):
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" not in response.text:
            raise _error(uri, "it answers HTTP 404 without MLflow's REST API: is it an MLflow tracking server?")
        return
    if response.status_code in (401, 403):
        raise _error(uri, f"the server refuses access (HTTP {response.status_code}); set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN")
    raise _error(uri, f"the server answers HTTP {response.status_code}: {response.text.strip()[:200]}")


def _probe_sqlite(uri: str, timeout: float) -> None:
    path = sqlite_path(uri)
    if path is None:  # in-memory database
        return
    if not path.parent.exists():
        raise _error(uri, f"the folder {path.parent} of the SQLite file does not exist")
    if path.exists():
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout) as connection:
                connection.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as error:
            raise _error(uri, f"{path} is not a usable SQLite database ({error})") from None
    elif not os.access(path.parent, os.W_OK):
        raise _error(uri, f"the folder {path.parent} is not writable")


def _probe_database(uri: str, timeout: float) -> None:
    import sqlalchemy

    connect_args = {"connect_timeout": max(1, int(round(timeout)))} if uri.startswith(("postgresql", "mysql")) else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # driver missing, refused, authentication, unknown database
        driver = missing_driver(error, uri)
        if driver is not None:
            raise _error(uri, driver) from None
        raise _error(uri, f"the database does not answer within {timeout:g} s ({_root_cause(error)})") from None


def _root_cause(error: BaseException) -> str:
    text = one_line(root_cause(error, context=True))
    for marker in ("Connection refused", "Name or service not known", "timed out", "Read timed out"):
        if marker in text:
            return marker
    return text[:160]


# ------------------------------------------------------------------------ experiment


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created as a model-training experiment if missing.

    An existing experiment without a kind gets the tag; one whose kind someone chose is
    left alone. A deleted experiment of that name is an error (MLflow keeps the name).
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name, artifact_location=artifact_location, tags={V.TAG_EXPERIMENT_KIND: EXPERIMENT_KIND}
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)  # created meanwhile by another run
            if experiment is None:  # the name belongs to a deleted experiment
                raise TrackingError(_deleted_message(name)) from None
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(_deleted_message(name))
    if V.TAG_EXPERIMENT_KIND not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, V.TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
    return experiment.experiment_id


def _deleted_message(name: str) -> str:
    return (
        f"tracking.experiment_name={name!r} is not allowed: expected the name of a live experiment "
        f"(this one is deleted: restore it with `mlflow experiments restore` or choose another name)"
    )


# ------------------------------------------------------------------------------- runs


def create_run(
    client: MlflowClient,
    experiment_id: str,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
):
    """Create a RUNNING run (a nested child run of ``parent_run_id`` if given)."""
    tags = {key: redact(value) for key, value in (tags or {}).items()}
    if parent_run_id:
        tags[V.TAG_PARENT_RUN] = parent_run_id
    return client.create_run(experiment_id, run_name=run_name, tags=tags)


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, str]) -> None:
    """Log params in batches of 100 (values cut to MLflow's length limit)."""
    items = [Param(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in params.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + MAX_PARAMS_PER_BATCH])


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    items = [RunTag(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in tags.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=items[start : start + MAX_PARAMS_PER_BATCH])


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log a few metrics at once (one ``log_batch`` call), synchronously."""
    now = int(time.time() * 1000)
    items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    for start in range(0, len(items), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=items[start : start + MAX_METRICS_PER_BATCH])


def log_final(client: MlflowClient, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str], step: int) -> None:
    """Final metrics and tags in one ``log_batch`` call."""
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()][:MAX_METRICS_PER_BATCH],
        tags=[RunTag(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in tags.items()][:MAX_PARAMS_PER_BATCH],
    )


def log_text(client: MlflowClient, run_id: str, text: str, artifact_file: str) -> None:
    """Log ``text`` (redacted) as the artifact ``artifact_file``."""
    client.log_text(run_id, redact(text), artifact_file)


def terminate(client: MlflowClient, run_id: str, status: str) -> None:
    """End the run with ``status`` (FINISHED, FAILED or KILLED).

    MLflow's own "View run at" line is left out: it costs two more requests and links the
    GenAI view; :func:`run_url` gives the model-training link.
    """
    status = RunStatus.to_string(RunStatus.from_string(status))
    name = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    with _env_lock:
        previous = os.environ.get(name)
        os.environ[name] = "true"
        try:
            client.set_terminated(run_id, status=status)
        finally:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


_env_lock = threading.Lock()


class MetricLogger:
    """Sends a run's metrics, and any other logging work handed to it, from a background thread.

    ``log`` only appends metrics to a queue; a daemon thread sends the queue every
    ``flush_interval`` seconds, consecutive metrics in one ``log_batch`` call (chunks of
    1000). ``submit`` queues any other call (params, artifacts) and wakes the thread at
    once. Everything runs in the order it was queued. ``close`` stops the thread and does
    what is left; a failure is raised from the next ``log``/``submit`` or from ``close``.
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_interval: float = 2.0) -> None:
        self.client, self.run_id, self.flush_interval = client, run_id, float(flush_interval)
        self._queue: list = []  # Metric objects and zero-argument callables
        self._queue_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.batches_sent = 0
        self.metrics_sent = 0
        self.calls_done = 0
        self.send_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=f"mlflow-logger-{run_id[:8]}", daemon=True)
        self._thread.start()

    def log(self, metrics: Mapping[str, float], step: int, timestamp: int | None = None) -> None:
        self._raise_pending_error()
        now = int(time.time() * 1000) if timestamp is None else timestamp
        items = [Metric(key, float(value), now, int(step)) for key, value in metrics.items()]
        with self._queue_lock:
            self._queue.extend(items)

    def submit(self, function, *args, **kwargs) -> None:
        """Run ``function(*args, **kwargs)`` in the background, after what is queued."""
        self._raise_pending_error()
        with self._queue_lock:
            self._queue.append(lambda: function(*args, **kwargs))
        self._wake.set()

    def flush(self) -> None:
        """Do everything queued so far, now, from the calling thread."""
        self._send()
        self._raise_pending_error()

    def close(self) -> None:
        """Stop the background thread and do the rest (raises a failure)."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._send()
        self._raise_pending_error()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._send()
            if self._error is not None:
                return

    def _send(self) -> None:
        with self._send_lock:
            if self._error is not None:
                return
            with self._queue_lock:
                queue, self._queue = self._queue, []
            started = time.perf_counter()
            try:
                metrics: list[Metric] = []
                for item in [*queue, None]:
                    if isinstance(item, Metric):
                        metrics.append(item)
                        continue
                    for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                        self.client.log_batch(self.run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
                        self.batches_sent += 1
                    self.metrics_sent += len(metrics)
                    metrics = []
                    if item is not None:
                        item()
                        self.calls_done += 1
            except Exception as error:  # kept for the training thread to raise
                self._error = error
                log.warning("logging to run %s failed: %s", self.run_id, error)
            finally:
                self.send_seconds += time.perf_counter() - started

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise self._error


# ------------------------------------------------------------------------------ links





def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------- system metrics


class SystemMetrics:
    """MLflow's system-metrics monitor for one run: ``system/cpu_utilization_percentage``,
    ``system/system_memory_usage_megabytes``, disk and network, every ``interval`` seconds.

    It samples in a thread of its own (MLflow's :class:`SystemMetricsMonitor`, which needs
    psutil) and :meth:`stop` takes one last sample, so a run shorter than the interval has
    its point too. Nothing here may fail a run: a monitor that cannot start or log only
    warns in the log.
    """

    def __init__(self, uri: str, run_id: str, interval: float) -> None:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self.monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, tracking_uri=uri)
        self.monitor.start()

    def stop(self) -> None:
        monitor = self.monitor
        try:
            monitor.finish()
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as error:  # the run's own data matters more
            log.warning("system metrics of run %s: %s", monitor._run_id, error)


def start_system_metrics(uri: str, run_id: str, interval: float) -> SystemMetrics | None:
    """Start sampling the machine for ``run_id``; None (with a warning) when it cannot be done."""
    try:
        return SystemMetrics(uri, run_id, interval)
    except Exception as error:  # psutil missing, ...
        log.warning("no system metrics for run %s: %s", run_id, error)
        return None
