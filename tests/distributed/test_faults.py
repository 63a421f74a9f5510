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
from sweeps.core import vocabulary as V
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S

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
        from sweeps.config.run_spec import to_container
        from sweeps.config.compose import compose_sweep as compose
        from sweeps.config import sweep_settings
        from sweeps.study import optuna_study as S
        from sweeps.study import storage as ST
        from sweeps.study.claims import Coordinator
        settings = sweep_settings.parse_settings(to_container(compose({args!r}))["sweep"])
        study, _ = S.create_or_resume(settings, ST.open_sweep_storage(settings))
        coordinator = Coordinator(settings, study, worker=7)
        coordinator.lock.acquire()
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        coordinator._stake(trial)
        os._exit(9)   # dead before its objective ran, with the lock's connection
    """, tmp_path)
    assert claimer.returncode == 9, claimer.stderr
    dead = _study(study_storage).trials[0]
    assert dead.state.name == "RUNNING" and dead.user_attrs[V.ATTR_CLAIM]["worker"] == 7

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
    assert [t for t in study.trials if ST.retried_from(t) == 0], "the dead claim's trial was not re-run"


LONG = ["sweep.pruner.name=none", "dataset.n_samples=600", "training.epochs=200", "sweep.params.batch_size.choices=[16]"]


def _mid_trial(study_storage: str, pid: int, timeout: float = 180):
    """A RUNNING trial of process ``pid`` that has reported at least two epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for trial in _study(study_storage).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if (trial.user_attrs.get(V.ATTR_CLAIM) or {}).get("pid") == pid and len(trial.intermediate_values) >= 2:
                    return trial
        except Exception:  # the study does not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"no trial of pid {pid} was seen mid-training")


def _terminate_backends_of(pid: int, dbname: str, seconds: float) -> int:
    """``pg_terminate_backend`` on every connection of process ``pid`` to ``dbname``, again and again."""
    from services import pg_admin

    admin = pg_admin()
    terminated = 0
    try:
        with admin.cursor() as cursor:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                               "AND application_name LIKE %s", (dbname, f"ann-sweep % {pid}"))
                terminated += sum(1 for (done,) in cursor.fetchall() if done)
                time.sleep(0.05)
    finally:
        admin.close()
    return terminated


def test_dropped_database_connections_mid_trial_fail_no_trial(study_storage, tmp_path):
    """Every connection of a worker is terminated again and again for 3 s while it trains:
    its storage calls are retried, no trial fails, nothing is counted twice, no traceback."""
    n_trials = 6
    args = [*TINY, f"sweep.storage={study_storage}", "tracking=off", f"sweep.n_trials={n_trials}",
            "sweep.heartbeat_interval=1", "sweep.grace_period=10", *LONG]
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(2)}
    try:
        victim = processes["worker0"]
        _mid_trial(study_storage, victim.pid)
        terminated = _terminate_backends_of(victim.pid, study_storage.rsplit("/", 1)[1], 3.0)
        wait_all(processes, tmp_path, timeout=400)
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert terminated >= 1, "no connection was terminated: the test tested nothing"
    assert [p.returncode for p in processes.values()] == [0, 0], logs
    assert "Traceback" not in logs, logs
    study = _study(study_storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * n_trials, (states, logs)
    print(f"{terminated} backends terminated; states {states}")


def test_a_storage_that_stays_away_stops_the_worker_in_one_line_and_its_trial_is_rerun(study_storage, tmp_path):
    """A network partition between one worker and PostgreSQL (a TCP proxy cut mid-trial): that
    worker retries for a minute, then exits 1 with one line; the other fails the cut worker's
    trial once its heartbeat is stale and runs its re-run: the study still gets n_trials."""
    from services import PG_PORT, TcpProxy

    n_trials = 6
    proxy = TcpProxy(PG_PORT)
    behind = study_storage.replace(f":{PG_PORT}/", f":{proxy.port}/")
    common = [*TINY, "tracking=off", f"sweep.n_trials={n_trials}", "sweep.heartbeat_interval=1",
              "sweep.grace_period=4", *LONG]
    processes = {"cut": start_sweep([*common, f"sweep.storage={behind}"], tmp_path, "cut")}
    try:
        trial = _mid_trial(study_storage, processes["cut"].pid)
        processes["other"] = start_sweep([*common, f"sweep.storage={study_storage}"], tmp_path, "other")
        proxy.cut()
        cut_at = time.monotonic()
        wait_all(processes, tmp_path, timeout=500)
    finally:
        proxy.cut()
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert processes["other"].returncode == 0, logs
    assert processes["cut"].returncode == 1, logs
    err = (tmp_path / "cut.err").read_text()
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ann-sweep: error: the Optuna storage postgresql+psycopg2://") and "has not answered for" in last, err
    assert f":{proxy.port}/" in last
    study = _study(study_storage)
    assert S.finished_count(study) == n_trials, [t.state.name for t in study.trials]
    dead = next(t for t in study.trials if t.number == trial.number)
    assert dead.state.name == "FAIL" and not S.counts_toward_budget(dead)
    rerun = [t for t in study.trials if ST.retried_from(t) == trial.number]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE" and rerun[0].params == dead.params
    print(f"cut worker exited {time.monotonic() - cut_at:.0f} s after the cut at the latest")


def test_a_finisher_killed_while_finishing_is_replaced_at_once(mlflow_server, study_storage, tmp_path):
    """SIGKILL the worker elected to finish the parent run, mid-finish: another worker of this
    host sees its process gone and finishes the parent run at once (not after 300 s); the
    line each survivor prints names the worker that really finished it."""
    from mlflow import MlflowClient


    experiment = f"dist-{study_storage.rsplit('_', 1)[-1]}"
    args = [*TINY, f"sweep.storage={study_storage}", f"tracking.uri={mlflow_server.uri}",
            f"tracking.experiment_name={experiment}", "sweep.n_trials=6", "sweep.heartbeat_interval=1",
            "sweep.grace_period=4"]
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(3)}
    pids = {p.pid: name for name, p in processes.items()}
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline:
            try:
                record = _study(study_storage).user_attrs.get(V.ATTR_FINISHED) or {}
            except Exception:
                record = {}
            if record.get("pid") in pids and not record.get("done"):
                victim = pids[record["pid"]]
                processes[victim].kill()
                killed_at = time.monotonic()
            time.sleep(0.02)
        assert victim is not None, "no finisher was seen at work\n" + "\n".join(output(tmp_path, n) for n in processes)
        survivors = {name: p for name, p in processes.items() if name != victim}
        wait_all(survivors, tmp_path, timeout=300)
        ended = time.monotonic() - killed_at
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert [p.returncode for p in survivors.values()] == [0, 0], logs
    study = _study(study_storage)
    record = study.user_attrs[V.ATTR_FINISHED]
    assert record["done"] and record["pid"] in {p.pid for p in survivors.values()}, record
    client = MlflowClient(mlflow_server.uri)
    parent = client.get_run(study.user_attrs[V.ATTR_PARENT_RUN])
    assert parent.info.status == "FINISHED" and "best.model" in parent.data.tags, logs
    assert ended < 200, f"the parent run was finished {ended:.0f} s after the kill"
    finisher_name = pids[record["pid"]]
    for name in survivors:
        out = (tmp_path / f"{name}.out").read_text()
        if name != finisher_name:
            assert f"the parent run was finished by worker {record['worker']} (pid {record['pid']}" in out, out
        assert "finished by another worker" not in out
    print(f"{victim} killed while finishing; {finisher_name} finished the parent run, all done {ended:.0f} s later")
