"""Ctrl-C on ``ann-sweep``, with real SIGINTs to a real process: the champion alias moves
only to a better model, a second Ctrl-C ends with one line and 130, and the process that
resumes alone is worker 0 again (the seeds of an uninterrupted sweep)."""

from __future__ import annotations

import os
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
