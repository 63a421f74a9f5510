"""Fixtures for the tracked-training tests: real MLflow stores, no mocks.

* ``sqlite_uri``: a fresh SQLite tracking store in ``tmp_path``.
* ``mlflow_server`` (in ``tests/conftest.py``, shared with ``tests/browser``): one real
  ``mlflow server`` process per test session on a free port of 127.0.0.1, whose backend
  store is a fresh PostgreSQL database on 127.0.0.1:5432 (created here, dropped at the
  end) and whose artifacts go to a temporary folder.
"""

from __future__ import annotations

import os

import pytest
from mlflow import MlflowClient


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def client(sqlite_uri) -> MlflowClient:
    return MlflowClient(sqlite_uri)


@pytest.fixture
def global_tracking_uri():
    """Point MLflow's global tracking URI (used by ``models:/`` URIs) at a store, then restore."""
    import mlflow

    previous_env = os.environ.get("MLFLOW_TRACKING_URI")

    def set_uri(uri: str) -> None:
        mlflow.set_tracking_uri(uri)

    yield set_uri
    mlflow.set_tracking_uri(None)
    if previous_env is not None:
        os.environ["MLFLOW_TRACKING_URI"] = previous_env
