"""docker-compose.yml, Dockerfile, .env.example and .dockerignore, checked without a container engine.

`docker-compose config -q` validates the file as Compose reads it (with a copy of
.env.example as .env); the rest checks what the team setup promises: pinned images, no
published database, the plain-HTTP server on the loopback address only and HTTPS through
the proxy, the workers' own MLflow user, health checks and start order, secrets only from
the environment, nothing pip-installed at start-up, a lint-clean Dockerfile that installs
from hash-checked lock files and whose worker stage builds a package that carries the
Hydra configs.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import deploy_helpers as H

RAW = yaml.safe_load(H.COMPOSE_FILE.read_text())
COMPOSE = H.load_compose()
SERVICES = COMPOSE["services"]


def _tool(name: str) -> str:
    """A command-line tool the check needs: skipped where it is missing, but never on CI."""
    path = shutil.which(name, path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _script(service: str) -> str:
    return "\n".join(H.service_argv(SERVICES[service]))


# ----------------------------------------------------------------------- compose


@pytest.fixture
def project(tmp_path) -> Path:
    """The compose file with a copy of .env.example as .env, as a user starts."""
    shutil.copy(H.COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(H.ENV_EXAMPLE, tmp_path / ".env")
    return tmp_path


def test_docker_compose_config_validates_with_the_env_example(project):
    compose = _tool("docker-compose")
    result = subprocess.run([compose, "config", "-q"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([compose, "--profile", "dashboard", "config", "--services"], cwd=project,
                            capture_output=True, text=True, timeout=60)
    assert set(result.stdout.split()) == {"postgres", "db-init", "mlflow", "mlflow-init", "proxy", "worker", "dashboard"}


def test_docker_compose_reads_the_commands_as_the_native_tests_do(project):
    """tests/deploy run the services' commands through deploy_helpers' interpolation: it must agree with Compose."""
    compose = _tool("docker-compose")
    result = subprocess.run([compose, "--profile", "dashboard", "config"], cwd=project, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    for name, service in SERVICES.items():
        theirs = [arg.replace("$$", "$") for arg in H.service_argv(resolved[name])]
        assert theirs == H.service_argv(service), name
        environment = {key: str(value).replace("$$", "$") for key, value in H.service_environment(resolved[name]).items()}
        assert environment == H.service_environment(service), name


def test_images_are_pinned():
    postgres = SERVICES["postgres"]["image"]
    assert re.fullmatch(r"postgres:\d+\.\d+-bookworm", postgres), postgres
    assert SERVICES["db-init"]["image"] == postgres
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-bookworm", SERVICES["proxy"]["image"])
    for name in ("mlflow", "mlflow-init", "worker", "dashboard"):
        image = SERVICES[name]["image"]
        assert not image.endswith(":latest") and re.search(r":\d+\.\d+\.\d+$", image), image
    # The server's image is named after the MLflow it runs (its lock file's version).
    assert SERVICES["mlflow"]["image"] == SERVICES["mlflow-init"]["image"] == f"ann-sweeps-mlflow:{_lock('mlflow')['mlflow']}"


def test_postgres_is_private_persistent_and_health_checked():
    postgres = SERVICES["postgres"]
    assert "ports" not in postgres and "network_mode" not in postgres
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"] and "pgdata" in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    raw = RAW["services"]["postgres"]["environment"]
    assert raw["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}" and raw["POSTGRES_USER"] == "${POSTGRES_USER}"


def test_no_secret_is_written_in_the_compose_file():
    """Every password, key or credential value is a ${VARIABLE} from .env."""
    for name, service in RAW["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+\}", str(value)), f"{name}.{key}={value!r}"
    text = H.COMPOSE_FILE.read_text()
    for key, value in H.read_env_file(H.ENV_EXAMPLE).items():
        if re.search(r"PASSWORD|SECRET", key):
            assert value not in text, key


def test_start_order_waits_for_health():
    assert SERVICES["db-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["mlflow"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}, "db-init": {"condition": "service_completed_successfully"}}
    assert SERVICES["mlflow-init"]["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    assert SERVICES["proxy"]["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    # mlflow-init completes only once the server is healthy and the workers' user exists.
    assert SERVICES["worker"]["depends_on"] == {
        "db-init": {"condition": "service_completed_successfully"},
        "mlflow-init": {"condition": "service_completed_successfully"}}
    assert "/health" in " ".join(SERVICES["mlflow"]["healthcheck"]["test"])


def test_the_mlflow_service_runs_a_tracking_server_with_basic_auth():
    service = SERVICES["mlflow"]
    assert service["build"] == {"context": ".", "target": "mlflow"}
    script = _script("mlflow")
    # --backend-store-uri comes from MLFLOW_BACKEND_STORE_URI (the option's variable): no password in argv.
    assert 'export MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://$MLFLOW_DB_USER:$MLFLOW_DB_PASSWORD@postgres:5432/' in script
    for flag in ("--serve-artifacts", "--artifacts-destination /mlartifacts",
                 "--app-name basic-auth", "--host 0.0.0.0 --port 5000", '--allowed-hosts "mlflow,mlflow:5000,',
                 "--workers "):
        assert flag in script, flag
    assert "mlartifacts:/mlartifacts" in service["volumes"]
    environment = H.service_environment(service)
    assert environment["MLFLOW_AUTH_CONFIG_PATH"].startswith("/tmp/")
    assert {"MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= set(environment)
    assert re.search(r"--workers \d+\s*$", script), 'a fixed, measured number of server processes (docs/benchmarks.md)'


def test_the_worker_scales_and_reaches_both_stores():
    worker = RAW["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=4
    assert worker["build"] == {"context": ".", "target": "worker"}
    # SIGTERM reaches ann-sweep (tini as PID 1) and it has time to end its epoch and mark the trial.
    assert worker["init"] is True and worker["stop_grace_period"] == "60s"
    assert worker["restart"].startswith("on-failure")
    environment = H.service_environment(SERVICES["worker"])
    assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The workers' own user, never the admin: no worker container holds the admin password.
    raw = worker["environment"]
    assert (raw["MLFLOW_TRACKING_USERNAME"], raw["MLFLOW_TRACKING_PASSWORD"]) == (
        "${MLFLOW_WORKER_USERNAME}", "${MLFLOW_WORKER_PASSWORD}")
    assert "MLFLOW_ADMIN" not in yaml.safe_dump(worker)
    assert environment["OPTUNA_STORAGE"].startswith("postgresql+psycopg2://optuna:change-me-optuna-db@postgres:5432/")
    script = _script("worker")
    assert "exec ann-sweep tracking=server 'sweep.storage=${oc.env:OPTUNA_STORAGE}' $SWEEP_OVERRIDES" in script
    assert "OMP_NUM_THREADS" in environment and "OPENBLAS_NUM_THREADS" in environment


def test_the_workers_user_is_set_up_by_a_one_shot_service_as_the_admin():
    init = RAW["services"]["mlflow-init"]
    assert init["build"] == {"context": ".", "target": "mlflow"} and init["restart"] == "no"
    assert "ports" not in init
    environment = init["environment"]
    assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert (environment["MLFLOW_TRACKING_USERNAME"], environment["MLFLOW_TRACKING_PASSWORD"]) == (
        "${MLFLOW_ADMIN_USERNAME}", "${MLFLOW_ADMIN_PASSWORD}")
    assert (environment["MLFLOW_WORKER_USERNAME"], environment["MLFLOW_WORKER_PASSWORD"]) == (
        "${MLFLOW_WORKER_USERNAME}", "${MLFLOW_WORKER_PASSWORD}")
    # The script the image carries (Dockerfile: COPY deploy/mlflow_init.py) is the one run here.
    assert H.service_argv(init) == ["python", "/opt/ann-sweeps/mlflow_init.py"]
    assert "COPY deploy/mlflow_init.py /opt/ann-sweeps/mlflow_init.py" in _stages()["mlflow"]
    example = H.read_env_file(H.ENV_EXAMPLE)
    assert example["MLFLOW_WORKER_USERNAME"] != example["MLFLOW_ADMIN_USERNAME"]
    assert example["MLFLOW_WORKER_PASSWORD"].startswith("change-me")


def test_only_the_tls_proxy_is_published_to_the_network():
    """The plain-HTTP server (basic-auth passwords in clear) on the host's loopback only; HTTPS for the rest."""
    published = {name: service["ports"] for name, service in SERVICES.items() if "ports" in service}
    assert set(published) == {"mlflow", "proxy", "dashboard"}
    assert published["mlflow"] == ["127.0.0.1:5000:5000"]
    assert published["proxy"] == ["443:443"]
    proxy = RAW["services"]["proxy"]
    mounts = {volume["target"]: volume for volume in proxy["volumes"] if isinstance(volume, dict)}
    assert mounts["/etc/nginx/tls/server.crt"]["source"] == "${TLS_CERT_FILE}"
    assert mounts["/etc/nginx/tls/server.key"]["source"] == "${TLS_KEY_FILE}"
    assert all(mount["read_only"] is True for mount in mounts.values())
    assert "./deploy/nginx/mlflow.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    # The image's entrypoint and command, after the check that the certificate is there.
    argv = H.service_argv(SERVICES["proxy"])
    assert argv[-4:] == ["proxy-entrypoint", "nginx", "-g", "daemon off;"]
    assert 'exec /docker-entrypoint.sh "$@"' in argv[2]


