"""A process's connection to the tracking store, and its background writer.

A sweep's worker runs many trials; each used to probe the store, open a client and look
up the experiment before training (about a third of a second on a busy machine). A
:class:`Session` does that once per process and is handed to every run:

* :func:`connect` probes the store (one line naming ``tracking.uri`` when it does not
  answer), opens one :class:`mlflow.MlflowClient` and gets or creates the experiment;
* :class:`BackgroundWriter` does the slow tail of a finished run -- the learning-curve
  PNG, the pyfunc model's files, ending the run -- in one thread with a bounded queue, in
  the order queued, while the next trial trains; for a sweep (``offload``) the drawing,
  file writing and the store's writes, which are CPU-bound Python, go to one helper process
  (:mod:`sweeps.tracking.helper`; :class:`RemoteClient` is the client that writes there), so
  they do not take the interpreter lock from the training thread. It is drained
  before the process exits (:func:`atexit`, and explicitly by whoever owns it: the sweep
  before it writes the parent run's leaderboard and champion), so a normal exit, Ctrl-C
  or SIGTERM (turned into an exception by the CLIs) loses nothing.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sweeps.config.run_spec import TrackingSettings
from sweeps.core.errors import TrackingError, one_line
from sweeps.core.redaction import redact_optional
from sweeps.tracking import client as tracking
from sweeps.tracking import store_template
from sweeps.tracking import ui_views
from sweeps.tracking.helper import Helper, HelperError

log = logging.getLogger(__name__)

#: Finished runs whose tail may wait in the queue; the training thread waits beyond that
#: (each holds a run's model and curves in memory).
QUEUE_SIZE = 8
_DONE = object()


class BackgroundWriter:
    """Runs queued ``function(*args)`` jobs one after the other in a daemon thread.

    ``submit`` blocks only when :data:`QUEUE_SIZE` jobs wait. A failing job is logged as a
    warning and counted in :attr:`failures` (a run's tail is a courtesy once its trial is
    decided; what decides a trial is written by the training thread itself). ``drain``
    waits until the queue is empty; ``close`` drains and stops the thread.
    """

    def __init__(self, maxsize: int = QUEUE_SIZE, name: str = "mlflow-writer", offload: bool = False) -> None:
        self.offload = offload
        self._helper = Helper()
        self._queue: queue.Queue = queue.Queue(maxsize)
        self.failures: list[str] = []
        self.jobs_done = 0
        self._closed = self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, function: Callable[..., Any], *args, **kwargs) -> None:
        if self._stopping or not self._thread.is_alive():
            self._call(function, args, kwargs)  # after close: do it now rather than lose it
            return
        self._queue.put((function, args, kwargs))

    def offloaded(self, function: Callable[..., Any], *args) -> Any:
        """``function(*args)`` -- CPU-bound drawing and file writing -- in the writer's helper
        process when ``offload`` is on (a thread would take the interpreter lock from the
        training thread), else here. A job calls it and waits; function and arguments must pickle."""
        if not self.offload:
            return function(*args)
        try:
            return self._helper.call(function, *args)
        except HelperError as error:  # the helper died: do it here rather than lose it
            log.warning("%s; drawing in the writer thread", error)
            return function(*args)

    def drain(self) -> None:
        """Wait until every job queued so far is done."""
        if self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Drain, then stop the thread (idempotent)."""
        if self._closed:
            return
        if self._thread.is_alive():
            if not self._stopping:
                self._stopping = True
                self._queue.put(_DONE)
            self._thread.join()  # a signal may interrupt this: close() at exit waits again
        self._helper.close()
        self._closed = True
        atexit.unregister(self.close)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _DONE:
                    return
                try:
                    self._call(*job)
                except BaseException as error:  # noqa: BLE001 - e.g. a StorageOutage: the jobs after it still run
                    self._failed(job[0], error)
            finally:
                self._queue.task_done()

    def _call(self, function, args, kwargs) -> None:
        try:
            function(*args, **kwargs)
            self.jobs_done += 1
        except Exception as error:  # noqa: BLE001 - the job's owner decided the trial already
            self._failed(function, error)

    def _failed(self, function, error: BaseException) -> None:
        self.failures.append(f"{getattr(function, '__name__', function)}: {error}")
        log.warning("background tracking job failed: %s", error)


