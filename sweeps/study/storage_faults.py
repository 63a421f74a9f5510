"""A lost connection to the Optuna storage is a fault of the storage, not of the trial.

When PostgreSQL restarts, a proxy drops an idle connection, or an administrator runs
``pg_terminate_backend``, the statement running on that connection fails with SQLAlchemy's
``OperationalError`` (or ``InterfaceError``), which Optuna wraps in its
``StorageInternalError``. Left alone, that error fails the running trial as if its
training had raised (it would count toward ``n_trials`` and ``sweep.max_failures`` and never
be re-run) or ends the worker with a traceback.

:class:`RetryingRDBStorage` is Optuna's ``RDBStorage`` whose every call is retried on such
a fault (:func:`is_storage_fault`), with a fresh connection, after pauses of 0.5, 1, 2,
4, 8, 8, ... seconds (:data:`FIRST_PAUSE`, :data:`MAX_PAUSE`), for up to
:data:`RETRY_SECONDS` in all. A heartbeat is never retried: a missed one is simply
written again at the next interval. When the storage stays away longer, the call raises
:class:`StorageOutage`, one line, which is deliberately not an ``Exception``: neither
Optuna nor the objective may turn it into a failed trial. The trial stays RUNNING, its
heartbeats stop, and another worker fails it once its heartbeat is stale and runs its
re-run; the worker that met the outage exits with that one line (status 1).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

import optuna
import sqlalchemy.exc

log = logging.getLogger(__name__)

#: Seconds a storage call is retried for, in all, before the worker gives up on the storage.
RETRY_SECONDS = 60.0
#: The first pause between two attempts; each next pause doubles, up to MAX_PAUSE.
FIRST_PAUSE = 0.5
MAX_PAUSE = 8.0

_FAULTS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DisconnectionError)


class StorageOutage(BaseException):
    """The Optuna storage did not answer for :data:`RETRY_SECONDS`; ``str()`` is one line.

    A ``BaseException`` (like ``KeyboardInterrupt``): Optuna fails a trial on any
    ``Exception`` its objective raises, and this one is not the trial's fault.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def is_storage_fault(error: BaseException) -> bool:
    """Whether ``error`` is a lost or refused database connection (possibly wrapped by Optuna)."""
    if isinstance(error, optuna.exceptions.StorageInternalError):
        error = error.__cause__ or error
    return isinstance(error, _FAULTS)


def describe(error: BaseException) -> str:
    """The database's own words for a fault, in one line."""
    if isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    text = " ".join(str(error).split())
    return text[:240] or type(error).__name__


def retry_on_faults(call: Callable[[], Any], shown_url: str, seconds: float = RETRY_SECONDS) -> Any:
    """``call()``, retried with back-off while it fails with a storage fault.

    Raises:
        StorageOutage: the faults lasted ``seconds`` (the last one is named).
    """
    started = time.monotonic()
    pause = FIRST_PAUSE
    warned = False
    while True:
        try:
            result = call()
        except Exception as error:
            if not is_storage_fault(error):
                raise
            waited = time.monotonic() - started
            if waited + pause > seconds:
                raise StorageOutage(
                    f"the Optuna storage {shown_url} has not answered for {waited:.0f} s: {describe(error)}; "
                    "this worker stops, its running trial is re-run by another worker (or by the same command "
                    "run again) once its heartbeat is stale"
                ) from None
            if not warned:
                log.warning("the Optuna storage %s failed (%s); retrying for up to %.0f s",
                            shown_url, describe(error), seconds)
                warned = True
            time.sleep(pause)
            pause = min(2 * pause, MAX_PAUSE)
            continue
        if warned:
            log.warning("the Optuna storage %s answers again after %.1f s", shown_url, time.monotonic() - started)
        return result


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
