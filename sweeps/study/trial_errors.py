"""How a trial can fail, and the stop a signal asks for.

* :class:`TrialFailed` -- the trial failed (``retryable``: not its own fault, re-run queued);
* :class:`TrialLost` -- another worker failed the trial (a stale heartbeat) while it ran here;
* :class:`TrackingOutage` -- the tracking server stayed away for ``sweep.outage_wait``;
* :func:`is_tracking_failure` -- whether an error is the tracking store's, not the trial's;
* :data:`STOP` -- the process's pending Ctrl-C / SIGTERM, acted on at a safe point.
"""

from __future__ import annotations

import signal

import requests
import sqlalchemy.exc
from mlflow.exceptions import MlflowException

from sweeps.core.errors import TrackingError
from sweeps.training.run import Terminated


class TrialFailed(Exception):
    """A trial failed; ``str()`` is the one-line reason (also the trial's ``fail_reason``).

    ``retryable``: the failure was not the trial's (the tracking server did not answer);
    it does not count toward ``n_trials`` and a re-run is queued.
    """

    def __init__(self, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable


class TrialLost(Exception):
    """The trial was ended by another process (declared dead for a stale heartbeat) while it ran."""


class TrackingOutage(Exception):
    """The tracking server stopped answering for longer than ``sweep.outage_wait``; ``str()`` is one line."""


#: Substrings of errors that mean "the tracking store did not answer", not "the trial is bad".
_OUTAGE_MARKERS = (
    "API request to", "Max retries exceeded", "Connection refused", "Connection aborted", "Connection reset",
    "RemoteDisconnected", "timed out", "Temporarily Unavailable", "TEMPORARILY_UNAVAILABLE", "Bad Gateway",
    "Service Unavailable", "Gateway Timeout", "could not connect to server", "server closed the connection",
    "no MLflow server answers",
)


def is_tracking_failure(error: BaseException) -> bool:
    """Whether ``error`` says the tracking store (or the network to it) failed, rather than the trial."""
    if isinstance(error, (TrackingError, ConnectionError, TimeoutError)):
        return True
    if isinstance(error, requests.exceptions.RequestException):
        return True
    if isinstance(error, MlflowException):
        text = str(error)
        return any(marker in text for marker in _OUTAGE_MARKERS)
    return isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))


class StopRequest:
    """A stop asked for by a signal, acted on at the next safe point.

    ``ann-sweep`` turns its first Ctrl-C / SIGTERM into a request instead of an exception
    raised wherever the main thread happens to be (possibly inside a database write of
    the Optuna storage or the MLflow store, which would leave a lock behind). The request
    is acted on at the end of the running epoch (:class:`EpochReporter`) or before the
    next trial: :meth:`check` raises ``KeyboardInterrupt`` (SIGINT) or
    :class:`sweeps.training.run.Terminated` (SIGTERM) there.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        self.signum = signum

    def clear(self) -> None:
        self.signum = None

    def check(self) -> None:
        if self.signum is None:
            return
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(self.signum)


#: The process's stop request (see :class:`StopRequest`).
STOP = StopRequest()
