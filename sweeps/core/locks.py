"""Locks that every process opening the same database or file shares (:class:`StorageLock`).

A PostgreSQL advisory lock (``pg_advisory_lock``), a MySQL ``GET_LOCK``, or an exclusive
``flock`` for an SQLite or journal file (processes of one machine); the lock dies with its
holder's connection or process. :func:`database_lock` holds one around the first opening of
an Optuna storage or an MLflow store, so that processes starting at once on a fresh database
do not race to create its tables; :class:`sweeps.study.claims.Coordinator` holds the study's
lock while it claims a trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import threading
from pathlib import Path

import sqlalchemy

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: a file lock is then one process at a time
    fcntl = None

from sweeps.core.errors import one_line
from sweeps.core.faults import RETRY_SECONDS, is_busy, retry_on_faults
from sweeps.core.redaction import redact
from sweeps.core.storage import absolute_path, application_name, sqlite_path, storage_kind, with_driver

log = logging.getLogger(__name__)

#: This machine's name: a lock or claim held by a process here can be checked with :func:`pid_alive`.
HOST = socket.gethostname()

#: Default lease of a PostgreSQL lock: a holder that cannot run keeps it at most this long
#: (the study's lock uses the grace period).
LOCK_LEASE_SECONDS = 60


class StorageLock:
    """A lock shared by every process that opens the same storage (a context manager).

    :meth:`for_storage` picks the implementation from the storage URL. Locks are not
    re-entrant; one object is used by one thread at a time.
    """

    def __init__(self) -> None:
        self._thread_lock = threading.Lock()

    @staticmethod
    def for_storage(url: str, name: str, lease: float | None = None) -> "StorageLock":
        """The lock named ``name`` of the storage at ``url`` (an Optuna storage URL or journal path).

        ``lease``: seconds after which a PostgreSQL lock whose holder cannot run is broken
        (default :data:`LOCK_LEASE_SECONDS`; see :class:`_PostgresLock`).
        """
        kind = storage_kind(url)
        if kind == "postgresql":
            return _PostgresLock(with_driver(url), name, lease or LOCK_LEASE_SECONDS)
        if kind == "mysql":
            return _MySQLLock(url, name)
        if kind == "journal":
            return _FileLock(str(Path(absolute_path(url)).resolve()), name)
        if kind == "sqlite":
            path = sqlite_path(url)
            return _FileLock(str(path.resolve()) if path is not None else url, name)
        return StorageLock()  # another database: one process at a time at least

    def acquire(self) -> None:
        self._thread_lock.acquire()

    def release(self) -> None:
        self._thread_lock.release()

    def held(self) -> bool:
        """Whether the lock (taken by this object) is still held; only a lease can be lost."""
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> "StorageLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _key64(text: str) -> int:
    """A signed 64-bit key for ``text`` (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big", signed=True)


class _SqlLock(StorageLock):
    """A named lock held by a connection of its own (released if the process dies)."""

    acquire_sql = release_sql = ""
    isolation_level = "AUTOCOMMIT"
    #: Seconds a fault while taking the lock is retried for before :class:`StorageOutage`.
    retry_seconds = RETRY_SECONDS
    #: The URLs a lock of this process has connected to: a fault there is a fault, not a typo.
    _reached: set[str] = set()

    def __init__(self, url: str, name: str) -> None:
        super().__init__()
        self.url, self.name = url, name
        self._engine = None
        self._connection = None
        self._connected_once = False

    def _params(self) -> dict:
        raise NotImplementedError

    def _connect_args(self) -> dict:
        return {"connect_timeout": 10}

    def _connect(self):
        if self._connection is None:
            self._engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool,
                                                    isolation_level=self.isolation_level,
                                                    connect_args=self._connect_args())
            self._connection = self._engine.connect()
            self._connected_once = True
            _SqlLock._reached.add(self.url)
        return self._connection

    def _execute(self, sql: str) -> None:
        self._connect().execute(sqlalchemy.text(sql), self._params())

    def _take(self) -> None:
        """Take the lock on the lock's connection (waiting for it)."""
        self._execute(self.acquire_sql)

    def _give_back(self) -> None:
        self._execute(self.release_sql)

    def acquire(self) -> None:
        super().acquire()

        def attempt() -> None:
            try:
                self._take()
            except Exception:  # a lost connection (database restarted, backend terminated): a new one
                self._drop()
                raise

        try:
            if self._connected_once or self.url in _SqlLock._reached:
                # lost since: the database restarted, the backend was terminated
                retry_on_faults(attempt, redact(self.url), self.retry_seconds)
            else:  # never reached: a wrong URL or a server that is down is said at once; a server
                # that refuses for now (all connection slots taken, starting up) is waited for
                retry_on_faults(attempt, redact(self.url), self.retry_seconds, retryable=is_busy)
        except BaseException:
            super().release()
            raise

    def release(self) -> None:
        try:
            self._give_back()
        except Exception as error:  # the connection is gone, and with it the lock
            log.warning("releasing the storage lock %r failed (it was lost while held: %s)", self.name,
                        one_line(error, 200))
            self._drop()
        finally:
            super().release()

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            if self._connection is not None:
                self._connection.close()
        with contextlib.suppress(Exception):
            if self._engine is not None:
                self._engine.dispose()
        self._connection = self._engine = None

    def close(self) -> None:
        self._drop()