def test_the_proxy_config_terminates_tls_in_front_of_the_server():
    """deploy/nginx/mlflow.conf, read as nginx reads it (directives, not comments); tests/deploy/test_compose_native.py runs it."""
    directives = H.nginx_directives(H.NGINX_CONF.read_text())
    assert directives["listen"] == ["443 ssl", "[::]:443 ssl"]
    assert directives["upstream"] == ["mlflow_server"] and directives["server"] == ["mlflow:5000", ""]  # upstream, block
    assert directives["proxy_pass"] == ["http://mlflow_server"]
    assert directives["ssl_certificate"] == ["/etc/nginx/tls/server.crt"]
    assert directives["ssl_certificate_key"] == ["/etc/nginx/tls/server.key"]
    assert directives["ssl_protocols"] == ["TLSv1.2 TLSv1.3"]
    # MLflow checks the client's Host against --allowed-hosts: the proxy must pass it on.
    assert "Host $http_host" in directives["proxy_set_header"]
    assert "X-Forwarded-Proto https" in directives["proxy_set_header"]
    # Artifacts and models of any size, streamed.
    assert directives["client_max_body_size"] == ["0"]
    assert directives["proxy_request_buffering"] == ["off"]


def test_the_dashboard_is_opt_in_and_local():
    dashboard = SERVICES["dashboard"]
    assert dashboard["profiles"] == ["dashboard"]
    assert all(port.startswith("127.0.0.1:") for port in dashboard["ports"])
    assert "optuna_dashboard.run_server(os.environ['OPTUNA_STORAGE']" in _script("dashboard")


