"""Real services the tests run against (imported as ``services``): no mocks.

* the PostgreSQL server of this machine (127.0.0.1:5432, trust auth): :func:`pg_admin`,
  :func:`create_database` / :func:`drop_database` for a fresh database per test or session,
  :func:`database_url` for its SQLAlchemy URL;
* :class:`MlflowServer` -- a real ``mlflow server`` subprocess on 127.0.0.1 (its own
  process group, ``--workers 1``, job execution off, proxied artifacts) that can be
  stopped and started again on the same port;
* :func:`free_port` -- a free TCP port of 127.0.0.1;
* :class:`TcpProxy` -- a forwarder to a server that can be cut (a network partition).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_admin(dbname: str = "postgres", user: str = PG_USER):
    """An autocommit psycopg2 connection to the local PostgreSQL server (as ``postgres``)."""
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=dbname, connect_timeout=5)
    connection.autocommit = True
    return connection


def create_database(prefix: str = "ann_test") -> str:
    """A fresh database; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with closing(pg_admin()) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with closing(pg_admin()) as admin, admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str, driver: str | None = "psycopg2") -> str:
    """The database's URL; SQLAlchemy 2.1 reads plain ``postgresql://`` as psycopg 3, so the
    default names psycopg2, the driver the dev extra installs (``driver=None``: no driver)."""
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, backend_uri: str, workdir: Path, port: int | None = None) -> None:
        self.backend_uri = backend_uri
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"server-{self.starts}.log"

    def start(self, timeout: float = 240) -> None:
        import requests

        self.starts += 1
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        # A tracking-only server: MLflow 3's GenAI job runner would start more processes.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.workdir / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(command, cwd=self.workdir, stdout=log_file, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.uri}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{self.log_tail()}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server and the uvicorn process it started (its own process group, by id)."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        deadline = time.monotonic() + 30  # the group's other processes (uvicorn) must be gone too
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class TcpProxy:
    """A TCP forwarder from a free port of 127.0.0.1 to ``target`` that can be cut, like a
    network partition: :meth:`cut` closes every forwarded connection and refuses new ones."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        import threading

        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._cut:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._listener.close()
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