class _PostgresLock(_SqlLock):
    """A lease: ``pg_advisory_xact_lock`` taken inside a transaction of the lock's own connection.

    The server ends a session that stays idle inside a transaction for ``lease`` seconds
    (``idle_in_transaction_session_timeout``), and the lock with it. While it holds the
    lock, the holder's keeper thread runs ``SELECT 1`` every ``lease / 4`` seconds, so
    only a holder that cannot run -- stopped (SIGSTOP, Ctrl-Z), a laptop asleep, a frozen
    VM, cut off from the database -- loses it, after ``lease`` seconds; the others then
    go on. No TCP keepalive or permission to terminate other sessions is needed.
    """

    isolation_level = "READ COMMITTED"

    def __init__(self, url: str, name: str, lease: float = 60) -> None:
        super().__init__(url, name)
        self.lease = float(lease)
        self._transaction = None
        self._use = threading.Lock()        # the connection: the keeper's pings vs. release
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._lost = False

    def _params(self) -> dict:
        return {"key": _key64(self.name)}

    def _connect_args(self) -> dict:
        return {**super()._connect_args(), "application_name": application_name("lock"),
                "options": f"-c idle_in_transaction_session_timeout={int(1000 * self.lease)}"}

    def _take(self) -> None:
        connection = self._connect()
        if connection.in_transaction():
            connection.rollback()
        self._transaction = connection.begin()
        self._execute("SELECT pg_advisory_xact_lock(:key)")
        self._lost = False
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, args=(self._stop,), name="ann-sweep-lock-keeper",
                                        daemon=True)
        self._keeper.start()

    def _keep(self, stop: threading.Event) -> None:
        while not stop.wait(max(0.2, self.lease / 4)):
            with self._use:
                if stop.is_set():
                    return
                try:
                    self._connection.execute(sqlalchemy.text("SELECT 1"))
                except Exception:  # the server ended the session: the lock is gone
                    self._lost = True
                    return

    def _give_back(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=30)
            self._keeper = None
        with self._use:
            if self._lost:
                raise RuntimeError(f"the session was ended after {self.lease:g} s idle")
            self._transaction.commit()  # ends the transaction, and the lock with it
            self._transaction = None

    def _drop(self) -> None:
        self._stop.set()
        self._transaction = None
        super()._drop()

    def held(self) -> bool:
        """Whether the lock is still held (False: the server ended the session while this process was stopped)."""
        with self._use:
            if self._lost or self._connection is None:
                return False
            try:
                self._connection.execute(sqlalchemy.text("SELECT 1"))
                return True
            except Exception:
                self._lost = True
                return False


class _MySQLLock(_SqlLock):
    acquire_sql = "SELECT GET_LOCK(:key, 600)"
    release_sql = "SELECT RELEASE_LOCK(:key)"

    def _params(self) -> dict:
        return {"key": "ann-sweep-" + hashlib.sha1(self.name.encode()).hexdigest()[:40]}


class _FileLock(StorageLock):
    """``flock`` on a file in the temporary folder, named after the storage file and the lock."""

    def __init__(self, storage_path: str, name: str) -> None:
        super().__init__()
        folder = Path(tempfile.gettempdir()) / "ann-sweep-locks"
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(f"{storage_path}\0{name}".encode("utf-8")).hexdigest()[:24]
        self.path = folder / f"{digest}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        super().acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            super().release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            super().release()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def database_lock(url: str, name: str):
    """Hold lock ``name`` of the database at ``url`` for the block: a PostgreSQL or MySQL lock,
    or a file lock for an SQLite file (other URLs: no lock).

    Used around the first opening of an Optuna storage or an MLflow store, so that
    processes starting at once on a fresh database do not race to create (or upgrade)
    its tables.
    """
    if storage_kind(url) not in ("postgresql", "mysql", "sqlite"):
        yield
        return
    lock = StorageLock.for_storage(url, name)
    try:
        with lock:
            yield
    finally:
        lock.close()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie (dead, not yet reaped)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError):
        return True
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (not Linux): the signal test is all we have
        return True
