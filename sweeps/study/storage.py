"""The Optuna storage of a sweep: opened once per process, every call surviving a lost connection.

* :func:`open_storage` opens ``sweep.storage``: an SQLAlchemy URL (``sqlite:///optuna.db``,
  ``postgresql://user@host/db``, ``mysql://...``) or, for a value without ``://``, an
  Optuna journal file (``optuna.log``). Several processes may share an SQLite file (they wait up
  to :data:`SQLITE_BUSY_TIMEOUT` seconds for each other's writes) or a journal file
  (Optuna locks it); several machines share PostgreSQL.
* Heartbeats: with an RDB storage every running trial writes a heartbeat every
  ``sweep.heartbeat_interval`` seconds; a RUNNING trial whose heartbeat is older than
  ``sweep.grace_period`` is failed by the next worker that looks (or by ``ann-sweep-status``)
  and re-run with the same values, up to ``sweep.max_retries`` times (:func:`retry_callback`).
  A journal file has no heartbeats.
* :class:`RetryingRDBStorage`: Optuna's RDBStorage whose every call is retried on a lost
  connection (the faults, the back-off and the outage are in :mod:`sweeps.core.faults`).
* :func:`storage_of` / :func:`stored_trial`: the one place that reads Optuna's private storage
  attribute of a study; :func:`report_values`: a trial's intermediate values of several
  steps in one transaction (Optuna writes one a call).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.storages._rdb import storage as _optuna_rdb  # its session scope, for report_values / set_user_attrs
from optuna.storages.journal import JournalFileBackend, JournalStorage

from sweeps.config.sweep_settings import SweepSettings
from sweeps.core import vocabulary as V
from sweeps.core.drivers import missing_driver
from sweeps.core.errors import UserError, one_line, root_cause
from sweeps.core.faults import RETRY_SECONDS, describe, is_busy, is_storage_fault, retry_on_faults
from sweeps.core.locks import database_lock
from sweeps.core.redaction import redact
from sweeps.core.storage import absolute_path, application_name, sqlite_path, storage_kind, with_driver

log = logging.getLogger(__name__)

#: Seconds an SQLite writer waits for another process's lock before giving up.
SQLITE_BUSY_TIMEOUT = 120
#: Seconds a PostgreSQL session of a storage without heartbeats may sit idle inside a
#: transaction before the server ends it (with heartbeats: the grace period).
IDLE_IN_TRANSACTION_TIMEOUT = 60


def open_storage(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 max_retries: int | None = None):
    """Open (and create if needed) the Optuna storage at ``url``.

    With an RDB storage and ``heartbeat_interval``, running trials write heartbeats and a
    trial without one for ``grace_period`` seconds (default: twice the interval) is failed
    by the next worker that looks, then re-run with the same values up to ``max_retries``
    times (Optuna's ``RetryHeartbeatStaleTrialCallback``). A journal file keeps no
    heartbeats: the settings are ignored there.

    Several processes may open a fresh PostgreSQL or MySQL database at once: the first one
    creates Optuna's tables while the others wait on a database lock. Every call of the
    storage survives a lost connection (:class:`RetryingRDBStorage`).

    Raises:
        UserError: ``sweep.storage=... cannot be opened: <why>`` (one line).
    """
    kind = storage_kind(url)
    if kind == "journal":
        return _journal_storage(url)
    if kind not in ("sqlite", "postgresql", "mysql", "oracle", "mssql"):
        raise _cannot_open(url, "expected sqlite:///file.db, postgresql://user@host/db, mysql://... "
                                "or a journal file path such as optuna.log")
    return _rdb_storage(url, _rdb_options(url, kind, heartbeat_interval, grace_period, max_retries))


def _cannot_open(url: str, problem: str) -> UserError:
    return UserError(f"sweep.storage={redact(url)!r} cannot be opened: {problem}")


def _journal_storage(url: str):
    path = Path(absolute_path(url))
    if not path.parent.is_dir():
        raise _cannot_open(url, f"its folder {path.parent} does not exist")
    if path.is_dir():
        raise _cannot_open(url, "it is a folder; give a journal file such as optuna.log, or a URL such as sqlite:///optuna.db")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _cannot_open(url, "it is not writable")
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as error:
        raise _cannot_open(url, one_line(root_cause(error), 240)) from None


def _rdb_options(url: str, kind: str, heartbeat_interval: int | None, grace_period: int | None,
                 max_retries: int | None) -> dict[str, Any]:
    """RDBStorage's keyword arguments: connection settings, heartbeats and the retry callback."""
    engine_kwargs: dict[str, Any] = {}
    if kind == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            if not path.parent.exists():
                raise _cannot_open(url, f"the folder {path.parent} of the SQLite file does not exist")
            if path.exists() and path.is_dir():
                raise _cannot_open(url, f"{path} is a folder")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    elif kind in ("postgresql", "mysql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        if kind == "postgresql":  # who holds a connection, in pg_stat_activity
            engine_kwargs["connect_args"]["application_name"] = application_name()
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat_interval is not None:
        grace_period = int(grace_period) if grace_period is not None else 2 * int(heartbeat_interval)
        kwargs.update(heartbeat_interval=int(heartbeat_interval), grace_period=grace_period)
        if max_retries:
            kwargs["heartbeat_stale_trial_callback"] = retry_callback(max_retries)
    if kind == "postgresql":
        # A worker stopped (SIGSTOP, a frozen VM) inside one of Optuna's transactions keeps
        # its row locks, and every other worker that fails its stale trial waits on them.
        # The server ends such a session after the grace period (or a minute): its locks go
        # with it, and the stalled worker, on waking, finds its trial failed.
        idle = 1000 * (grace_period if heartbeat_interval is not None else IDLE_IN_TRANSACTION_TIMEOUT)
        engine_kwargs["connect_args"]["options"] = f"-c idle_in_transaction_session_timeout={idle}"
    return kwargs


def _rdb_storage(url: str, kwargs: dict[str, Any]):
    """The RDB storage, its tables created under a database lock (retried when a racing process made them)."""
    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with database_lock(with_driver(url), "ann-sweep:create-tables"):
                    # A server with no free connection slot (or starting up) is waited for,
                    # like the lock above; anything else is said at once.
                    return retry_on_faults(lambda: RetryingRDBStorage(with_driver(url), shown_url=redact(url), **kwargs),
                                           redact(url), retryable=is_busy)
        except Exception as error:  # driver missing, refused, not a database, ...
            driver = missing_driver(error, url)
            if driver is not None:
                raise _cannot_open(url, driver) from None
            text = one_line(root_cause(error), 240)
            if attempt < 3 and any(m in text for m in ("already exists", "duplicate key", "UNIQUE constraint", "Duplicate entry")):
                time.sleep(0.2 + random.random())  # another process created the tables meanwhile
                continue
            raise _cannot_open(url, text) from None
    raise AssertionError("unreachable")


def open_sweep_storage(settings: SweepSettings):
    """:func:`open_storage` with the sweep's heartbeat, grace period and retry settings."""
    heartbeat = settings.heartbeat_interval if settings.heartbeats else None
    return open_storage(settings.storage, heartbeat, settings.grace_period, settings.max_retries)


def retry_callback(max_retries: int):
    """Optuna's callback that re-runs a failed trial with the same values (``max_retries`` times)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
        return cls(max_retry=max_retries)


def retry_trial(study, trial, max_retries: int) -> bool:
    """Queue a re-run of ``trial`` (same values, state WAITING); False when its retries are used up.

    The new trial carries Optuna's system attributes ``failed_trial`` (the first trial of
    the series) and ``retry_history`` (every trial of the series so far).
    """
    history = list(trial.system_attrs.get(V.TRIAL_RETRY_HISTORY, []))
    if max_retries <= 0 or len(history) + 1 > max_retries:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry_callback(max_retries)(study, trial)
    return True


def retried_from(trial) -> int | None:
    """The number of the trial that ``trial`` re-runs (the last of its retry history), or None."""
    history = trial.system_attrs.get(V.TRIAL_RETRY_HISTORY) or []
    return int(history[-1]) if history else None


def storage_of(study):
    """The storage behind ``study``: Optuna keeps it private, and this is the one place that reads it."""
    return study._storage


def _batching_backend(trial):
    """``(backend, cached frozen trial)`` when ``trial``'s writes can go in one transaction
    (its study's storage is a :class:`RetryingRDBStorage`), else None (a FixedTrial, another storage)."""
    study = getattr(trial, "study", None)  # an optuna.trial.FixedTrial has none
    backend = getattr(storage_of(study), "_backend", None) if study is not None else None
    cached = getattr(trial, "_cached_frozen_trial", None)  # what trial.report / set_user_attr update too
    return (backend, cached) if isinstance(backend, RetryingRDBStorage) and cached is not None else None


def report_values(trial, values: Sequence[tuple[float, int]]) -> None:
    """``trial.report(value, step)`` for each pair, in order: in one transaction when the
    study's storage is a :class:`RetryingRDBStorage` (the steps must be new, the values
    floats; Optuna's own report writes each in a transaction of its own, about 5 ms of
    Python a value on SQLite), else one call each."""
    batching = _batching_backend(trial) if len(values) > 1 else None
    if batching is None:
        for value, step in values:
            trial.report(value, step)
        return
    backend, cached = batching
    fresh = {int(step): float(value) for value, step in values if int(step) not in cached.intermediate_values}
    backend.set_trial_intermediate_values(trial._trial_id, fresh)
    cached.intermediate_values.update(fresh)


def set_user_attrs(trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr(key, value)`` for each item: in one transaction when the study's
    storage is a :class:`RetryingRDBStorage` (a trial's attributes come in groups: its run,
    why it was pruned, its folds' scores), else one call each."""
    batching = _batching_backend(trial) if len(attrs) > 1 else None
    if batching is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend, cached = batching
    backend.set_trial_user_attrs(trial._trial_id, dict(attrs))
    cached.user_attrs.update(attrs)


def stored_trial(trial):
    """The stored state of a live trial (a FrozenTrial), or None when the storage cannot say."""
    try:
        return storage_of(trial.study).get_trial(trial._trial_id)
    except Exception:
        return None


# --------------------------------------------------------------- retrying storage


#: The RDBStorage methods retried on a fault: the storage API and the private ones Optuna's
#: cache (``_CachedStorage``) calls directly.
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "get_n_trials", "_get_stale_trial_ids",
)


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls survive a lost connection (see the module docstring).

    Args:
        shown_url: the storage URL as it may be printed (password hidden).
        retry_seconds: how long a call is retried in all (:data:`RETRY_SECONDS`).
    """

    def __init__(self, url: str, *args, shown_url: str | None = None, retry_seconds: float = RETRY_SECONDS,
                 **kwargs) -> None:
        self.shown_url = shown_url or url
        self.retry_seconds = retry_seconds
        self._heartbeats_failing = False
        super().__init__(url, *args, **kwargs)

    def _retry(self, call: Callable[[], Any]) -> Any:
        return retry_on_faults(call, self.shown_url, self.retry_seconds)

    def set_trial_state_values(self, trial_id: int, state, values=None) -> bool:
        attempts = [0]

        def call():
            attempts[0] += 1
            try:
                return optuna.storages.RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retried write whose first attempt was committed before the connection dropped.
                if attempts[0] > 1 and state.is_finished() and \
                        optuna.storages.RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return self._retry(call)

    def set_trial_intermediate_values(self, trial_id: int, values: dict[int, float]) -> None:
        """Several steps' intermediate values of a trial in one transaction (retried as one)."""
        def call():
            with _optuna_rdb._create_scoped_session(self.scoped_session, True) as session:
                for step, value in values.items():
                    self._set_trial_intermediate_value_without_commit(session, trial_id, step, value)

        self._retry(call)

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Several user attributes of a trial in one transaction (retried as one)."""
        def call():
            with _optuna_rdb._create_scoped_session(self.scoped_session, True) as session:
                for key, value in attrs.items():
                    self._set_trial_attr_without_commit(session, _optuna_rdb.models.TrialUserAttributeModel,
                                                        trial_id, key, value)

        self._retry(call)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as error:  # the next beat comes in heartbeat_interval seconds
            if not is_storage_fault(error):
                raise
            if not self._heartbeats_failing:
                log.warning("heartbeats cannot be written to the Optuna storage %s (%s); trying again every "
                            "heartbeat interval", self.shown_url, describe(error))
            self._heartbeats_failing = True
        else:
            self._heartbeats_failing = False


def _retrying(name: str):
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return self._retry(lambda: method(self, *args, **kwargs))

    return call


for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name))
