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
    """A fresh, empty PostgreSQL database on 127.0.0.1:5432 (dropped afterwards); its plain
    ``postgresql://`` URL (the sweep picks the installed driver itself)."""
    from services import create_database, database_url, drop_database, pg_admin

    try:
        pg_admin().close()
    except Exception as error:  # no server here: the postgres tests cannot run
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {error}")
    name = create_database("ann_sweep_test")
    try:
        yield database_url(name, driver=None)
    finally:
        drop_database(name)
