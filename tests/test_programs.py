"""The tests and the programs run from any install: no console script needs to be on ``PATH``.

``/path/to/venv/bin/python -m pytest`` with the venv not activated must pass: the tests
start ``ann-train`` & co. through the interpreter that runs them (``tests/programs.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from programs import program

ROOT = Path(__file__).resolve().parents[1]
#: A PATH without the interpreter's folder (where pip puts the console scripts).
BARE_PATH = os.pathsep.join(d for d in os.defpath.split(os.pathsep) if d and not Path(d, "ann-train").exists())


def _bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_", "PYENV"))}
    env["PATH"] = BARE_PATH
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def test_python_m_sweeps_runs_each_program_without_path(tmp_path):
    assert shutil.which("ann-train", path=BARE_PATH) is None
    result = subprocess.run([sys.executable, "-m", "sweeps", "train", "--cfg", "job", "dataset=digits"],
                            cwd=tmp_path, env=_bare_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "name: digits" in result.stdout
    result = subprocess.run([sys.executable, "-m", "sweeps", "sweep", "--cfg", "job", "sweep=quick"],
                            cwd=tmp_path, env=_bare_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "n_trials: 6" in result.stdout


def test_python_m_sweeps_with_an_unknown_command_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sweeps", "trian"], cwd=tmp_path, env=_bare_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("python -m sweeps: error: command='trian' is not allowed: "
                                     "expected one of train, sweep, sweep-status, replay")


def test_program_uses_the_interpreter_that_runs_the_tests():
    argv = program("ann-sweep-status")
    assert argv[0] == str(Path(sys.executable).with_name("ann-sweep-status")) or argv[:3] == [sys.executable, "-m", "sweeps"]


@pytest.mark.slow
def test_the_signal_tests_pass_with_no_console_script_on_path(tmp_path):
    """The two signal tests that failed from a venv that was not activated (FileNotFoundError: 'ann-train')."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"cache_dir={tmp_path}",
         "tests/train/test_train_cli.py", "-k", "signal_marks_the_run_killed"],
        cwd=ROOT, env=_bare_env(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
