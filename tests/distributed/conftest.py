"""Fixtures of the distributed-sweep tests: the real PostgreSQL on 127.0.0.1:5432 and a real
``mlflow server`` subprocess (``tests/services.py``; restartable, one per module)."""

from __future__ import annotations

import pytest

from services import MlflowServer, create_database, database_url, drop_database, pg_admin


@pytest.fixture(scope="module")
def postgres_available():
    try:
        pg_admin().close()
    except Exception as error:  # no server here: these tests cannot run
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {error}")


@pytest.fixture(scope="module")
def mlflow_server(postgres_available, tmp_path_factory):
    """One real ``mlflow server`` for the module: PostgreSQL backend, proxied artifacts in a temp folder."""
    name = create_database("ann_dist_mlflow")
    server = MlflowServer(database_url(name), tmp_path_factory.mktemp("mlflow-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        drop_database(name)


@pytest.fixture
def study_storage(postgres_available):
    """A fresh PostgreSQL database for one test's Optuna study; its URL (``postgresql+psycopg2://``)."""
    name = create_database("ann_dist_optuna")
    try:
        yield database_url(name)
    finally:
        drop_database(name)
