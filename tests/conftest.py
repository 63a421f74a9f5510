"""Fixtures shared by every test folder: a real ``mlflow server`` backed by PostgreSQL, no mocks.

* ``postgres_database``: a fresh, empty PostgreSQL database on 127.0.0.1:5432 for the
  session (created here, dropped at the end); skipped when no PostgreSQL answers.
* ``mlflow_server``: one real ``mlflow server`` process per test session on a free port
  of 127.0.0.1, whose backend store is that database and whose artifacts go to a
  temporary folder (proxied, as a team server serves them). Used by ``tests/train`` and
  ``tests/browser``.

A SIGTERM to the test run (a CI job cancelled, ``kill``) is turned into ``KeyboardInterrupt``,
so that pytest stops as after Ctrl-C and these fixtures' clean-up still runs: no ``mlflow
server`` or test database is left behind.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from services import MlflowServer, create_database, database_url, drop_database, pg_admin


def pytest_sessionstart(session):
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def private_cache_folder(tmp_path_factory):
    """``$XDG_CACHE_HOME`` in a temporary folder: what the code caches (MLflow store template,
    parsed CSV files) goes there and never into the user's home; CLI runs inherit it."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh, empty PostgreSQL database; its SQLAlchemy URI. Dropped after the session."""
    try:
        pg_admin().close()
    except Exception as error:  # no server: the postgres tests cannot run here
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {error}")
    name = create_database("ann_test")
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def mlflow_server(postgres_database, tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 backed by PostgreSQL; yields its URI."""
    server = MlflowServer(postgres_database, tmp_path_factory.mktemp("mlflow-server"))
    try:
        server.start(timeout=180)
        yield server.uri
    finally:
        server.stop()
