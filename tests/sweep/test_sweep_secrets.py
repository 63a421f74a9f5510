"""A password given to ``ann-sweep`` / ``ann-train`` lands nowhere: not in a tag, param or
artifact of any run, the Optuna study, a printed line, a log file or Hydra's output folder.

Real services: the PostgreSQL server of this machine (trust auth, so any password is
accepted) as ``sweep.storage`` and a real ``mlflow server`` (no auth: it ignores the
``user:password@`` that the client sends) as ``tracking.uri``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sweep_helpers import FAST

#: Distinctive enough that any hit is a leak, not a coincidence.
STORAGE_PASSWORD = "Quokka-Storage-7f3e91"
TRACKING_PASSWORD = "Wombat-Tracking-2c8d44"
SECRETS = (STORAGE_PASSWORD, TRACKING_PASSWORD)


def _with_password(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    host = rest.rpartition("@")[2]
    return f"{scheme}://{user}:{password}@{host}"


def _run(tmp_path: Path, command: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[2])),
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    script = {"ann-sweep": "from sweeps.cli.sweep import main; main()",
              "ann-train": "from sweeps.cli.train import main; main()",
              "ann-sweep-status": "from sweeps.cli.sweep import status_main; status_main()"}[command]
    return subprocess.run([sys.executable, "-c", script, *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def _leaks(where: str, text: str) -> list[str]:
    return [f"{where}: {secret}" for secret in SECRETS if secret in text]


@pytest.mark.slow
@pytest.mark.postgres
def test_no_password_lands_in_mlflow_optuna_output_files_or_printed_lines(tmp_path, postgres_url, mlflow_server):
    import optuna
    from mlflow import MlflowClient

    from sweeps.study.storage import open_storage

    storage = _with_password(postgres_url, "postgres", STORAGE_PASSWORD)
    tracking_uri = _with_password(mlflow_server, "alice", TRACKING_PASSWORD)
    study = f"secrets-{uuid.uuid4().hex[:8]}"
    sweep = _run(tmp_path, "ann-sweep", *FAST, f"sweep.storage={storage}", f"tracking.uri={tracking_uri}",
                 f"sweep.study_name={study}", "sweep.n_trials=3")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    train = _run(tmp_path, "ann-train", "dataset=moons", "dataset.n_samples=200", "training.epochs=2",
                 f"tracking.uri={tracking_uri}", f"tracking.experiment_name={study}-train")
    assert train.returncode == 0, train.stderr[-3000:]

    leaks = []
    for name, result in (("ann-sweep", sweep), ("ann-train", train)):
        leaks += _leaks(f"{name} stdout", result.stdout) + _leaks(f"{name} stderr", result.stderr)
    # The user name stays visible (it says who connects); the password is hidden.
    assert "postgres:***@" in sweep.stdout and "http://127.0.0.1" in sweep.stdout

    client = MlflowClient(mlflow_server)
    runs = []
    for experiment_name in (study, f"{study}-train"):
        experiment = client.get_experiment_by_name(experiment_name)
        runs += client.search_runs([experiment.experiment_id])
    assert len(runs) >= 5  # a parent, three trials, one ann-train run
    downloads = tmp_path / "artifacts"
    for run in runs:
        leaks += _leaks(f"run {run.info.run_id} tags", repr(run.data.tags))
        leaks += _leaks(f"run {run.info.run_id} params", repr(run.data.params))
        assert "***@" in run.data.tags["command"]  # the command is kept, its passwords hidden
        target = downloads / run.info.run_id
        target.mkdir(parents=True)
        client.download_artifacts(run.info.run_id, "", str(target))

    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "config.yaml" and path.parent.name == ".hydra" for path in files)
    assert any(path.name == "ann-sweep.log" for path in files)
    assert sum(1 for path in files if downloads in path.parents) > 10  # models, plots, configs
    for path in files:
        leaks += _leaks(str(path.relative_to(tmp_path)), path.read_bytes().decode("utf-8", "replace"))

    optuna_storage = open_storage(postgres_url)
    loaded = optuna.load_study(study_name=study, storage=optuna_storage)
    leaks += _leaks("study attrs", repr((loaded.user_attrs, optuna_storage.get_study_system_attrs(loaded._study_id))))
    for trial in loaded.trials:
        leaks += _leaks(f"trial {trial.number} attrs", repr((trial.user_attrs, trial.system_attrs, trial.params)))
    assert leaks == []


@pytest.mark.slow
@pytest.mark.parametrize("command,flags", [
    ("ann-sweep", ["--cfg", "job"]), ("ann-sweep", ["--cfg", "hydra"]), ("ann-sweep", ["--cfg", "all"]),
    ("ann-sweep", ["-c", "job", "--resolve"]), ("ann-sweep", ["--info", "config"]),
    ("ann-train", ["--cfg", "job"]), ("ann-train", ["--cfg", "all"]), ("ann-sweep-status", ["--cfg", "job"]),
])
def test_hydra_printing_the_config_hides_typed_passwords(tmp_path, command, flags):
    """``--cfg job|hydra|all`` and ``--info config`` print the composed config and the overrides
    (Hydra's own printing, not the program's): a password typed in an override is hidden."""
    storage = f"postgresql://optuna:{STORAGE_PASSWORD}@127.0.0.1/test"
    tracking = f"http://alice:{TRACKING_PASSWORD}@mlflow.example:5000"
    overrides = [f"tracking.uri={tracking}"]
    if command != "ann-train":
        overrides.append(f"sweep.storage={storage}")
    result = _run(tmp_path, command, *flags, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not _leaks("stdout", result.stdout) + _leaks("stderr", result.stderr)
    assert "http://alice:***@mlflow.example:5000" in result.stdout
    if command != "ann-train":
        assert "postgresql://optuna:***@127.0.0.1/test" in result.stdout
    if flags[1] in ("hydra", "all"):  # the overrides as Hydra keeps them, redacted too
        assert "- tracking.uri=http://alice:***@mlflow.example:5000" in result.stdout
    if flags[1] != "hydra":  # the rest of the config as it was
        assert "hidden_layers:" in result.stdout
    assert not list(tmp_path.iterdir())  # printing writes nothing


def test_every_kind_of_credential_is_redacted_by_the_one_function(monkeypatch):
    from sweeps.core.redaction import redact, without_userinfo

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-password-123")
    assert redact("postgresql+psycopg2://optuna:p@ss/w0rd@db:5432/optuna") == "postgresql+psycopg2://optuna:***@db:5432/optuna"
    assert redact("sweep.storage='mysql://u:pw@h/db' cannot be opened") == "sweep.storage='mysql://u:***@h/db' cannot be opened"
    assert redact("http://127.0.0.1:5000/#/experiments/1") == "http://127.0.0.1:5000/#/experiments/1"
    assert redact("postgresql://h/db?user=u&password=pw&x=1") == "postgresql://h/db?user=u&password=***&x=1"
    assert redact("it said env-password-123 twice: env-password-123") == "it said *** twice: ***"
    assert redact(redact("postgresql://u:pw@h/db")) == "postgresql://u:***@h/db"
    assert without_userinfo("http://alice:pw@mlflow.example:5000/#/experiments/1") == "http://mlflow.example:5000/#/experiments/1"
