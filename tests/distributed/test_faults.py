"""Faults of distributed sweeps, each reproduced with real processes, the real PostgreSQL and
real signals (SIGKILL, SIGSTOP, ``pg_terminate_backend``): what a worker does on each is in
docs/explanation/distributed-faults.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from dist_helpers import TINY, kill_all, output, start_sweep, wait_all
from sweeps import study as S
from sweeps.claims import ATTR_CLAIM

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STUDY = "moons-quick"


def _study(url: str):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY, storage=url)


def _python(code: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this worktree's sweeps) and return its result."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_a_worker_dead_right_after_its_claim_does_not_stall_the_sweep(study_storage, tmp_path):
    """A process claims a trial under the lock and dies before it runs it (``os._exit``): the
    trial must go stale like any other, so two workers still end the study with 8 counted trials."""
    n_trials = 8
    args = [*TINY, f"sweep.storage={study_storage}", "tracking=off", f"sweep.n_trials={n_trials}",
            "sweep.heartbeat_interval=1", "sweep.grace_period=3"]
    claimer = _python(f"""
        import os, optuna
        from sweeps.config import to_container
        from sweeps.runner import compose
        from sweeps import study as S
        from sweeps.claims import Coordinator
        settings = S.parse_settings(to_container(compose({args!r}))["sweep"])
        study, _ = S.create_or_resume(settings, S.open_sweep_storage(settings))
        coordinator = Coordinator(settings, study, worker=7)
        coordinator.lock.acquire()
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        coordinator._stake(trial)
        os._exit(9)   # dead before its objective ran, with the lock's connection
    """, tmp_path)
    assert claimer.returncode == 9, claimer.stderr
    dead = _study(study_storage).trials[0]
    assert dead.state.name == "RUNNING" and dead.user_attrs[ATTR_CLAIM]["worker"] == 7

    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(2)}
    try:
        wait_all(processes, tmp_path, timeout=400)
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert [p.returncode for p in processes.values()] == [0, 0], logs
    study = _study(study_storage)
    assert S.finished_count(study) == n_trials, [t.state.name for t in study.trials]
    assert study.trials[0].state.name == "FAIL"
    assert [t for t in study.trials if S.retried_from(t) == 0], "the dead claim's trial was not re-run"
