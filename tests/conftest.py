"""Fixtures shared by every test folder: a real ``mlflow server`` backed by PostgreSQL, no mocks.

* ``postgres_database``: a fresh, empty PostgreSQL database on 127.0.0.1:5432 for the
  session (created here, dropped at the end); skipped when no PostgreSQL answers.
* ``mlflow_server``: one real ``mlflow server`` process per test session on a free port
  of 127.0.0.1, whose backend store is that database and whose artifacts go to a
  temporary folder (proxied, as a team server serves them). Used by ``tests/train`` and
  ``tests/browser``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_connect(dbname: str = "postgres"):
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5)
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh, empty PostgreSQL database; its SQLAlchemy URI. Dropped after the session."""
    try:
        admin = _pg_connect()
    except Exception as error:  # no server: the postgres tests cannot run here
        pytest.skip(f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable: {error}")
    name = f"ann_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; the dev extra installs psycopg2.
        yield f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def mlflow_server(postgres_database, tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 backed by PostgreSQL; yields its URI."""
    import requests

    port = _free_port()
    workdir = tmp_path_factory.mktemp("mlflow-server")
    log_path = workdir / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    # A tracking-only server: MLflow 3's GenAI job runner would start eight more processes.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", postgres_database,
        "--artifacts-destination", str(workdir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        _stop_process_group(process)


def _stop_process_group(process: subprocess.Popen) -> None:
    """Stop the server and the workers it started (its own process group, by id)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    else:  # the server is gone; its workers may not be
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
