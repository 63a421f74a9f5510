"""Read docker-compose.yml as Compose does, and run its services' commands natively.

There is no container engine on the development machines or in CI, so the team setup is
tested by running the very commands of ``docker-compose.yml`` outside containers:

* :func:`load_compose` parses the file and interpolates ``${VAR}``, ``${VAR:-default}``,
  ``${VAR:?error}``, ... from an environment (an ``.env`` file's values), as Compose does;
  ``$$`` becomes ``$``, which the service's shell then expands from its own environment.
* :func:`native` turns a service into ``(argv, env)`` for this machine: host names and
  container paths are replaced (each replacement must occur, so a changed compose file
  fails loudly instead of running something else), and the environment is the service's
  own plus ``PATH`` (with this interpreter's scripts first) and nothing else of ours.
* :func:`start_server` / :func:`stop_process_group` run a server in its own process group
  and wait for its ``/health``.

Imported as ``deploy_helpers`` by tests/deploy and tests/benchmarks/bench_server.py.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from services import PG_HOST, PG_PORT, PG_USER, free_port  # noqa: F401  (the tests use them as H.*)
from services import pg_admin as pg_connect

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCKS = ROOT / "deploy" / "requirements"
NGINX_CONF = ROOT / "deploy" / "nginx" / "mlflow.conf"


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an ``.env`` file (comments and blank lines skipped)."""
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution in one string."""

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return interpolate(arg, env)
            return value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise InterpolationError(f"{name}: {arg or 'required'}")
            return value
        if op in (":+", "+"):
            return interpolate(arg, env) if value not in (None, "") or (op == "+" and value is not None) else ""
        return value if value is not None else ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_compose(env: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict:
    """The compose file, interpolated with ``env`` (default: ``.env.example``'s values)."""
    raw = yaml.safe_load(Path(path).read_text())
    return _interpolate_tree(raw, dict(read_env_file(ENV_EXAMPLE) if env is None else env))


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def service_argv(service: Mapping[str, Any]) -> list[str]:
    """The process a service starts: ``entrypoint`` + ``command`` (both in list form here)."""
    entrypoint = service.get("entrypoint") or []
    command = service.get("command") or []
    if isinstance(entrypoint, str) or isinstance(command, str):
        raise AssertionError("use the list form for entrypoint and command in docker-compose.yml")
    return [*entrypoint, *command]


def native(service: Mapping[str, Any], replacements: Mapping[str, str] = (),
           env_overrides: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` that run ``service``'s command on this machine.

    Every ``old -> new`` of ``replacements`` is applied to the arguments and the
    environment's values, and each must occur at least once.
    """
    argv = service_argv(service)
    environment = service_environment(service)
    environment.update(env_overrides or {})
    replacements = dict(replacements)
    seen = {old: 0 for old in replacements}

    def replace(text: str) -> str:
        for old, new in replacements.items():
            seen[old] += text.count(old)
            text = text.replace(old, new)
        return text

    argv = [replace(arg) for arg in argv]
    environment = {key: replace(value) for key, value in environment.items()}
    missing = [old for old, count in seen.items() if count == 0]
    if missing:
        raise AssertionError(f"not found in the service's command or environment: {missing}")
    scripts = str(Path(sys.executable).parent)
    environment["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "/usr/bin:/bin")])
    for name in ("HOME", "LANG", "LC_ALL", "TMPDIR"):
        if name in os.environ and name not in environment:
            environment[name] = os.environ[name]
    return argv, environment


def fresh_env(prefix: str) -> dict[str, str]:
    """A ``.env`` for one test: ``.env.example`` with fresh passwords and unique names.

    Database and role names start with ``prefix`` (``ann_test_<hex>``), so tests sharing the
    PostgreSQL server cannot collide, and the caller can drop them all afterwards.
    """
    env = read_env_file(ENV_EXAMPLE)
    for key, value in env.items():
        if value.startswith("change-me"):
            env[key] = secrets.token_hex(16)
    env.update({
        "MLFLOW_DB_USER": f"{prefix}_mlflow", "MLFLOW_DB": f"{prefix}_mlflow",
        "MLFLOW_AUTH_DB": f"{prefix}_mlflow_auth",
        "OPTUNA_DB_USER": f"{prefix}_optuna", "OPTUNA_DB": f"{prefix}_optuna",
        "POSTGRES_USER": PG_USER,
    })
    return env


def normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """A ``--generate-hashes`` lock file: ``{name: (version, hashes)}``, names normalised."""
    text = re.sub(r"\\\n", " ", Path(path).read_text())
    locked = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==(\S+?)(?:\s*;[^-]*)?(\s+--hash=.*)?$", line)
        assert found, f"{path.name}: not `name==version --hash=...`: {line[:80]}"
        hashes = re.findall(r"--hash=(\S+)", found.group(3) or "")
        locked[normalise(found.group(1))] = (found.group(2), hashes)
    return locked


def nginx_directives(text: str) -> dict[str, list[str]]:
    """The simple directives of an nginx config: ``{name: [arguments, ...]}`` in file order."""
    text = re.sub(r"#[^\n]*", "", text)
    directives: dict[str, list[str]] = {}
    for statement in re.split(r"[{};]", text):
        words = statement.split()
        if words:
            directives.setdefault(words[0], []).append(" ".join(words[1:]))
    return directives


# ------------------------------------------------------------------------ postgres


def drop_prefixed(prefix: str) -> None:
    """Drop the databases and roles whose names start with ``prefix``."""
    admin = pg_connect()  # not ``with``: psycopg2 would open a transaction, DROP DATABASE refuses one
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",))
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        admin.close()


# ------------------------------------------------------------------------ processes


def start_server(argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path, health_url: str,
                 timeout: float = 180, verify: str | bool = True) -> subprocess.Popen:
    """Start ``argv`` in a process group of its own and wait until ``health_url`` answers 200.

    ``verify``: the CA bundle (or False) for an https ``health_url``, as ``requests`` takes it.
    """
    import requests

    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited with {process.returncode}:\n{Path(log_path).read_text()[-4000:]}")
        try:
            if requests.get(health_url, timeout=2, verify=verify).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_process_group(process)
            raise RuntimeError(f"{argv[0]} did not answer {health_url}:\n{Path(log_path).read_text()[-4000:]}")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process's own group (the server and the workers it started), then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their parent
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


def group_command_lines(pgid: int) -> list[str]:
    """The command lines of the live processes in process group ``pgid`` (Linux /proc)."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # after the name: state, ppid, pgrp
                continue
            lines.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue
    return lines


# ------------------------------------------------------------------- the services


def run_db_init(env_file: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the ``db-init`` service's command against the PostgreSQL server on 127.0.0.1."""
    compose = load_compose(env_file)
    argv, env = native(compose["services"]["db-init"])
    assert env["PGHOST"] == "postgres", env["PGHOST"]
    env.update(PGHOST=PG_HOST, PGPORT=str(PG_PORT))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def mlflow_native(env_file: Mapping[str, str], workdir: Path, port: int, *, workers: int | None = None,
                  extra_args: str = "") -> tuple[list[str], dict[str, str]]:
    """The ``mlflow`` service's command for this machine: 127.0.0.1:``port``, files in ``workdir``."""
    compose = load_compose(env_file)
    service = compose["services"]["mlflow"]
    replacements: dict[str, str] = {
        "@postgres:5432/": f"@{PG_HOST}:{PG_PORT}/",
        "--artifacts-destination /mlartifacts": f"--artifacts-destination {workdir / 'mlartifacts'}",
        "--host 0.0.0.0 --port 5000": f"--host 127.0.0.1 --port {port}",
        "/tmp/mlflow-auth/": f"{workdir / 'auth'}/",
    }
    argv, env = native(service, replacements)
    script = argv[-1]
    if workers is not None:
        script, count = re.subn(r"--workers \S+", f"--workers {workers}", script)
        assert count == 1, "the mlflow command has no --workers"
    if extra_args:
        script = script.rstrip() + f" {extra_args}\n"
    argv[-1] = script
    return argv, env


def run_mlflow_init(env_file: Mapping[str, str], uri: str, timeout: float = 120,
                    env_overrides: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the ``mlflow-init`` service's command against the server at ``uri``.

    The script is the one the image carries (``COPY deploy/mlflow_init.py /opt/ann-sweeps/``).
    """
    compose = load_compose(env_file)
    argv, env = native(compose["services"]["mlflow-init"],
                       {"http://mlflow:5000": uri, "/opt/ann-sweeps/": f"{ROOT / 'deploy'}/"}, env_overrides)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (an IP address) and its key, as PEM files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def nginx_native(workdir: Path, tls_folder: Path, upstream_port: int, port: int) -> list[str]:
    """``nginx`` running ``deploy/nginx/mlflow.conf`` on 127.0.0.1:``port`` in front of 127.0.0.1:``upstream_port``.

    The site file gets the replacements the container's names need (each must occur); the
    main file around it stands in for the image's ``/etc/nginx/nginx.conf`` (which includes
    ``conf.d/*.conf`` inside ``http {}``), with its logs, pid and temporary files in ``workdir``.
    """
    site = NGINX_CONF.read_text()
    replacements = {
        "server mlflow:5000;": f"server 127.0.0.1:{upstream_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "listen [::]:443 ssl;": "",
        "/etc/nginx/tls/": f"{tls_folder}/",
    }
    for old, new in replacements.items():
        assert old in site, f"not found in {NGINX_CONF.name}: {old}"
        site = site.replace(old, new)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "default.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\n"
        "events {}\n"
        f"http {{\n  access_log {workdir}/access.log;\n"
        + "".join(f"  {kind}_temp_path {workdir}/{kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  include {workdir}/default.conf;\n}}\n")
    nginx = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if nginx is None:
        raise FileNotFoundError("nginx")
    return [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
