"""Distributed sweeps against the real PostgreSQL and a real ``mlflow server``: separate ``ann-sweep``
processes on one study, a worker killed with SIGKILL, the tracking server stopped and restarted.

Every sweep here is a separate ``python -m sweeps.cli.sweep`` process, exactly what a user
(or a machine of a team) runs; nothing is mocked. The module takes about 3 minutes on the
2-core development machine (under 8 with the machine shared).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from dist_helpers import TINY, kill_all, output, start_sweep, wait_all
from services import free_port
from sweeps.core import vocabulary as V
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STUDY = "moons-quick"


def _study(url: str):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY, storage=url)


def _args(storage: str, server, *overrides: str) -> list[str]:
    # The same study name in every test (each has its own storage); each gets its own
    # MLflow experiment so that the tests do not see each other's runs.
    experiment = f"dist-{storage.rsplit('_', 1)[-1]}"
    return [*TINY, f"sweep.storage={storage}", f"tracking.uri={server.uri}", f"tracking.experiment_name={experiment}",
            *overrides]


def _children(client, parent_id: str) -> list:
    experiment_id = client.get_run(parent_id).info.experiment_id
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                                  max_results=500, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _status(args: list[str], cwd, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from sweeps.cli.sweep import status_main; status_main()", *args, *extra],
        cwd=cwd, capture_output=True, text=True, timeout=180,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "COLUMNS": "1000"},
    )


def test_a_tracking_server_absent_at_start_is_one_line_within_10_s(study_storage, tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sweeps.cli.sweep", *TINY, f"sweep.storage={study_storage}",
         f"tracking.uri=http://127.0.0.1:{port}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    elapsed = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ann-sweep: error: tracking.uri='http://127.0.0.1:{port}' cannot be used: "
                               "no MLflow server answers within 5 s (Connection refused)"), lines[0]
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert optuna.study.get_all_study_names(study_storage) == []  # nothing was started


def test_three_workers_make_exactly_thirty_trials_under_one_parent(mlflow_server, study_storage, tmp_path):
    args = _args(study_storage, mlflow_server, "sweep.n_trials=30", "sweep.heartbeat_interval=2",
                 "sweep.grace_period=6")
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(3)}
    try:
        wait_all(processes, tmp_path, timeout=420)
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert [p.returncode for p in processes.values()] == [0, 0, 0], logs

    study = _study(study_storage)
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(30)), logs
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}, logs
    assert S.finished_count(study) == 30
    claims = [t.user_attrs[V.ATTR_CLAIM] for t in trials]
    assert {c["pid"] for c in claims} == {p.pid for p in processes.values()}  # every process ran trials
    assert {t.user_attrs[V.TRIAL_WORKER] for t in trials} == {0, 1, 2}  # one worker number (and seed) each

    client = MlflowClient(mlflow_server.uri)
    parent_id = study.user_attrs[V.ATTR_PARENT_RUN]
    parents = client.search_runs([client.get_run(parent_id).info.experiment_id],
                                 filter_string="tags.`sweep.role` = 'parent'")
    assert [run.info.run_id for run in parents] == [parent_id]  # one parent, shared by all workers
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials/complete"] + \
        parent.data.metrics["trials/pruned"] == 30
    children = _children(client, parent_id)
    assert len(children) == 30
    assert {run.info.run_id for run in children} == {t.user_attrs[V.TRIAL_RUN_ID] for t in trials}
    assert sorted(int(run.data.tags["sweep.trial_number"]) for run in children) == list(range(30))
    finished_elsewhere = sum("the parent run was finished by worker" in (tmp_path / f"{name}.out").read_text()
                             for name in processes)
    assert finished_elsewhere == 2, logs  # the parent run was finished once, by one of them

    # Every child's artifacts come back through the server (proxied artifact storage).
    import mlflow.artifacts

    for trial in trials:
        run_id = trial.user_attrs[V.TRIAL_RUN_ID]
        folder = tmp_path / "download" / run_id
        client.download_artifacts(run_id, "", str(folder))
        assert (folder / "config" / "config.yaml").stat().st_size > 0
        assert "model.hidden_layers=" in (folder / "config" / "overrides.yaml").read_text()
        if trial.state.name == "COMPLETE":
            assert (folder / "plots" / "learning_curve.png").stat().st_size > 1000
            model_id = trial.user_attrs[V.TRIAL_MODEL_URI].split("models:/", 1)[1]
            location = client.get_logged_model(model_id).artifact_location  # mlflow-artifacts:/...
            model = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(tmp_path / "models" / run_id),
                                                        tracking_uri=mlflow_server.uri)
            assert os.path.exists(os.path.join(model, "MLmodel"))

    status = _status(args, tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "30 finished" in status.stdout and "orphans: none" in status.stdout
    assert "reconciled" not in status.stdout


def _wait_for_victim(study_storage: str, processes: dict, timeout: float = 120):
    """A RUNNING trial of one of ``processes`` whose run exists: ``(name, trial)``."""
    pids = {process.pid: name for name, process in processes.items()}
    study = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = study or _study(study_storage)
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        except Exception:  # the study does not exist yet
            time.sleep(0.3)
            continue
        for trial in running:
            claim = trial.user_attrs.get(V.ATTR_CLAIM) or {}
            if claim.get("pid") in pids and trial.user_attrs.get(V.TRIAL_RUN_ID) and trial.number >= 2:
                return pids[claim["pid"]], trial
        time.sleep(0.05)
    raise AssertionError("no trial with a run was seen running")


def test_a_worker_killed_mid_trial_is_retried_after_the_grace_period(mlflow_server, study_storage, tmp_path):
    n_trials, interval, grace = 12, 1, 4
    args = _args(study_storage, mlflow_server, f"sweep.n_trials={n_trials}", f"sweep.heartbeat_interval={interval}",
                 f"sweep.grace_period={grace}", "sweep.max_retries=2")
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(3)}
    try:
        victim, trial = _wait_for_victim(study_storage, processes)
        processes[victim].send_signal(signal.SIGKILL)  # kill -9, mid-trial: its run stays RUNNING
        killed_at = time.monotonic()
        processes[victim].wait(timeout=30)
        study = _study(study_storage)
        while True:  # its heartbeat stops: after the grace period another worker fails it
            state = next(t.state.name for t in study.get_trials(deepcopy=False) if t.number == trial.number)
            if state != "RUNNING" or time.monotonic() - killed_at > 120:
                break
            time.sleep(0.1)
        noticed = time.monotonic() - killed_at
        survivors = {name: p for name, p in processes.items() if name != victim}
        wait_all(survivors, tmp_path, timeout=300)
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert processes[victim].returncode == -signal.SIGKILL
    assert [p.returncode for p in survivors.values()] == [0, 0], logs
    assert state == "FAIL", logs
    assert grace - interval - 0.5 <= noticed <= grace + 30, f"failed {noticed:.1f} s after the kill"
    print(f"trial {trial.number} of {victim} killed; failed {noticed:.1f} s later (grace {grace} s)")

    study = _study(study_storage)
    trials = study.trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == n_trials, states
    assert len(trials) == n_trials + 1 and states.count("FAIL") == 1
    assert sorted(t.number for t in trials) == list(range(n_trials + 1))
    assert S.finished_count(study) == n_trials
    dead = next(t for t in trials if t.number == trial.number)
    assert dead.state.name == "FAIL" and not dead.user_attrs.get(V.TRIAL_FAIL_REASON)
    rerun = [t for t in trials if ST.retried_from(t) == trial.number]
    assert len(rerun) == 1 and rerun[0].state.name in ("COMPLETE", "PRUNED")
    assert rerun[0].params == dead.params and rerun[0].user_attrs[V.TRIAL_RETRY_OF] == trial.number
    assert rerun[0].user_attrs[V.TRIAL_RUN_ID] != dead.user_attrs[V.TRIAL_RUN_ID]

    client = MlflowClient(mlflow_server.uri)
    orphan_id = dead.user_attrs[V.TRIAL_RUN_ID]
    assert client.get_run(orphan_id).info.status == "RUNNING"  # nobody could end it: its process died
    parent_id = study.user_attrs[V.ATTR_PARENT_RUN]
    assert client.get_run(parent_id).info.status == "FINISHED"
    assert len(_children(client, parent_id)) == n_trials + 1  # the orphan is a child too

    dry = _status(args, tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"run {orphan_id}" in dry.stdout and "would be marked KILLED" in dry.stdout
    assert client.get_run(orphan_id).info.status == "RUNNING"
    status = _status(args, tmp_path)
    (tmp_path / "status.out").write_text(status.stdout)
    assert status.returncode == 0, status.stderr[-3000:]
    assert f"run {orphan_id}" in status.stdout and f"trial {trial.number} is FAIL" in status.stdout
    assert "marked KILLED" in status.stdout
    orphan = client.get_run(orphan_id)
    assert orphan.info.status == "KILLED" and orphan.data.tags["sweep.state"] == "FAIL"
    assert "ann-sweep-status" in orphan.data.tags["killed_by"]
    again = _status(args, tmp_path)
    assert "reconciled" not in again.stdout  # nothing left to do
    assert f"re-run as trial {rerun[0].number}" in again.stdout


def test_a_tracking_server_outage_mid_sweep_loses_no_metrics(mlflow_server, study_storage, tmp_path):
    n_trials = 16
    args = _args(study_storage, mlflow_server, f"sweep.n_trials={n_trials}", "sweep.heartbeat_interval=2",
                 "sweep.grace_period=10")
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(2)}
    try:
        deadline = time.monotonic() + 180
        study = None
        while time.monotonic() < deadline:  # let a few trials finish first
            try:
                study = study or _study(study_storage)
                if S.finished_count(study) >= 3:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        stopped = time.time()
        mlflow_server.stop()
        time.sleep(max(0.0, 10 - (time.time() - stopped)))
        mlflow_server.start()  # the same port
        restarted = time.time()
        wait_all(processes, tmp_path, timeout=400)
    finally:
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert [p.returncode for p in processes.values()] == [0, 0], logs
    assert restarted - stopped >= 10

    study = _study(study_storage)
    trials = study.trials
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == n_trials and S.finished_count(study) == n_trials, [t.state.name for t in trials]
    for trial in trials:  # a trial that failed for the outage is marked so and re-run, not counted
        if trial.state.name == "FAIL":
            assert trial.user_attrs.get(V.TRIAL_RETRYABLE), trial.user_attrs
    overlapping = [t for t in trials if t.datetime_start.timestamp() < restarted
                   and (t.datetime_complete is None or t.datetime_complete.timestamp() > stopped)]
    assert overlapping, "no trial ran while the server was down: the test tested nothing"
    retried = [t.number for t in trials if t.state.name == "FAIL"]
    print(f"outage {restarted - stopped:.1f} s; trials overlapping it: {[t.number for t in overlapping]}; "
          f"failed and re-run: {retried}")

    client = MlflowClient(mlflow_server.uri)
    for trial in done:
        run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss/val"))
        train_steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss/train"))
        if trial.state.name == "COMPLETE":
            epochs = trial.user_attrs[V.TRIAL_EPOCHS]
            assert run.info.status == "FINISHED" and run.data.tags["sweep.state"] == "COMPLETE"
            for name in ("loss/test", "accuracy/test", "n_parameters", "best/loss/val", "epochs_run"):
                assert name in run.data.metrics, (trial.number, name)
            assert run.data.metrics["sweep/objective"] == pytest.approx(trial.value)
            assert trial.user_attrs[V.TRIAL_MODEL_URI]
        else:
            epochs = trial.user_attrs[V.TRIAL_PRUNED_AT]
            assert run.info.status == "KILLED" and run.data.tags["sweep.state"] == "PRUNED"
        assert steps == list(range(1, epochs + 1)), (trial.number, trial.state.name, steps)
        assert train_steps == steps, (trial.number, train_steps)
    assert mlflow_server.starts >= 2


def test_a_stalled_worker_whose_trial_was_declared_dead_goes_on_without_double_counting(study_storage, tmp_path):
    """SIGSTOP a worker mid-trial for longer than the grace period: another worker fails its
    trial and runs the re-run; when the stalled one wakes up it drops that trial and goes on."""
    n_trials, grace = 5, 3
    args = [*TINY, f"sweep.storage={study_storage}", "tracking=off", f"sweep.n_trials={n_trials}",
            "sweep.heartbeat_interval=1", f"sweep.grace_period={grace}", "sweep.pruner.name=none",
            "dataset.n_samples=600", "training.epochs=300", "sweep.params.batch_size.choices=[16]"]
    processes = {f"worker{i}": start_sweep(args, tmp_path, f"worker{i}") for i in range(2)}
    try:
        pids = {p.pid: name for name, p in processes.items()}
        deadline = time.monotonic() + 120
        victim = trial = None
        while victim is None and time.monotonic() < deadline:
            try:
                running = _study(study_storage).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            except Exception:
                running = []
            for candidate in running:
                claim = candidate.user_attrs.get(V.ATTR_CLAIM) or {}
                if claim.get("pid") in pids and len(candidate.intermediate_values) >= 3:
                    victim, trial = pids[claim["pid"]], candidate
                    break
            time.sleep(0.05)
        assert victim is not None, "no trial was seen mid-training"
        processes[victim].send_signal(signal.SIGSTOP)
        study = _study(study_storage)
        stopped = time.monotonic()
        while time.monotonic() - stopped < 60:  # the other worker fails it after the grace period
            state = next(t.state.name for t in study.get_trials(deepcopy=False) if t.number == trial.number)
            if state == "FAIL":
                break
            time.sleep(0.2)
        time.sleep(1)
        processes[victim].send_signal(signal.SIGCONT)
        wait_all(processes, tmp_path, timeout=300)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
        kill_all(processes)
    logs = "\n".join(output(tmp_path, name) for name in processes)
    assert state == "FAIL", logs
    assert [p.returncode for p in processes.values()] == [0, 0], logs
    assert "was failed by another worker while it ran here" in output(tmp_path, victim), logs
    trials = _study(study_storage).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == n_trials and states.count("FAIL") == 1, states
    rerun = [t for t in trials if ST.retried_from(t) == trial.number]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE" and rerun[0].params == trial.params


def test_a_worker_stalled_inside_a_transaction_does_not_block_the_others(study_storage):
    """A worker frozen between two statements of one of Optuna's transactions holds a row lock
    on its trial; the others must still fail that trial once its heartbeat is stale. The
    server ends the frozen session after the grace period, and its lock with it."""
    import threading

    import sqlalchemy

    interval, grace = 1, 2
    stalled_storage = ST.open_storage(study_storage, heartbeat_interval=interval, grace_period=grace)
    study = optuna.create_study(study_name=STUDY, storage=stalled_storage)
    trial = study.ask()
    stalled_storage.record_heartbeat(trial._trial_id)
    frozen = stalled_storage.engine.connect()  # the stalled worker: mid-transaction, holding the trial's row
    frozen.begin()
    frozen.execute(sqlalchemy.text("SELECT trial_id FROM trials WHERE trial_id = :id FOR UPDATE"),
                   {"id": trial._trial_id})

    other = optuna.load_study(study_name=STUDY,
                              storage=ST.open_storage(study_storage, heartbeat_interval=interval, grace_period=grace))
    time.sleep(grace + 0.5)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (optuna.storages.fail_stale_trials(other), done.set()), daemon=True)
    started = time.monotonic()
    worker.start()
    assert done.wait(grace + 15), "failing the stale trial waited on the frozen worker's lock"
    print(f"stale trial failed {time.monotonic() - started:.1f} s after the other worker looked")
    assert other.trials[0].state == optuna.trial.TrialState.FAIL
    with pytest.raises(sqlalchemy.exc.OperationalError, match="closed the connection"):
        frozen.execute(sqlalchemy.text("SELECT 1"))  # on waking, the stalled worker finds its session ended
