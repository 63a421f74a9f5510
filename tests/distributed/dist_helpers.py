"""Helpers of the distributed-sweep tests (imported as ``dist_helpers``): real servers, real processes.

* :class:`MlflowServer` -- a real ``mlflow server`` subprocess on 127.0.0.1 (its own
  process group, ``--workers 1``, job execution off) that can be stopped and started
  again on the same port, with a PostgreSQL backend store.
* :func:`postgres_database` -- create / drop a fresh PostgreSQL database on 127.0.0.1:5432.
* :func:`start_sweep` -- one ``ann-sweep`` process (``python -m sweeps.sweep_cli``) with
  its output in files.
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

#: A tiny sweep: 200 two-moons points, small networks, 6 epochs; about 1 s per tracked trial.
TINY = [
    "sweep=quick",
    "dataset=moons",
    "dataset.n_samples=200",
    "training.epochs=6",
    "sweep.params.units.low=2",
    "sweep.params.units.high=8",
    "sweep.params.batch_size.choices=[16,32]",
    "sweep.pruner.n_warmup_steps=2",
    "sweep.pruner.n_startup_trials=3",
    "sweep.sampler.n_startup_trials=4",
    "sweep.plotlyjs=cdn",
    "sweep.refresh_every=10",
    "tracking.flush_interval=0.5",
]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_admin():
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    connection.autocommit = True
    return connection


def create_database(prefix: str = "ann_dist") -> str:
    """A fresh database; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with closing(pg_admin()) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with closing(pg_admin()) as admin, admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; psycopg2 is what is installed.
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


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


def start_sweep(overrides: list[str], cwd: Path, name: str, env: dict | None = None) -> subprocess.Popen:
    """One ``ann-sweep`` process; its stdout / stderr go to ``<cwd>/<name>.out`` / ``.err``."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    out = open(cwd / f"{name}.out", "w")
    err = open(cwd / f"{name}.err", "w")
    try:
        return subprocess.Popen([sys.executable, "-m", "sweeps.sweep_cli", *overrides], cwd=cwd, env=environment,
                                stdout=out, stderr=err, text=True)
    finally:
        out.close()
        err.close()


def output(cwd: Path, name: str) -> str:
    text = []
    for suffix in ("out", "err"):
        path = cwd / f"{name}.{suffix}"
        if path.exists():
            text.append(f"--- {name}.{suffix}\n" + path.read_text(errors="replace")[-4000:])
    return "\n".join(text)


def wait_all(processes: dict, cwd: Path, timeout: float) -> None:
    """Wait for every process; on timeout kill them (by id) and fail with their output."""
    deadline = time.monotonic() + timeout
    for name, process in processes.items():
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes.values():
                if other.poll() is None:
                    other.kill()
                    other.wait(timeout=10)
            raise AssertionError(f"{name} did not finish within {timeout:.0f} s\n"
                                 + "\n".join(output(cwd, n) for n in processes))


def kill_all(processes: dict) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
