"""Ctrl-C on ``ann-sweep``, with real SIGINTs to a real process: the champion alias moves
only to a better model, a second Ctrl-C ends with one line and 130, and the process that
resumes alone is worker 0 again (the seeds of an uninterrupted sweep)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from mlflow import MlflowClient

from programs import program
from sweep_helpers import cli_overrides

pytestmark = pytest.mark.slow


class Sweep:
    """``ann-sweep`` in a subprocess whose stderr lines are collected as they come."""

    def __init__(self, cwd, argv):
        env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.process = subprocess.Popen([*program("ann-sweep"), *argv], cwd=cwd, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n" + "".join(self.lines)
            time.sleep(0.1)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        stdout = self.process.stdout.read()
        status = self.process.wait(timeout)
        self.reader.join(10)
        return status, stdout, "".join(self.lines)


def _overrides(tmp_path, study, *extra):
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    return [*cli_overrides(storage, tracking_uri), f"sweep.study_name={study}", "sweep.register.name=shared", *extra]


#: A search space that cannot learn in a few epochs: its best is worse than any real one.
HOPELESS = ["sweep.params.lr.low=1e-7", "sweep.params.lr.high=2e-7", "training.epochs=6", "sweep.n_trials=40"]


def test_an_interrupted_sweep_keeps_a_better_champion_and_says_so(tmp_path):
    good = Sweep(tmp_path, _overrides(tmp_path, "good", "sweep.n_trials=3"))
    status, _, err = good.finish()
    assert status == 0, err
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    champion = client.get_model_version_by_alias("shared", "champion")

    bad = Sweep(tmp_path, _overrides(tmp_path, "bad", *HOPELESS))
    bad.wait_for("trial 0 complete")
    bad.process.send_signal(signal.SIGINT)
    status, _, err = bad.finish()
    assert status == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ann-sweep: interrupted") and "Traceback" not in err
    assert f"@champion kept on version {champion.version}" in last and "is not better" in last, last
    assert client.get_model_version_by_alias("shared", "champion").version == champion.version


def test_an_interrupted_first_sweep_registers_no_champion(tmp_path):
    sweep = Sweep(tmp_path, _overrides(tmp_path, "first", *HOPELESS))
    sweep.wait_for("trial 0 complete")
    sweep.process.send_signal(signal.SIGINT)
    status, _, err = sweep.finish()
    assert status == 130, err
    assert "@champion not set: the sweep did not finish" in err.strip().splitlines()[-1]
    with pytest.raises(Exception):
        MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_model_version_by_alias("shared", "champion")


def test_a_second_ctrl_c_ends_with_one_line_and_the_resumed_sweep_is_worker_0(tmp_path):
    argv = _overrides(tmp_path, "twice", *HOPELESS)
    sweep = Sweep(tmp_path, argv)
    sweep.wait_for("trial 0 complete")
    sweep.process.send_signal(signal.SIGINT)
    sweep.wait_for("stopping at the end of this epoch")
    sweep.process.send_signal(signal.SIGINT)
    status, _, err = sweep.finish()
    assert status == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("ann-sweep: interrupted"), err

    resumed = Sweep(tmp_path, [*argv[:-1], "sweep.n_trials=3"])  # HOPELESS ends with sweep.n_trials
    status, out, err = resumed.finish()
    assert status == 0, err
    assert "resuming:" in out and "joining the study as worker" not in out, out


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_loses_no_finished_runs_tail(tmp_path, workers):
    """A run's learning curve, model files and end are written by a background writer while the
    next trial trains: a real SIGTERM mid-sweep (to the main process, which forwards it to its
    workers) still leaves every finished trial's run complete -- FINISHED with its PNG and a READY
    model -- and every pruned one KILLED."""
    import optuna

    sweep = Sweep(tmp_path, _overrides(tmp_path, "term", "sweep.n_trials=40", f"sweep.workers={workers}"))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    deadline = time.monotonic() + 300
    while True:  # two trials complete: their tails may still be queued
        assert sweep.process.poll() is None and time.monotonic() < deadline, "".join(sweep.lines)
        with contextlib.suppress(Exception):  # the study may not exist yet
            if sum(t.state.name == "COMPLETE" for t in optuna.load_study(study_name="term", storage=storage).trials) >= 2:
                break
        time.sleep(0.2)
    sweep.process.send_signal(signal.SIGTERM)
    status, _, err = sweep.finish()
    assert status == 143, err
    study = optuna.load_study(study_name="term", storage=storage)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete, err
    for trial in complete:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED", (trial.number, run.info.status)
        assert "learning_curve.png" in [f.path.split("/")[-1] for f in client.list_artifacts(run.info.run_id, "plots")]
        model_id = trial.user_attrs["mlflow_model_uri"].split("models:/", 1)[1]
        assert str(client.get_logged_model(model_id).status) in ("READY", "LoggedModelStatus.READY")
    for trial in study.trials:
        if trial.state.name == "PRUNED" and trial.user_attrs.get("mlflow_run_id"):
            assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "KILLED"


def test_ctrl_c_during_the_refit_stops_it_and_registers_the_trials_own_model(tmp_path):
    """The champion's refit (here 20 networks of 1,000 epochs: a minute or more) stops at the
    first Ctrl-C, at the end of its running epoch: its run KILLED, the trial's own model
    registered, the parent run FINISHED (every trial ran), one line and 130."""
    long_refit = ["sweep.n_trials=1", "training.epochs=1000", "training.early_stopping=false", "sweep.ensemble=20"]
    sweep = Sweep(tmp_path, _overrides(tmp_path, "refit", *long_refit))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    deadline = time.monotonic() + 300
    while True:  # the refit's run exists: it trains
        assert sweep.process.poll() is None and time.monotonic() < deadline, "".join(sweep.lines)
        with contextlib.suppress(Exception):  # the store may not exist yet
            if client.search_runs(client.get_experiment_by_name("refit").experiment_id,
                                  "tags.`sweep.role` = 'refit'"):
                break
        time.sleep(0.2)
    interrupted_at = time.monotonic()
    sweep.process.send_signal(signal.SIGINT)
    status, out, err = sweep.finish()
    assert status == 130, err
    assert time.monotonic() - interrupted_at < 60, "the refit ran on after the Ctrl-C"
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("ann-sweep: interrupted during the champion's refit"), err
    assert re.search(r"refit: trial 0's refit stopped by Ctrl-C at epoch \d+ of network \d+ of 20; ", out), out
    experiment = client.get_experiment_by_name("refit").experiment_id
    (refit,) = client.search_runs(experiment, "tags.`sweep.role` = 'refit'")
    assert refit.info.status == "KILLED" and refit.data.tags["killed_by"] == "Ctrl-C"
    version = client.get_model_version_by_alias("shared", "champion")
    assert "sweep.refit" not in version.tags and "retrained" not in (version.description or "")
    assert version.run_id != refit.info.run_id
    (parent,) = client.search_runs(experiment, "tags.`sweep.role` = 'parent'")
    assert parent.info.status == "FINISHED"