def test_nothing_is_installed_when_a_container_starts():
    for name in SERVICES:
        script = _script(name)
        assert not re.search(r"\bpip3?\b|\bapt(-get)?\b|uv pip", script), name


def test_every_variable_is_in_the_env_example():
    example = H.read_env_file(H.ENV_EXAMPLE)
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", H.COMPOSE_FILE.read_text()))
    assert used - set(example) == set()
    assert set(example) - used == set(), "unused settings in .env.example"


def test_the_env_example_one_liner_replaces_every_placeholder(tmp_path):
    example = H.ENV_EXAMPLE.read_text()
    line = next(line for line in example.splitlines() if "secrets.token_hex" in line)
    command = line.split("python3 -c ", 1)[1].strip().strip('"')
    shutil.copy(H.ENV_EXAMPLE, tmp_path / ".env")
    subprocess.run([sys.executable, "-c", command], cwd=tmp_path, check=True, timeout=60)
    values = H.read_env_file(tmp_path / ".env")
    assert not [key for key, value in values.items() if "change-me" in value]
    comments = [line for line in (tmp_path / ".env").read_text().splitlines() if line.startswith("#")]
    assert comments == [line for line in example.splitlines() if line.startswith("#")]
    secrets = [value for key, value in values.items() if re.search(r"PASSWORD|SECRET", key)]
    assert len(secrets) == 6 and len(set(secrets)) == 6
    assert all(re.fullmatch(r"[0-9a-f]{48}", value) for value in secrets)