class RemoteClient:
    """The session's :class:`mlflow.MlflowClient` for runs' background writes.

    When the writer offloads (a sweep's worker), every method call is made in the writer's
    helper process, by a client of its own for the same store (:func:`client_of`): a store's
    writes are Python work (SQLAlchemy, artifact copies) that, in a thread of the training
    process, would take the interpreter lock from the training. Pickled -- as an argument of
    an offloaded function -- it is that helper-side client. Attributes other than methods
    (``tracking_uri``), and every call when the writer does not offload, are the local client's.
    """

    def __init__(self, writer: BackgroundWriter, uri: str, local: MlflowClient) -> None:
        self._writer, self._uri, self._local = writer, uri, local

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._local, name)
        if not callable(attribute) or not self._writer.offload:
            return attribute

        def remote(*args, **kwargs):
            return self._writer.offloaded(_call_client, self._uri, name, args, kwargs)
        return remote

    def __reduce__(self):
        return client_of, (self._uri,)


_clients: dict[str, MlflowClient] = {}
_clients_lock = threading.Lock()


def client_of(uri: str) -> MlflowClient:
    """This process's client of the store ``uri`` (one per process and store)."""
    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = MlflowClient(tracking_uri=uri)
        return _clients[uri]


def _call_client(uri: str, name: str, args: tuple, kwargs: dict) -> Any:
    return getattr(client_of(uri), name)(*args, **kwargs)


@dataclass
class Session:
    """One client and experiment for every run of a process, and the writer of their tails."""

    settings: TrackingSettings
    client: MlflowClient
    experiment_id: str
    writer: BackgroundWriter = field(default_factory=BackgroundWriter)
    _views: dict = field(default_factory=dict, repr=False)
    _writes: Any = field(default=None, repr=False)

    @property
    def writes(self) -> RemoteClient:
        """The client of runs' background writes (:class:`RemoteClient`: in the helper process
        when the writer offloads)."""
        if self._writes is None:
            self._writes = RemoteClient(self.writer, self.settings.uri, self.client)
        return self._writes

    def ensure_view(self, task: str, parent_run_id: str | None = None) -> str | None:
        """The saved UI view of the experiment (or of the sweep ``parent_run_id``): written once per process."""
        key = (task, parent_run_id)
        if self._views.get(key) is None:
            self._views[key] = ui_views.ensure_run_view_quietly(self.client, self.experiment_id, task, parent_run_id)
        return self._views[key]

    def view_id(self, task: str, parent_run_id: str | None = None) -> str | None:
        """The view's id once :meth:`ensure_view` wrote it (None before, or when it could not be)."""
        return self._views.get((task, parent_run_id))

    def close(self) -> None:
        """Finish every queued tail (the process may exit after this)."""
        self.writer.close()


def connect(settings: TrackingSettings, offload: bool = False) -> Session:
    """Probe the tracking store, open a client and get (or create) the experiment.

    ``offload``: the session's writer draws and writes the runs' files in a helper process
    (for a process that trains run after run: a sweep's worker).

    Raises:
        TrackingError: one line naming ``tracking.uri``, its value and what went wrong.
    """
    tracking.probe(settings.uri, settings.probe_timeout, settings.experiment_name)
    try:
        client = _client(settings.uri)
        experiment_id = tracking.get_or_create_experiment(client, settings.experiment_name, settings.artifact_location)
    except (MlflowException, OSError, ImportError) as error:
        raise TrackingError(
            f"tracking.uri={redact_optional(settings.uri)!r} cannot be used: {one_line(error, typed=True)[:300]}"
        ) from None
    return Session(settings, client, experiment_id, BackgroundWriter(offload=offload))


def _client(uri: str) -> MlflowClient:
    """An MlflowClient for ``uri``; a store that cannot be opened is a :class:`TrackingError`."""
    try:
        if uri.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "mysql"):
            return MlflowClient(tracking_uri=uri)
        # A database store is created or upgraded by the first client that opens it: one
        # process at a time, or N processes started at once race through MLflow's migrations.
        from sweeps.core.locks import database_lock  # lazy: imports SQLAlchemy, for database stores only

        with database_lock(uri, "mlflow:store"):
            store_template.seed(uri)  # a new SQLite store: a copy of a migrated empty one
            client = MlflowClient(tracking_uri=uri)
            client._tracking_client.store  # noqa: B018 - opens (creates, upgrades) the store now
        return client
    except MlflowException:
        raise
    except Exception as error:  # e.g. a database whose tables cannot be created or upgraded
        raise TrackingError(
            f"tracking.uri={redact_optional(uri)!r} cannot be used: {one_line(error, typed=True)[:300]}"
        ) from None
