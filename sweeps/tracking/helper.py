"""A helper process for CPU-bound tracking work: ``python -m sweeps.tracking.helper``.

A sweep's worker trains in its main thread; drawing a run's learning curve and writing
its model files are pure-Python work that, in a thread, would take the interpreter lock
from the training for about as long as they run. :class:`Helper` runs such calls in a
process of its own, one at a time (threads share it, one request and its answer at a
time): it sends ``(function, args)`` pickled over the child's stdin and reads back
``(ok, value)`` from its stdout. A plain subprocess rather than a
multiprocessing pool: it never re-imports the caller's ``__main__`` (a script without an
``if __name__ == "__main__"`` guard would run again). The child ignores Ctrl-C and
SIGTERM -- its parent decides and drains it -- and exits when its stdin closes.

The child runs at a lower scheduling priority (:data:`NICENESS`): its work is never urgent
(a bounded queue holds the runs that wait for it, and the sweep drains it at the end),
whereas the training beside it is. With BLAS using every core, a helper of equal priority
preempts one of the BLAS threads now and then, and every matrix product waits for the
slowest thread: the tracked default sweep took 68.6 s against 59.0 s untracked (16 %),
with the helper niced 60.7 s (3 %; docs/benchmarks.md, "Tracking overhead").
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from typing import Any, Callable


class HelperError(RuntimeError):
    """The helper process is gone (or its answer could not be read)."""


#: What the helper imports as it starts, before the first call arrives: the drawing and the
#: model writing (about 2-4 s of CPU in all, paid while its parent sets the sweep up).
WARM_MODULES = ("sweeps.training.tracked", "sweeps.training.plots", "mlflow.pyfunc", "mlflow.models")

#: What the sweep's Optuna page draws with at its end (plotly, and scikit-learn's random
#: forest behind Optuna's fANOVA importances: about 1.5 s, which the page would wait for),
#: imported only while no call waits: at the start they delayed the first runs' tails, and
#: the training thread waited for the writer's queue.
IDLE_MODULES = ("optuna.visualization", "optuna.importance")

#: How much lower the helper's scheduling priority is than its parent's (``nice``; Unix only).
NICENESS = 10

_prestarted: subprocess.Popen | None = None


def _spawn() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    return subprocess.Popen([sys.executable, "-m", "sweeps.tracking.helper"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def prestart() -> None:
    """Start a helper process now, for the next :class:`Helper` to take: its imports then run
    while this process does single-threaded work (a sweep opening its study and parent run)
    instead of beside the training of the first trials. Unused, it exits with this process."""
    global _prestarted
    if _prestarted is None:
        _prestarted = _spawn()
        atexit.register(_close_prestarted)


def _close_prestarted() -> None:
    global _prestarted
    process, _prestarted = _prestarted, None
    if process is not None:
        _close_process(process)


class Helper:
    """One helper process (started on the first call); :meth:`call` blocks until it answers."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one request and its answer at a time: threads share the helper

    def call(self, function: Callable[..., Any], *args) -> Any:
        """``function(*args)`` in the helper; its exception is raised here."""
        global _prestarted
        with self._lock:
            if self.process is None:
                self.process, _prestarted = (_prestarted or _spawn()), None
            try:
                pickle.dump((function, args), self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self.process.stdin.flush()
                ok, value = pickle.load(self.process.stdout)
            except (OSError, EOFError, pickle.PickleError) as error:
                self._close()
                raise HelperError(f"the tracking helper process stopped: {error}") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Let the helper finish and exit (idempotent)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _close_process(process)


def _close_process(process: subprocess.Popen) -> None:
    try:
        process.stdin.close()
        process.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()


def main() -> None:
    import mlflow  # noqa: F401 - lazy: configures its loggers on import; quieted next, as in the parent

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(os, "nice"):  # second to the training: see the module docstring
        with contextlib.suppress(OSError):
            os.nice(NICENESS)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the called code prints goes to stderr, not into the answers
    for module in WARM_MODULES:  # requests wait in the pipe meanwhile
        _import_quietly(module)
    requests = sys.stdin.buffer
    idle_modules = list(IDLE_MODULES)
    while True:
        while idle_modules and not _call_waiting(requests):
            _import_quietly(idle_modules.pop(0))
        try:
            function, args = pickle.load(requests)
        except EOFError:  # every answer is written: skip the interpreter's teardown (about half a second)
            for stream in (sys.stdout, sys.stderr):  # what the called code printed
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(0)
        try:
            answer = (True, function(*args))
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            answer = (False, error)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - an unpicklable result or exception
            data = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
        answers.write(data)
        answers.flush()


def _call_waiting(requests) -> bool:
    """Whether a call waits in the pipe. A caller sends one request and waits for its answer,
    so nothing of the next request is buffered here yet: the pipe's readiness tells."""
    if os.name == "nt":  # select() takes sockets only there: never idle, import when a call needs it
        return True
    return bool(select.select([requests], [], [], 0)[0])


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # a module that fails here fails again where it is used, with its error
        importlib.import_module(module)


if __name__ == "__main__":
    main()