# -------------------------------------------------------------------- Dockerfile


def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG ([A-Z0-9_]+)=(\S+)$", H.DOCKERFILE.read_text(), re.M))


def _lock(image: str) -> dict[str, str]:
    """deploy/requirements/<image>.txt: ``{name: version}`` (names normalised)."""
    return {name: version for name, (version, _) in H.read_lock(H.LOCKS / f"{image}.txt").items()}


def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in re.sub(r"\\\n", " ", H.DOCKERFILE.read_text()).splitlines():
        found = re.match(r"FROM \S+ AS (\S+)", line)
        if found:
            current = stages.setdefault(found.group(1), [])
        if current is not None and line.strip() and not line.startswith("#"):
            current.append(" ".join(line.split()))
    return stages


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    result = subprocess.run([hadolint, "--no-color", str(H.DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_parses_with_the_buildkit_parser():
    dockerfile = pytest.importorskip("dockerfile")
    commands = dockerfile.parse_file(str(H.DOCKERFILE))
    targets = [c.value[2] for c in commands if c.cmd == "FROM" and len(c.value) == 3]
    assert targets == ["base", "mlflow", "worker"]
    for service in ("mlflow", "worker", "dashboard"):
        assert SERVICES[service]["build"]["target"] in targets


def test_dockerfile_installs_every_package_from_a_hash_checked_lock():
    args = _dockerfile_args()
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm", args["PYTHON_IMAGE"])
    assert set(args) == {"PYTHON_IMAGE"}, "versions live in deploy/requirements/, not in ARGs"
    stages = _stages()
    for image in ("mlflow", "worker"):
        lines = stages[image]
        assert f"COPY deploy/requirements/{image}.txt /tmp/requirements.txt" in lines, image
        installs = [line for line in lines if re.search(r"\bpip install\b", line)]
        assert installs[0].startswith("RUN pip install --require-hashes --no-deps -r /tmp/requirements.txt"), image
        # Anything else pip installs is the project itself, from the copied sources, without dependencies.
        for line in installs[1:]:
            assert line.startswith("RUN pip install --no-deps --no-build-isolation . "), line
        users = [line for line in lines if line.startswith("USER ")]
        assert users and users[-1] != "USER root" and not users[-1].startswith("USER 0"), image


@pytest.mark.parametrize("image", ["mlflow", "worker"])
def test_the_lock_files_pin_every_package_with_hashes(image):
    locked = H.read_lock(H.LOCKS / f"{image}.txt")
    assert len(locked) > 50
    for name, (version, hashes) in locked.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), name
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    # What <image>.in asks for is what the lock holds.
    from packaging.requirements import Requirement

    for line in (H.LOCKS / f"{image}.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            wanted = Requirement(line)
            name = H.normalise(wanted.name)
            assert name in locked, name
            assert locked[name][0] in wanted.specifier, (name, locked[name][0], str(wanted.specifier))
    # The header names the script that made it.
    assert "deploy/requirements/lock.sh" in (H.LOCKS / f"{image}.txt").read_text().splitlines()[1]


@pytest.mark.parametrize("image,extras", [("mlflow", {"mlflow": {"auth"}}), ("worker", {})])
def test_the_lock_files_hold_every_dependency(image, extras):
    """pip installs with --no-deps: a dependency missing from the lock would be missing from the image.

    The requirements of every locked package installed here at the locked version (its own
    metadata), evaluated for Linux and the image's Python, must all be locked.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    locked = _lock(image)
    environment = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "python_version": "3.11", "python_full_version": "3.11.13", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "platform_machine": "x86_64"}
    checked = 0
    for name, version in locked.items():
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if distribution.version != version:
            continue
        checked += 1
        for text in distribution.requires or []:
            requirement = Requirement(text)
            wanted = extras.get(name, set()) | {""}
            if requirement.marker and not any(requirement.marker.evaluate({**environment, "extra": extra})
                                              for extra in wanted):
                continue
            dependency = H.normalise(requirement.name)
            assert dependency in locked, f"{name} {version} needs {requirement}: not in {image}.txt"
            assert locked[dependency] in requirement.specifier, (name, str(requirement), locked[dependency])
    assert checked > len(locked) // 2, "too few locked packages installed here to check the lock"


def test_the_worker_lock_satisfies_the_project_and_matches_the_server():
    """The worker image runs this project (pyproject's ranges) with the server's own MLflow."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")

    project = tomllib.loads((H.ROOT / "pyproject.toml").read_text())["project"]
    worker = _lock("worker")
    needed = project["dependencies"] + project["optional-dependencies"]["dashboard"] + \
        project["optional-dependencies"]["postgres"]
    for text in needed:
        requirement = Requirement(text)
        name = H.normalise(requirement.name)
        assert name in worker, name
        assert worker[name] in requirement.specifier, (name, worker[name])
    server = _lock("mlflow")
    for name in ("mlflow", "mlflow-skinny", "psycopg2-binary", "sqlalchemy"):
        assert worker[name] == server[name], name


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
               for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_out_and_the_sources_in():
    patterns = [line.strip() for line in H.DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for secret in (".env", ".env.local", "mlflow.db", "optuna.db", ".git", "mlruns", "mlartifacts", "tls/server.key"):
        assert _ignored(secret, patterns), secret
    copied = re.findall(r"^COPY (.+) \S+$", H.DOCKERFILE.read_text(), re.M)
    sources = [source for line in copied for source in line.split()]
    assert sources == ["deploy/requirements/mlflow.txt", "deploy/mlflow_init.py", "deploy/requirements/worker.txt",
                       "pyproject.toml", "README.md", "ann", "conf", "sweeps"]
    for source in sources:
        assert not _ignored(source, patterns), source
        assert (H.ROOT / source).exists(), source


@pytest.mark.slow
def test_the_worker_stage_builds_a_package_with_the_configs(tmp_path):
    """The worker stage's COPY lines, then what its `pip install .` builds: a wheel with sweeps/conf."""
    context = tmp_path / "src"
    context.mkdir()
    for source in ("pyproject.toml", "README.md"):
        shutil.copy(H.ROOT / source, context / source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source in ("ann", "conf", "sweeps"):
        shutil.copytree(H.ROOT / source, context / source, symlinks=True, ignore=ignore)  # COPY keeps links
    assert (context / "sweeps" / "conf").is_symlink()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), "."],
        cwd=context, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("ann_sweeps-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in ("config.yaml", "ann_sweep.yaml", "tracking/server.yaml", "sweep/default.yaml", "sweep/digits.yaml",
                   "dataset/digits.yaml"):
        assert f"sweeps/conf/{config}" in names, config
    assert "ann/__init__.py" in names and "sweeps/cli/sweep.py" in names
