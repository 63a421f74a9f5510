"""docker-compose.yml's services, run natively on this machine.

The commands of ``db-init``, ``mlflow``, ``mlflow-init``, ``proxy``, ``worker`` and ``dashboard`` are taken from the
compose file (interpolated from an .env made of .env.example with fresh passwords), with
``postgres`` -> 127.0.0.1, container paths -> temporary folders and port 5000 -> a free
port, and run against the PostgreSQL server on 127.0.0.1:5432. So the tests exercise what
the containers will run: the role and database set-up, MLflow's basic auth with its
PostgreSQL user store, proxied artifacts, the workers' own MLflow user and what it may
not do, HTTPS through the proxy's nginx config, ``ann-train`` and ``ann-sweep`` with
credentials from the environment, and optuna-dashboard on the shared storage.
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


# ------------------------------------------------------- the workers' MLflow user


def _as(monkeypatch, user: tuple[str, str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])


def _status(uri: str, user: tuple[str, str]) -> int:
    return requests.get(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", auth=user, timeout=10).status_code


@pytest.mark.postgres
@pytest.mark.slow
def test_mlflow_init_is_idempotent_rotates_the_password_and_takes_admin_back(compose_server, worker_user,
                                                                             monkeypatch):
    from mlflow.server import get_app_client

    _as(monkeypatch, compose_server.admin)
    auth = get_app_client("basic-auth", tracking_uri=compose_server.uri)
    assert auth.get_user(worker_user[0]).is_admin is False
    assert _status(compose_server.uri, worker_user) == 200

    again = H.run_mlflow_init(compose_server.env_file, compose_server.uri)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == f"mlflow-init: MLflow user {worker_user[0]!r} is ready (password set; not an admin)\n"
    assert _status(compose_server.uri, worker_user) == 200

    # A new password in .env, `up` again: the old one is refused at once, the new one works.
    rotated = {**compose_server.env_file, "MLFLOW_WORKER_PASSWORD": uuid.uuid4().hex}
    try:
        assert H.run_mlflow_init(rotated, compose_server.uri).returncode == 0
        assert _status(compose_server.uri, worker_user) == 401
        assert _status(compose_server.uri, (worker_user[0], rotated["MLFLOW_WORKER_PASSWORD"])) == 200
    finally:
        assert H.run_mlflow_init(compose_server.env_file, compose_server.uri).returncode == 0
    assert _status(compose_server.uri, worker_user) == 200

    # Made an admin by hand: the next start takes it back.
    auth.update_user_admin(worker_user[0], True)
    result = H.run_mlflow_init(compose_server.env_file, compose_server.uri)
    assert result.returncode == 0 and "admin flag taken back" in result.stdout
    assert auth.get_user(worker_user[0]).is_admin is False
    for secret in _secrets(compose_server.env_file):
        assert secret not in again.stdout + result.stdout


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("setting,value,status,fragment", [
    ("MLFLOW_WORKER_PASSWORD", "change-me-mlflow-worker", 2, "set MLFLOW_WORKER_PASSWORD"),
    ("MLFLOW_WORKER_PASSWORD", "", 2, "set MLFLOW_WORKER_PASSWORD"),
    ("MLFLOW_WORKER_USERNAME", "admin", 2, "must differ from MLFLOW_ADMIN_USERNAME"),
    ("MLFLOW_ADMIN_PASSWORD", "not-the-admins-password", 2, "refuses the admin 'admin' (HTTP 401)"),
])
def test_mlflow_init_refuses_bad_settings_with_one_line(compose_server, worker_user, setting, value, status,
                                                         fragment):
    result = H.run_mlflow_init({**compose_server.env_file, setting: value}, compose_server.uri)
    assert result.returncode == status
    assert fragment in _one_error_line(result.stderr, "mlflow-init")
    assert result.stdout == ""


@pytest.mark.slow
def test_mlflow_init_without_a_server_exits_1_with_one_line(tmp_path):
    env_file = H.fresh_env("ann_test_unused")
    started = time.monotonic()
    result = H.run_mlflow_init(env_file, f"http://127.0.0.1:{H.free_port()}")
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    line = _one_error_line(result.stderr, "mlflow-init")
    assert "cannot set up the MLflow user" in line
    assert not [secret for secret in _secrets(env_file) if secret in line]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_worker_user_writes_its_own_experiments_and_administers_nothing(compose_server, worker_user,
                                                                           monkeypatch):
    """What a stolen worker password allows: the workers' own sweeps, reading the rest; nothing of the admin's."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    tag = uuid.uuid4().hex[:6]
    _as(monkeypatch, compose_server.admin)
    admin = MlflowClient(compose_server.uri)
    people = admin.create_experiment(f"people-{tag}")
    handed_over = admin.create_experiment(f"handed-over-{tag}")

    _as(monkeypatch, worker_user)
    worker = MlflowClient(compose_server.uri)
    worker_auth = get_app_client("basic-auth", tracking_uri=compose_server.uri)
    # Its own experiment (as a sweep creates it): runs, metrics, models.
    own = worker.create_experiment(f"worker-{tag}")
    run = worker.create_run(own)
    worker.log_metric(run.info.run_id, "loss", 0.5)
    worker.set_terminated(run.info.run_id)
    worker.create_registered_model(f"model-{tag}")
    assert worker.get_experiment(people).name == f"people-{tag}"  # MLFLOW_AUTH_DEFAULT_PERMISSION=READ

    denied = pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied|403")
    with denied:
        worker.create_run(people)
    with denied:
        worker.delete_experiment(people)
    with denied:
        worker.rename_experiment(people, f"taken-{tag}")
    with denied:
        worker_auth.create_user(username=f"mallory{tag}", password="mallorys-password")
    with denied:
        worker_auth.update_user_admin(worker_user[0], True)
    with denied:
        worker_auth.update_user_password(compose_server.admin[0], "owned")
    with denied:
        worker_auth.grant_user_permission(worker_user[0], "experiment", people, "MANAGE")
    with denied:
        worker.create_run(handed_over)

    # An experiment a person created is handed to the workers with one grant (docs/how-to/team-setup.md).
    _as(monkeypatch, compose_server.admin)
    get_app_client("basic-auth", tracking_uri=compose_server.uri).grant_user_permission(
        worker_user[0], "experiment", handed_over, "EDIT")
    _as(monkeypatch, worker_user)
    worker.log_metric(worker.create_run(handed_over).info.run_id, "loss", 0.25)
    with denied:
        worker.delete_experiment(handed_over)  # EDIT: write, not delete

    _as(monkeypatch, compose_server.admin)
    assert admin.get_experiment(people).lifecycle_stage == "active"
    assert admin.get_experiment(people).name == f"people-{tag}"
    assert _status(compose_server.uri, compose_server.admin) == 200


