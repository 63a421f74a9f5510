"""Helpers of the distributed-sweep tests (imported as ``dist_helpers``): real processes.

* :data:`TINY` -- the overrides of a sweep small enough to run many times;
* :func:`start_sweep` -- one ``ann-sweep`` process (``python -m sweeps.cli.sweep``) with
  its output in files; :func:`output`, :func:`wait_all`, :func:`kill_all`.

The servers (PostgreSQL databases, a restartable ``mlflow server``) are in ``tests/services.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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


def start_sweep(overrides: list[str], cwd: Path, name: str, env: dict | None = None) -> subprocess.Popen:
    """One ``ann-sweep`` process; its stdout / stderr go to ``<cwd>/<name>.out`` / ``.err``."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    out = open(cwd / f"{name}.out", "w")
    err = open(cwd / f"{name}.err", "w")
    try:
        return subprocess.Popen([sys.executable, "-m", "sweeps.cli.sweep", *overrides], cwd=cwd, env=environment,
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
