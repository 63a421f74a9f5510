"""A thin layer over :class:`mlflow.MlflowClient` for training runs.

* :func:`probe` asks the tracking store for an answer within a few seconds, so that a
  wrong ``tracking.uri`` fails at once instead of after the client's minutes of retries.
* :func:`get_or_create_experiment` creates the experiment tagged
  ``mlflow.experimentKind=custom_model_development`` (MLflow 3's "model training" kind).

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
from typing import Mapping
from urllib.parse import urlparse

import requests
import sqlalchemy
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request

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


def log_params_and_tags(client: MlflowClient, run_id: str, params: Mapping[str, str], tags: Mapping[str, str]) -> None:
    """Params (values cut to MLflow's length limit) and tags in one ``log_batch`` call (more when over 100 each)."""
    items = [Param(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in params.items()]
    labels = [RunTag(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in tags.items()]
    for start in range(0, max(len(items), len(labels), 1), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + MAX_PARAMS_PER_BATCH],
                         tags=labels[start : start + MAX_PARAMS_PER_BATCH])


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
