"""Fixtures for the team-setup tests: docker-compose.yml's services run natively.

* ``deploy_env``: an ``.env`` for this module (``.env.example`` with fresh passwords, and
  database and role names under a unique ``ann_test_<hex>`` prefix); its databases and roles
  are dropped at the end.
* ``databases``: the ``db-init`` service's command, run against PostgreSQL on 127.0.0.1:5432.
* ``compose_server``: the ``mlflow`` service's command on a free port of 127.0.0.1 (basic
  auth, PostgreSQL backend and auth databases, proxied artifacts in a temporary folder).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import deploy_helpers as H


@pytest.fixture(scope="module")
def deploy_env():
    try:
        H.pg_connect().close()
    except Exception as error:  # no server: the postgres tests cannot run here
        pytest.skip(f"PostgreSQL on {H.PG_HOST}:{H.PG_PORT} is not reachable: {error}")
    prefix = f"ann_test_{uuid.uuid4().hex[:10]}"
    try:
        yield H.fresh_env(prefix)
    finally:
        H.drop_prefixed(prefix)


@pytest.fixture(scope="module")
def databases(deploy_env):
    result = H.run_db_init(deploy_env)
    assert result.returncode == 0, result.stderr
    return deploy_env


@dataclass
class ComposeServer:
    uri: str
    env_file: dict
    workdir: Path
    log: Path
    pid: int  # the server's process group

    @property
    def admin(self) -> tuple[str, str]:
        return self.env_file["MLFLOW_ADMIN_USERNAME"], self.env_file["MLFLOW_ADMIN_PASSWORD"]

    @property
    def artifacts(self) -> Path:
        return self.workdir / "mlartifacts"


@pytest.fixture(scope="module")
def compose_server(databases, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("compose-mlflow")
    port = H.free_port()
    argv, env = H.mlflow_native(databases, workdir, port)
    uri = f"http://127.0.0.1:{port}"
    process = H.start_server(argv, env, workdir, workdir / "server.log", f"{uri}/health")
    try:
        yield ComposeServer(uri=uri, env_file=databases, workdir=workdir, log=workdir / "server.log", pid=process.pid)
    finally:
        H.stop_process_group(process)
