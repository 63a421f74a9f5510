"""Fixtures for the team-setup tests: docker-compose.yml's services run natively.

* ``deploy_env``: an ``.env`` for this module (``.env.example`` with fresh passwords, and
  database and role names under a unique ``ann_test_<hex>`` prefix); its databases and roles
  are dropped at the end.
* ``databases``: the ``db-init`` service's command, run against PostgreSQL on 127.0.0.1:5432.
* ``compose_server``: the ``mlflow`` service's command on a free port of 127.0.0.1 (basic
  auth, PostgreSQL backend and auth databases, proxied artifacts in a temporary folder).
* ``worker_user``: the ``mlflow-init`` service's command run once against it: the workers'
  user exists.
* ``tls_proxy``: the ``proxy`` service's nginx config in front of it on another free port,
  with a self-signed certificate for 127.0.0.1 (needs ``nginx``: .ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
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
    def worker(self) -> tuple[str, str]:
        return self.env_file["MLFLOW_WORKER_USERNAME"], self.env_file["MLFLOW_WORKER_PASSWORD"]

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


@pytest.fixture(scope="module")
def worker_user(compose_server) -> tuple[str, str]:
    result = H.run_mlflow_init(compose_server.env_file, compose_server.uri)
    assert result.returncode == 0, result.stderr
    assert "created" in result.stdout, result.stdout
    return compose_server.worker


@dataclass
class TlsProxy:
    uri: str
    ca: Path  # the self-signed certificate: what clients trust
    workdir: Path


@pytest.fixture(scope="module")
def tls_proxy(compose_server, tmp_path_factory):
    if shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])) is None:
        message = "nginx is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("compose-proxy")
    cert, _ = H.self_signed_certificate(workdir / "tls")
    port = H.free_port()
    argv = H.nginx_native(workdir / "nginx", workdir / "tls", int(compose_server.uri.rsplit(":", 1)[1]), port)
    uri = f"https://127.0.0.1:{port}"
    process = H.start_server(argv, {"PATH": os.environ.get("PATH", "")}, workdir, workdir / "nginx.log",
                             f"{uri}/health", timeout=60, verify=str(cert))
    try:
        yield TlsProxy(uri=uri, ca=cert, workdir=workdir)
    finally:
        H.stop_process_group(process)
