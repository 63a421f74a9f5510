"""docker-compose.yml's services, run natively on this machine.

The commands of ``db-init``, ``mlflow``, ``worker`` and ``dashboard`` are taken from the
compose file (interpolated from an .env made of .env.example with fresh passwords), with
``postgres`` -> 127.0.0.1, container paths -> temporary folders and port 5000 -> a free
port, and run against the PostgreSQL server on 127.0.0.1:5432. So the tests exercise what
the containers will run: the role and database set-up, MLflow's basic auth with its
PostgreSQL user store, proxied artifacts, ``ann-train`` and ``ann-sweep`` with credentials
from the environment, and optuna-dashboard on the shared storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import requests

import deploy_helpers as H

postgres = [pytest.mark.postgres, pytest.mark.slow]

SMALL_RUN = ["dataset=moons", "dataset.n_samples=200", "training.epochs=4", "model.hidden_layers=[8]"]


def _console_script(name: str) -> str:
    path = shutil.which(name, path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert path is not None, f"{name} is not installed (pip install -e .)"
    return path


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "HYDRA_"))}
    env.update(extra)
    return env


def _one_error_line(stderr: str, prog: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prog}: error: ") and "Traceback" not in stderr
    return lines[0]


# ------------------------------------------------------------------------- db-init


@pytest.mark.postgres
@pytest.mark.slow
def test_db_init_creates_private_databases_and_can_run_again(databases):
    again = H.run_db_init(databases)
    assert again.returncode == 0, again.stderr
    assert "are ready" in again.stdout
    import psycopg2

    admin = H.pg_connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)",
                           ([databases["MLFLOW_DB"], databases["MLFLOW_AUTH_DB"], databases["OPTUNA_DB"]],))
            owners = dict(cursor.fetchall())
    finally:
        admin.close()
    assert owners == {databases["MLFLOW_DB"]: databases["MLFLOW_DB_USER"],
                      databases["MLFLOW_AUTH_DB"]: databases["MLFLOW_DB_USER"],
                      databases["OPTUNA_DB"]: databases["OPTUNA_DB_USER"]}
    # The workers' role cannot open MLflow's databases (CONNECT is revoked from PUBLIC).
    for dbname in (databases["MLFLOW_DB"], databases["MLFLOW_AUTH_DB"]):
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            H.pg_connect(dbname, user=databases["OPTUNA_DB_USER"])
    H.pg_connect(databases["OPTUNA_DB"], user=databases["OPTUNA_DB_USER"]).close()


@pytest.mark.postgres
@pytest.mark.parametrize("password,fragment", [
    ("change-me-mlflow-db", "not change-me"),
    ("", "not change-me"),
    ("p@ss/word", "URL-safe"),
])
def test_db_init_refuses_placeholder_and_unsafe_passwords(deploy_env, password, fragment):
    result = H.run_db_init({**deploy_env, "MLFLOW_DB_PASSWORD": password})
    assert result.returncode == 2
    assert fragment in _one_error_line(result.stderr, "db-init")


@pytest.mark.postgres
def test_db_init_refuses_the_placeholder_postgres_password(deploy_env):
    result = H.run_db_init({**deploy_env, "POSTGRES_PASSWORD": "change-me-postgres"})
    assert result.returncode == 2
    assert "POSTGRES_PASSWORD" in _one_error_line(result.stderr, "db-init")


@pytest.mark.postgres
@pytest.mark.parametrize("password", ["change-me-postgres", ""])
def test_postgres_refuses_to_start_with_the_placeholder_password(deploy_env, password):
    """The postgres service's entrypoint, run natively up to the image's own entrypoint
    (replaced by ``echo``: it is not on this machine)."""
    service = H.load_compose({**deploy_env, "POSTGRES_PASSWORD": password})["services"]["postgres"]
    argv, env = H.native(service, {"docker-entrypoint.sh": "echo"})
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "POSTGRES_PASSWORD" in _one_error_line(result.stderr, "postgres")
    service = H.load_compose(deploy_env)["services"]["postgres"]
    argv, env = H.native(service, {"docker-entrypoint.sh": "echo"})
    started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert (started.returncode, started.stdout) == (0, "postgres\n")  # the image's entrypoint, given `postgres`


@pytest.mark.postgres
def test_mlflow_refuses_to_start_with_the_placeholder_admin_password(deploy_env, tmp_path):
    env_file = {**deploy_env, "MLFLOW_ADMIN_PASSWORD": "change-me-mlflow-admin"}
    argv, env = H.mlflow_native(env_file, tmp_path, H.free_port())
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "MLFLOW_ADMIN_PASSWORD" in _one_error_line(result.stderr, "mlflow")


# --------------------------------------------------------------------- the server


@pytest.mark.postgres
@pytest.mark.slow
def test_the_server_refuses_requests_without_valid_credentials(compose_server):
    search = f"{compose_server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(search, timeout=10).status_code == 401
    assert requests.get(search, auth=(compose_server.admin[0], "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{compose_server.uri}/", timeout=10).status_code == 401  # the UI too
    assert requests.get(search, auth=compose_server.admin, timeout=10).status_code == 200
    assert requests.get(f"{compose_server.uri}/health", timeout=10).status_code == 200  # the health check needs none


@pytest.mark.postgres
@pytest.mark.slow
def test_the_server_accepts_its_compose_name_and_refuses_other_hosts(compose_server):
    """Workers reach it as mlflow:5000; a Host header outside --allowed-hosts is refused (DNS rebinding)."""
    search = f"{compose_server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    ok = requests.get(search, auth=compose_server.admin, headers={"Host": "mlflow:5000"}, timeout=10)
    assert ok.status_code == 200
    lan = compose_server.env_file["MLFLOW_ALLOWED_HOSTS"].split(",")[0]
    assert requests.get(search, auth=compose_server.admin, headers={"Host": lan}, timeout=10).status_code == 200
    bad = requests.get(search, auth=compose_server.admin, headers={"Host": "evil.example.com"}, timeout=10)
    assert bad.status_code == 403


def _secrets(env_file: dict) -> list[str]:
    return [value for key, value in env_file.items() if ("PASSWORD" in key or "SECRET" in key) and value]


@pytest.mark.postgres
@pytest.mark.slow
def test_no_server_process_has_a_secret_on_its_command_line(compose_server):
    """Any user of a Docker host can read the containers' command lines (ps): secrets stay in the environment."""
    lines = H.group_command_lines(compose_server.pid)
    assert any("uvicorn" in line for line in lines) and any("mlflow server" in line for line in lines), lines
    for secret in _secrets(compose_server.env_file):
        assert not [line for line in lines if secret in line]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_auth_config_is_private_and_holds_no_admin_password(compose_server):
    config = compose_server.workdir / "auth" / "basic_auth.ini"
    assert config.stat().st_mode & 0o777 == 0o600
    text = config.read_text()
    assert f"/{compose_server.env_file['MLFLOW_AUTH_DB']}\n" in text
    assert compose_server.env_file["MLFLOW_ADMIN_PASSWORD"] not in text  # it comes from the environment