# ------------------------------------------------------------------ the TLS proxy


@pytest.mark.slow
def test_the_proxy_config_passes_nginx_t(tmp_path):
    """`nginx -t` on deploy/nginx/mlflow.conf (container names replaced, a real certificate)."""
    if shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])) is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (.ci/run installs it)")
    H.self_signed_certificate(tmp_path / "tls")
    argv = H.nginx_native(tmp_path / "nginx", tmp_path / "tls", H.free_port(), H.free_port())
    result = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    (tmp_path / "tls" / "server.key").write_text("not a key\n")
    broken = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    assert broken.returncode != 0 and "server.key" in broken.stderr


@pytest.mark.parametrize("missing", ["server.crt", "server.key"])
def test_the_proxy_refuses_to_start_without_its_certificate(tmp_path, missing):
    """The proxy service's entrypoint, natively, up to the image's own (replaced by ``echo``)."""
    cert, key = H.self_signed_certificate(tmp_path / "tls")
    service = H.load_compose()["services"]["proxy"]
    argv, env = H.native(service, {"/docker-entrypoint.sh": "echo", "/etc/nginx/tls/": f"{tmp_path / 'tls'}/"})
    started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert (started.returncode, started.stdout) == (0, "nginx -g daemon off;\n")
    (tmp_path / "tls" / missing).unlink()
    (tmp_path / "tls" / missing).mkdir()  # what Docker leaves when a bind-mounted file does not exist
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    line = _one_error_line(result.stderr, "proxy")
    assert missing in line and "TLS_CERT_FILE and TLS_KEY_FILE" in line


@pytest.mark.postgres
@pytest.mark.slow
def test_the_proxy_serves_the_server_over_https(compose_server, worker_user, tls_proxy, tmp_path, monkeypatch):
    """Through deploy/nginx/mlflow.conf: the server's login, its Host allow-list, a 3 MB artifact up and down."""
    from mlflow import MlflowClient

    search = f"{tls_proxy.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    ca = str(tls_proxy.ca)
    assert requests.get(search, verify=ca, timeout=10).status_code == 401
    assert requests.get(search, auth=worker_user, verify=ca, timeout=10).status_code == 200
    assert requests.get(search, auth=worker_user, verify=ca, headers={"Host": "evil.example.com"},
                        timeout=10).status_code == 403  # MLflow still sees the client's Host
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(search, auth=worker_user, timeout=10)  # an untrusted certificate is refused
    plain = requests.get(search.replace("https://", "http://"), auth=worker_user, timeout=10)
    assert plain.status_code == 400 and "plain HTTP request was sent to HTTPS port" in plain.text  # nginx's, not MLflow's

    _as(monkeypatch, worker_user)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", ca)
    client = MlflowClient(tls_proxy.uri)
    run = client.create_run(client.create_experiment(f"tls-{uuid.uuid4().hex[:6]}"))
    payload = os.urandom(3 * 1024 * 1024)  # above nginx's default 1 MB body limit
    (tmp_path / "blob.bin").write_bytes(payload)
    client.log_artifact(run.info.run_id, str(tmp_path / "blob.bin"))
    client.set_terminated(run.info.run_id)
    local = client.download_artifacts(run.info.run_id, "blob.bin", str(tmp_path / "down"))
    assert open(local, "rb").read() == payload
    assert "X-Forwarded-Proto" not in (tls_proxy.workdir / "nginx" / "error.log").read_text()


# ------------------------------------------------------------- worker, dashboard


@pytest.mark.postgres
@pytest.mark.slow
def test_the_worker_command_runs_a_sweep_on_the_shared_stores(compose_server, worker_user, tmp_path, monkeypatch):
    import optuna
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

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
    # Logged in as the workers' user (not the admin), which manages what it created.
    assert env["MLFLOW_TRACKING_USERNAME"] == worker_user[0] != e["MLFLOW_ADMIN_USERNAME"]
    auth = get_app_client("basic-auth", tracking_uri=compose_server.uri)
    experiment_id = client.get_experiment_by_name(study).experiment_id
    assert auth.get_user_permission(worker_user[0], "experiment", experiment_id).permission == "MANAGE"
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
