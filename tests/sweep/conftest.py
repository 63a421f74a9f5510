"""Fixtures for the sweep tests: real Optuna storages and MLflow stores in ``tmp_path``, no mocks."""

from __future__ import annotations

import os

import pytest

from sweep_helpers import sweep_cfg  # noqa: F401  (re-exported for the tests)


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch):
    # MLflow's per-file download bars while it checks a logged model are noise in test output.
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def uris(tmp_path):
    """``(optuna storage URL, MLflow tracking URI)`` of fresh SQLite files in ``tmp_path``."""
    return f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def global_tracking_uri():
    """Point MLflow's global tracking URI (read by ``models:/`` URIs) at a store, then restore it."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    yield mlflow.set_tracking_uri
    mlflow.set_tracking_uri(None)
    if previous is not None:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database on 127.0.0.1:5432 (dropped afterwards); its URL."""
    import uuid

    try:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except Exception as error:  # no server here: the postgres tests cannot run
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {error}")
    admin.autocommit = True
    name = f"ann_sweep_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
