"""A lost connection to the Optuna storage is a fault of the storage, not of the trial.

When PostgreSQL restarts, a proxy drops an idle connection, or an administrator runs
``pg_terminate_backend``, the statement running on that connection fails with SQLAlchemy's
``OperationalError`` (or ``InterfaceError``), which Optuna wraps in its
``StorageInternalError``. Left alone, that error fails the running trial as if its
training had raised (it would count toward ``n_trials`` and ``sweep.max_failures`` and never
be re-run) or ends the worker with a traceback.

:class:`sweeps.study.storage.RetryingRDBStorage` is Optuna's ``RDBStorage`` whose every call is
retried on such a fault (:func:`is_storage_fault`), with a fresh connection, after pauses of 0.5, 1, 2,
4, 8, 8, ... seconds (:data:`FIRST_PAUSE`, :data:`MAX_PAUSE`), for up to
:data:`RETRY_SECONDS` in all. A heartbeat is never retried: a missed one is simply
written again at the next interval. When the storage stays away longer, the call raises
:class:`StorageOutage`, one line, which is deliberately not an ``Exception``: neither
Optuna nor the objective may turn it into a failed trial. The trial stays RUNNING, its
heartbeats stop, and another worker fails it once its heartbeat is stale and runs its
re-run; the worker that met the outage exits with that one line (status 1).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import optuna
import sqlalchemy.exc

from sweeps.core.errors import one_line

log = logging.getLogger(__name__)

#: Seconds a storage call is retried for, in all, before the worker gives up on the storage.
RETRY_SECONDS = 60.0
#: The first pause between two attempts; each next pause doubles, up to MAX_PAUSE.
FIRST_PAUSE = 0.5
MAX_PAUSE = 8.0

_FAULTS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DisconnectionError)

#: What a database says when it refuses a connection for now, not for good: no free
#: connection slot (PostgreSQL's max_connections, a role's or a database's CONNECTION LIMIT,
#: MySQL's max_connections) or a server starting up or shutting down. PostgreSQL's SQLSTATEs
#: (53300, 57P03) are not set on a refused connection, so the words are matched too.
_BUSY_SQLSTATES = ("53300", "57P03")
_BUSY_WORDS = ("too many clients", "too many connections", "remaining connection slots are reserved",
               "the database system is starting up", "the database system is shutting down",
               "the database system is in recovery mode", "the database system is not yet accepting connections")


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


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is a storage fault of a server that refused a connection for now (see ``_BUSY_WORDS``)."""
    if not is_storage_fault(error):
        return False
    if isinstance(error, optuna.exceptions.StorageInternalError):
        error = error.__cause__ or error
    if getattr(getattr(error, "orig", None), "pgcode", None) in _BUSY_SQLSTATES:
        return True
    return any(words in describe(error).lower() for words in _BUSY_WORDS)


def describe(error: BaseException) -> str:
    """The database's own words for a fault, in one line."""
    if isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    return one_line(error, 240)


def retry_on_faults(call: Callable[[], Any], shown_url: str, seconds: float = RETRY_SECONDS,
                    retryable: Callable[[BaseException], bool] = is_storage_fault) -> Any:
    """``call()``, retried with back-off while it fails with a storage fault.

    ``retryable``: which faults are retried (default: every storage fault; :func:`is_busy`:
    only a server refusing connections for now); any other error is raised as it is.

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
            if not retryable(error):
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
