"""Commands the tools print are runnable: the extra they name installs them, and a
missing database driver is reported as a missing driver (not as a server that does not answer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from programs import program
from services import free_port
from sweeps.cli.sweep_report import DASHBOARD_EXTRA, dashboard_line

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _names(requirements):
    return {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}


def test_the_extras_the_messages_name_install_what_they_promise():
    assert DASHBOARD_EXTRA == 'pip install "ann-sweeps[dashboard]"'
    assert "optuna-dashboard" in _names(EXTRAS["dashboard"])
    assert "psycopg2-binary" in _names(EXTRAS["postgres"])
    assert _names(EXTRAS["dashboard"]) | _names(EXTRAS["postgres"]) <= _names(EXTRAS["dev"])


def test_the_dashboard_line_says_how_to_get_the_dashboard_when_it_is_missing():
    assert dashboard_line("sqlite:///optuna.db", installed=True) == "Optuna dashboard: optuna-dashboard sqlite:///optuna.db"
    assert dashboard_line("sqlite:///optuna.db", installed=False) == (
        'Optuna dashboard: optuna-dashboard sqlite:///optuna.db  (not installed: pip install "ann-sweeps[dashboard]")')
    assert dashboard_line("sqlite:///optuna.db") == dashboard_line("sqlite:///optuna.db", installed=True)  # dev extra


@pytest.mark.slow
def test_the_printed_dashboard_command_serves_the_study(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="printed", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    command = dashboard_line(storage).split(": ", 1)[1].split()
    script = Path(sys.executable).with_name(command[0])
    port = free_port()
    process = subprocess.Popen([str(script), *command[1:], "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/studies", timeout=2)
                break
            except requests.RequestException:
                assert process.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
                time.sleep(0.3)
        assert answer.status_code == 200
        assert "printed" in answer.text, answer.text[:300]
    finally:
        process.send_signal(signal.SIGINT)  # it keeps serving after SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _one_error(argv, cwd, prog):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    started = time.monotonic()
    result = subprocess.run([*program(prog), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert not list(Path(cwd).iterdir())  # nothing started, nothing written
    return lines[0], time.monotonic() - started


@pytest.mark.parametrize("scheme,driver", [("postgresql+pg8000", "pg8000"), ("postgresql", "psycopg")])
def test_a_missing_tracking_driver_is_reported_as_a_missing_driver(tmp_path, scheme, driver):
    # postgresql:// is psycopg 3 to SQLAlchemy 2.1; only psycopg2 is installed (the postgres extra).
    line, _ = _one_error([f"tracking.uri={scheme}://me:secret@127.0.0.1:5432/test", "training.epochs=1"],
                         tmp_path, "ann-train")
    assert line == (f"ann-train: error: tracking.uri='{scheme}://me:***@127.0.0.1:5432/test' cannot be used: "
                    f"the database driver {driver} ({scheme}://) is not installed; psycopg2 is: "
                    f"write postgresql+psycopg2:// instead of {scheme}://")


def test_a_missing_storage_driver_is_reported_as_a_missing_driver(tmp_path):
    line, _ = _one_error(["sweep.storage=postgresql+pg8000://me@127.0.0.1:5432/test", "tracking=off"],
                         tmp_path, "ann-sweep")
    assert line.startswith("ann-sweep: error: sweep.storage='postgresql+pg8000://me@127.0.0.1:5432/test' cannot be "
                           "opened: the database driver pg8000 (postgresql+pg8000://) is not installed")
    assert "answer" not in line and "timed out" not in line