@pytest.mark.postgres
@pytest.mark.slow
def test_ann_train_logs_through_the_server_with_credentials_from_the_environment(compose_server, tmp_path, monkeypatch):
    user, password = compose_server.admin
    env = _clean_env(MLFLOW_TRACKING_URI=compose_server.uri, MLFLOW_TRACKING_USERNAME=user,
                     MLFLOW_TRACKING_PASSWORD=password)
    result = subprocess.run(
        [_console_script("ann-train"), *SMALL_RUN, "tracking=server", "tracking.experiment_name=compose-native"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"run: " in result.stdout and compose_server.uri in result.stdout

    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    client = MlflowClient(compose_server.uri)
    experiment = client.get_experiment_by_name("compose-native")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.name"] == "moons"
    assert len(client.get_metric_history(run.info.run_id, "loss/train")) == 4
    # Proxied artifacts: the run stores mlflow-artifacts: URIs, the files land in the server's
    # --artifacts-destination, and the client downloads them through the server.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = list(compose_server.artifacts.rglob("learning_curve.png"))
    assert len(stored) == 1
    local = client.download_artifacts(run.info.run_id, "", str(tmp_path / "download"))
    assert (tmp_path / "download" / "plots" / "learning_curve.png").read_bytes() == stored[0].read_bytes()
    assert "name: moons" in open(f"{local}/config/config.yaml").read()


@pytest.mark.postgres
@pytest.mark.slow
def test_users_and_permissions_as_docs_team_md_shows(compose_server, monkeypatch):
    """The admin creates a user; the default permission (READ) lets her read, a grant lets her write."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", compose_server.admin[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", compose_server.admin[1])
    auth = get_app_client("basic-auth", tracking_uri=compose_server.uri)
    user = f"alice{uuid.uuid4().hex[:6]}"
    auth.create_user(username=user, password="alices-password")
    admin = MlflowClient(compose_server.uri)
    shared = admin.create_experiment(f"shared-{user}")
    private = admin.create_experiment(f"private-{user}")
    auth.grant_user_permission(user, "experiment", shared, "EDIT")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    alice = MlflowClient(compose_server.uri)
    run = alice.create_run(shared)
    alice.log_metric(run.info.run_id, "loss", 0.5)
    assert alice.get_experiment(private).name == f"private-{user}"  # READ by default
    alice.create_run(alice.create_experiment(f"own-{user}"))  # her own experiments she may change
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        alice.create_run(private)


@pytest.mark.postgres
@pytest.mark.slow
def test_ann_train_without_credentials_exits_2_with_one_line(compose_server, tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [_console_script("ann-train"), *SMALL_RUN, "tracking=server"],
        cwd=tmp_path, env=_clean_env(MLFLOW_TRACKING_URI=compose_server.uri), capture_output=True, text=True,
        timeout=120,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    line = _one_error_line(result.stderr, "ann-train")
    assert "refuses access (HTTP 401)" in line and "MLFLOW_TRACKING_USERNAME" in line
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_ann_train_with_the_server_absent_exits_2_within_10_seconds(tmp_path):
    """As a worker container starts when the server is down: the URI from MLFLOW_TRACKING_URI, with credentials.

    tests/train covers ``tracking.uri=...`` in-process; this is the console script as a
    container runs it, interpreter start-up included.
    """
    env = _clean_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{H.free_port()}", MLFLOW_TRACKING_USERNAME="admin",
                     MLFLOW_TRACKING_PASSWORD="secret")
    started = time.monotonic()
    result = subprocess.run([_console_script("ann-train"), *SMALL_RUN, "tracking=server"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    line = _one_error_line(result.stderr, "ann-train")
    assert "no MLflow server answers" in line and "secret" not in line


# ------------------------------------------------------------- worker, dashboard


@pytest.mark.postgres
@pytest.mark.slow
def test_the_worker_command_runs_a_sweep_on_the_shared_stores(compose_server, tmp_path, monkeypatch):
    import optuna
    from mlflow import MlflowClient

    study = f"compose-{uuid.uuid4().hex[:6]}"
    env_file = {**compose_server.env_file,
                "SWEEP_OVERRIDES": f"sweep=quick sweep.n_trials=2 training.epochs=2 sweep.study_name={study}"}
    compose = H.load_compose(env_file)
    argv, env = H.native(compose["services"]["worker"], {"@postgres:5432/": f"@{H.PG_HOST}:{H.PG_PORT}/",
                                                         "http://mlflow:5000": compose_server.uri})
    seen: list[str] = []
    with open(tmp_path / "worker.out", "w+") as out, open(tmp_path / "worker.err", "w+") as err:
        process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            while process.poll() is None:
                seen += H.group_command_lines(process.pid)
                assert time.monotonic() < deadline, "the sweep did not end"
                time.sleep(0.5)
        finally:
            if process.poll() is None:
                H.stop_process_group(process)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert any("ann-sweep" in line for line in seen)
    secrets = _secrets(compose_server.env_file)
    for secret in secrets:
        assert not [line for line in seen if secret in line]

    e = compose_server.env_file
    storage = (f"postgresql+psycopg2://{e['OPTUNA_DB_USER']}:{e['OPTUNA_DB_PASSWORD']}"
               f"@{H.PG_HOST}:{H.PG_PORT}/{e['OPTUNA_DB']}")
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert len(trials) == 2 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", e["MLFLOW_ADMIN_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", e["MLFLOW_ADMIN_PASSWORD"])
    client = MlflowClient(compose_server.uri)
    runs = client.search_runs([client.get_experiment_by_name(study).experiment_id])
    roles = sorted(run.data.tags.get("sweep.role") for run in runs)
    assert roles == ["parent", "trial", "trial"]
    assert {trial.user_attrs["mlflow_run_id"] for trial in trials} <= {run.info.run_id for run in runs}

    # The overrides are echoed as typed (``${oc.env:...}`` unresolved, URI passwords hidden).
    leaked = [line for line in (stdout + stderr).splitlines() if any(secret in line for secret in secrets)]
    assert not leaked, leaked[0].split(":", 1)[0]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_dashboard_command_serves_the_shared_storage(databases, tmp_path):
    import optuna

    e = databases
    storage = (f"postgresql+psycopg2://{e['OPTUNA_DB_USER']}:{e['OPTUNA_DB_PASSWORD']}"
               f"@{H.PG_HOST}:{H.PG_PORT}/{e['OPTUNA_DB']}")
    name = f"dashboard-{uuid.uuid4().hex[:6]}"
    optuna.create_study(study_name=name, storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1),
                                                                  n_trials=2)
    port = H.free_port()
    compose = H.load_compose(databases)
    argv, env = H.native(compose["services"]["dashboard"], {"@postgres:5432/": f"@{H.PG_HOST}:{H.PG_PORT}/",
                                                            "host='0.0.0.0', port=8080": f"host='127.0.0.1', port={port}"})
    argv[0] = sys.executable
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (the dev extra installs it)")
    process = H.start_server(argv, env, tmp_path, tmp_path / "dashboard.log", f"http://127.0.0.1:{port}/api/studies",
                             timeout=60)
    try:
        studies = requests.get(f"http://127.0.0.1:{port}/api/studies", timeout=10).json()["study_summaries"]
    finally:
        H.stop_process_group(process)
    assert name in [study["study_name"] for study in studies]
