"""Claims, heartbeats, retries and reconciliation on real SQLite / PostgreSQL storages (no mocks).

The multi-process and multi-machine behaviour (separate ``ann-sweep`` processes, SIGKILL,
a tracking server outage) is in tests/distributed; these are the building blocks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import optuna
import pytest
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.core.locks import HOST, StorageLock
from sweeps.core.storage import application_name
from sweeps.study.claims import Coordinator
from sweeps.core.errors import ConfigError
from services import free_port
from sweep_helpers import cli_overrides, sweep_cfg

optuna.logging.set_verbosity(optuna.logging.WARNING)
# The tests play dead workers with study.ask(), which Optuna warns about with a heartbeat storage.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")


def _settings(storage: str, **changes) -> sweep_settings.SweepSettings:
    return sweep_settings.parse_settings({"study_name": "s", "storage": storage, "n_trials": 2, "heartbeat_interval": 1,
                             "grace_period": 2, **changes})


def _study(settings):
    study, _ = S.create_or_resume(settings, ST.open_sweep_storage(settings))
    return study


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _abandoned(study, settings, pid: int | None = None, heartbeat: bool = True, beat: bool = True):
    """A RUNNING trial as a worker leaves it when it dies: claimed, one heartbeat (unless not
    ``beat``: it died between its claim and its first heartbeat), then silence."""
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr(V.ATTR_CLAIM, {"host": HOST, "pid": pid or _dead_pid(), "worker": 9,
                                     "heartbeat": settings.heartbeat_interval if heartbeat else None})
    trial.set_user_attr("sweep.trial_uid", "dead")
    if heartbeat and beat:
        study._storage.record_heartbeat(trial._trial_id)
    return trial


def _objective(trial):
    return trial.suggest_float("x", 0, 1)


# ------------------------------------------------------------------------ settings


def test_heartbeats_are_on_by_default_for_rdb_storages_and_ignored_for_journal_files():
    from sweeps.config.run_spec import to_container
    from sweeps.config.compose import compose_sweep as compose

    default = sweep_settings.parse_settings(to_container(compose([]))["sweep"])
    assert (default.heartbeat_interval, default.grace_period, default.max_retries) == (10, 30, 2)
    assert default.heartbeats and default.grace_seconds == 30
    journal = sweep_settings.parse_settings(to_container(compose(["sweep.storage=optuna.log"]))["sweep"])
    assert not journal.heartbeats and journal.grace_seconds is None
    assert sweep_settings.parse_settings({"study_name": "s", "storage": "sqlite:///o.db", "n_trials": 1,
                             "heartbeat_interval": 5}).grace_seconds == 10


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"grace_period": 1}, "sweep.grace_period"),            # not longer than the interval
        ({"grace_period": 0, "heartbeat_interval": None}, "sweep.grace_period"),
        ({"max_retries": -1}, "sweep.max_retries"),
        ({"outage_wait": -5}, "sweep.outage_wait"),
        ({"heartbeat_interval": 0}, "sweep.heartbeat_interval"),
    ],
)
def test_bad_fault_settings_are_refused(changes, key):
    with pytest.raises(ConfigError) as caught:
        _settings("sqlite:///o.db", **changes)
    assert caught.value.key == key


def test_the_storage_gets_heartbeats_and_the_retry_callback(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", heartbeat_interval=3, grace_period=9, max_retries=4)
    storage = ST.open_sweep_storage(settings)
    assert storage.get_heartbeat_interval() == 3 and storage.grace_period == 9
    assert storage.get_heartbeat_stale_trial_callback()._max_retry == 4
    off = ST.open_sweep_storage(_settings(f"sqlite:///{tmp_path}/p.db", max_retries=0))
    assert off.get_heartbeat_stale_trial_callback() is None
    journal = ST.open_sweep_storage(_settings(str(tmp_path / "o.log")))
    assert not hasattr(journal, "get_heartbeat_interval") or journal.get_heartbeat_interval() is None


# --------------------------------------------------------------------------- claims


def test_liveness_of_running_trials(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=5)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    by_hand = study.ask()                                                  # no claim: left over
    dead_local = _abandoned(study, settings, heartbeat=False)             # this machine, process gone
    live_local = _abandoned(study, settings, pid=os.getpid(), heartbeat=False)
    with_heartbeat = _abandoned(study, settings)                           # alive until its heartbeat is stale
    census = coordinator.census()
    assert sorted(t.number for t in census.alive) == [live_local.number, with_heartbeat.number]
    assert sorted(t.number for t in census.leftover) == [by_hand.number, dead_local.number]
    assert census.counted == 0 and census.room(5) == 3
    coordinator.close()


def test_a_stale_trial_is_failed_and_its_rerun_takes_the_slot(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=2)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    dead = _abandoned(study, settings)
    assert coordinator.run_one(_objective) == "ran"          # a fresh trial: the dead one still holds its slot
    assert coordinator.run_one(_objective) == "wait"         # 1 counted + 1 alive = n_trials: wait, do not leave
    time.sleep(settings.grace_seconds + 1.2)
    assert coordinator.run_one(_objective) == "ran"          # stale: failed, and its re-run runs here
    assert coordinator.run_one(_objective) == "done"
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    rerun = trials[2]
    assert ST.retried_from(rerun) == dead.number and rerun.params == trials[0].params
    assert rerun.user_attrs[V.ATTR_CLAIM]["pid"] == os.getpid()  # claimed anew
    assert S.finished_count(study) == 2
    coordinator.close()


def test_a_claim_without_any_heartbeat_is_failed_by_its_age(tmp_path):
    """Optuna never fails a RUNNING trial without a heartbeat row: the claim's age decides."""
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    dead = _abandoned(study, settings, beat=False)
    assert coordinator.run_one(_objective) == "wait"          # young: it may still write its first heartbeat
    time.sleep(settings.grace_seconds + 1.2)
    assert coordinator.run_one(_objective) == "ran"           # older than the grace period: failed, re-run here
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert ST.retried_from(trials[1]) == dead.number and trials[1].params == trials[0].params
    assert coordinator.run_one(_objective) == "done"
    coordinator.close()


def test_a_claim_comes_with_its_first_heartbeat(tmp_path):
    """A worker that dies right after its claim leaves a trial that goes stale like any other."""
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    with coordinator.lock:
        trial = study.ask()
        coordinator._stake(trial)
    backend = study._storage._backend
    assert backend._get_stale_trial_ids(study._study_id) == []  # it has a heartbeat, still fresh
    time.sleep(settings.grace_seconds + 1.2)
    assert backend._get_stale_trial_ids(study._study_id) == [trial._trial_id]
    coordinator.close()


def test_retries_stop_at_max_retries(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1, max_retries=1)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    first = _abandoned(study, settings)
    time.sleep(settings.grace_seconds + 1.2)
    with coordinator.lock:
        assert [t.number for t in coordinator.fail_stale()] == [first.number]
    retry = study.ask()                                       # its re-run, abandoned as well
    assert ST.retried_from(study.trials[retry.number]) == first.number
    retry.set_user_attr(V.ATTR_CLAIM, {"host": HOST, "pid": _dead_pid(), "heartbeat": 1})
    study._storage.record_heartbeat(retry._trial_id)
    time.sleep(settings.grace_seconds + 1.2)
    with coordinator.lock:
        coordinator.fail_stale()
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]  # no third attempt
    assert coordinator.run_one(_objective) == "ran"                   # a fresh trial fills the slot
    assert S.finished_count(study) == 1 and "x" in study.trials[2].params
    coordinator.close()


def test_worker_numbers_and_the_finisher_are_handed_out_once(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    first, second = Coordinator(settings, study), Coordinator(settings, study)
    assert first.join(2) == 0 and second.join(1) == 2 and first.join(1) == 3
    first.run_one(_objective)
    assert first.elect_finisher() is True
    assert second.elect_finisher() is False and first.elect_finisher() is False
    more = Coordinator(sweep_settings.parse_settings({**_as_section(settings), "n_trials": 2}), study)
    more.run_one(_objective)
    assert more.elect_finisher() is True  # a resumed, larger study is finished again
    for coordinator in (first, second, more):
        coordinator.close()


def test_released_or_dead_workers_numbers_are_handed_out_again(tmp_path):
    """A process that resumes alone is worker 0 again: numbers are released on close, and a
    number held by a process of this host that is gone is free."""

    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    first, second = Coordinator(settings, study), Coordinator(settings, study)
    assert first.join(1) == 0 and second.join(2) == 1
    first.close()
    third = Coordinator(settings, study)
    assert third.join(1) == 0  # released by first; 1 and 2 are still second's
    second.close()
    third.close()
    study.set_user_attr(V.ATTR_WORKER_SLOTS, {"0": {"host": HOST, "pid": _dead_pid()}})
    fourth = Coordinator(settings, study)
    assert fourth.join(2) == 0
    fourth.close()
    assert study.user_attrs[V.ATTR_WORKER_SLOTS] == {}


def _as_section(settings):
    return {"study_name": settings.study_name, "storage": settings.storage, "n_trials": settings.n_trials,
            "heartbeat_interval": settings.heartbeat_interval, "grace_period": settings.grace_period}


def _blocks(first: StorageLock, second: StorageLock) -> None:
    """``second`` waits while ``first`` is held."""
    got = threading.Event()
    first.acquire()
    thread = threading.Thread(target=lambda: (second.acquire(), got.set(), second.release()))
    thread.start()
    time.sleep(0.5)
    assert not got.is_set()
    first.release()
    thread.join(timeout=20)
    assert got.is_set()


def test_the_file_lock_excludes_other_holders(tmp_path):
    url = f"sqlite:///{tmp_path}/o.db"
    a, b = StorageLock.for_storage(url, "x"), StorageLock.for_storage(url, "x")
    _blocks(a, b)
    other = StorageLock.for_storage(url, "y")  # another name: no waiting
    with a:
        with other:
            pass
    for lock in (a, b, other):
        lock.close()


@pytest.mark.postgres
def test_the_postgresql_advisory_lock_excludes_other_sessions(postgres_url):
    ST.open_storage(postgres_url)  # the database exists
    a, b = StorageLock.for_storage(postgres_url, "x"), StorageLock.for_storage(postgres_url, "x")
    _blocks(a, b)
    a.close()
    b.close()


# --------------------------------------------------------------- tracking failures


def test_what_a_tracking_failure_is():
    from mlflow.exceptions import MlflowException

    from sweeps.core.errors import TrackingError
    from sweeps.study.objective import is_tracking_failure

    assert is_tracking_failure(TrackingError("tracking.uri='x' cannot be used: no MLflow server answers"))
    assert is_tracking_failure(MlflowException("API request to http://h/api/2.0/mlflow/runs/log-batch failed with "
                                               "exception HTTPConnectionPool: Max retries exceeded"))
    assert is_tracking_failure(ConnectionResetError())
    assert not is_tracking_failure(MlflowException("Invalid value for parameter 'lr'"))
    assert not is_tracking_failure(ValueError("boom"))


def test_a_tracking_failure_fails_the_trial_retryable_and_queues_its_rerun(uris, monkeypatch):
    import copy

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # ann-sweep retries for a minute; not here

    from sweeps.study.objective import Objective, TrialFailed
    from sweeps.study.runner import prepare

    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=1", "sweep.outage_wait=1"))
    settings = prepared.settings
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    gone = copy.deepcopy(prepared.base)
    gone["tracking"]["uri"] = f"http://127.0.0.1:{free_port()}"  # the server went away
    stranded = Objective(gone, prepared.space, settings)
    assert coordinator.run_one(stranded, catch=(TrialFailed,)) == "ran"   # waits sweep.outage_wait, then gives up
    failed = study.trials[0]
    attrs = failed.user_attrs
    assert failed.state.name == "FAIL" and attrs[V.TRIAL_RETRYABLE] is True
    assert attrs[V.TRIAL_FAIL_REASON].startswith("tracking failed: the tracking server http://127.0.0.1:")
    assert "has not answered for" in attrs[V.TRIAL_FAIL_REASON] and "re-run queued" in attrs[V.TRIAL_FAIL_REASON]
    assert stranded.outage is not None  # the sweep loop stops (exit 1) instead of waiting again
    assert not S.counts_toward_budget(failed)
    waiting = study.trials[1]
    assert waiting.state.name == "WAITING" and waiting.params == failed.params and ST.retried_from(waiting) == 0

    back = Objective(prepared.base, prepared.space, settings)   # the server is back
    assert coordinator.run_one(back, catch=(TrialFailed,)) == "ran"
    rerun = study.trials[1]
    assert rerun.state.name in ("COMPLETE", "PRUNED") and rerun.user_attrs[V.TRIAL_RETRY_OF] == 0
    assert not rerun.user_attrs.get(V.TRIAL_FAIL_REASON) and not rerun.user_attrs.get(V.TRIAL_RETRYABLE)
    back.drain()  # a run's last batch is written by the worker's background writer
    run = MlflowClient(tracking_uri).get_run(rerun.user_attrs[V.TRIAL_RUN_ID])
    assert run.data.tags["sweep.trial_number"] == "1" and run.data.tags["sweep.state"] == rerun.state.name
    assert coordinator.run_one(back, catch=(TrialFailed,)) == "done" and len(study.trials) == 2
    coordinator.close()
    stranded.close()
    back.close()  # its helper process exits now, not with pytest


def test_a_worker_waits_for_the_tracking_server_then_gives_up_in_one_line(uris):
    import copy

    from sweeps.study.objective import Objective, TrackingOutage
    from sweeps.study.runner import prepare

    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.outage_wait=1.5"))
    Objective(prepared.base, prepared.space, prepared.settings).wait_for_tracking()  # a local store: no wait
    gone = copy.deepcopy(prepared.base)
    gone["tracking"]["uri"] = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingOutage) as caught:
        Objective(gone, prepared.space, prepared.settings).wait_for_tracking()
    assert 1.5 <= time.monotonic() - started < 10
    message = str(caught.value)
    assert "has not answered for" in message and "run the same command again to resume" in message
    assert "\n" not in message


# ------------------------------------------------------------------------- status


def test_status_reconciles_a_dead_workers_trial_and_its_run(uris):
    from sweeps.study.runner import prepare
    from sweeps.study.status import study_status

    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.heartbeat_interval=1", "sweep.grace_period=2"))
    settings = prepared.settings
    study = _study(settings)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(settings.study_name)
    dead = _abandoned(study, settings)
    run = client.create_run(experiment_id, run_name="t000 dead", tags={
        "sweep.role": "trial", "sweep.study_name": settings.study_name, "sweep.trial_number": str(dead.number),
        "sweep.state": "RUNNING"})
    dead.set_user_attr(V.TRIAL_RUN_ID, run.info.run_id)
    time.sleep(settings.grace_seconds + 1.2)

    dry = study_status(settings, tracking_uri, settings.study_name, reconcile=False)
    assert len(dry.reconciled) == 2, dry.reconciled
    assert "trial 0 has had no heartbeat for more than 2 s" in dry.reconciled[0] and "would be failed" in dry.reconciled[0]
    assert run.info.run_id in dry.reconciled[1] and "would be marked KILLED" in dry.reconciled[1]
    assert client.get_run(run.info.run_id).info.status == "RUNNING" and study.trials[0].state.name == "RUNNING"

    report = study_status(settings, tracking_uri, settings.study_name)
    assert "failed, its re-run queued" in report.reconciled[0]
    assert f"run {run.info.run_id} (t000 dead) was RUNNING but trial 0 is FAIL" in report.reconciled[1]
    reconciled = client.get_run(run.info.run_id)
    assert reconciled.info.status == "KILLED" and reconciled.data.tags["sweep.state"] == "FAIL"
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]
    assert report.orphans == []
    board = report.leaderboard.set_index("trial")
    assert board.loc[0, "reason"] == "no heartbeat: its worker died or stalled; re-run as trial 1"
    assert board.loc[1, "reason"].startswith("re-run of trial 0")
    assert study_status(settings, tracking_uri, settings.study_name).reconciled == []


# --------------------------------------------------------------- whole sweeps


@pytest.mark.slow
def test_separate_processes_on_one_sqlite_study_make_exactly_n_trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    argv = cli_overrides(storage, None, "sweep.n_trials=9")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-m", "sweeps.cli.sweep", *argv], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    study = optuna.load_study(study_name="moons-quick", storage=storage)
    assert sorted(t.number for t in study.trials) == list(range(9)) and S.finished_count(study) == 9
    workers = {t.user_attrs[V.ATTR_CLAIM]["pid"]: t.user_attrs[V.ATTR_CLAIM]["worker"] for t in study.trials}
    assert len(set(workers.values())) == len(workers)  # each process its own worker number (and seed)


@pytest.mark.slow
def test_a_study_of_the_same_name_in_another_storage_gets_its_own_parent(tmp_path):
    from sweeps.study.runner import prepare, run_sweep

    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = run_sweep(prepare(sweep_cfg(f"sqlite:///{tmp_path}/a.db", tracking_uri, "sweep.n_trials=2")))
    second = run_sweep(prepare(sweep_cfg(f"sqlite:///{tmp_path}/b.db", tracking_uri, "sweep.n_trials=2")))
    assert first.parent_run_id != second.parent_run_id and first.experiment_id == second.experiment_id
    again = run_sweep(prepare(sweep_cfg(f"sqlite:///{tmp_path}/a.db", tracking_uri, "sweep.n_trials=3")))
    assert again.parent_run_id == first.parent_run_id and again.finished_parent


# ----------------------------------------------------------------- storage faults


def _backends(dbname: str, role: str) -> list[int]:
    """Backend pids of this process's ``role`` connections (storage, lock) to ``dbname``."""
    from services import pg_admin

    connection = pg_admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                           (dbname, application_name(role)))
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.postgres
def test_a_storage_call_cut_by_pg_terminate_backend_is_retried_on_a_new_connection(postgres_url):
    """The write waits on a row lock; its backend is terminated mid-statement: the write is
    retried (after a back-off) and succeeds instead of failing the trial."""
    from services import pg_admin

    dbname = postgres_url.rsplit("/", 1)[1]
    storage = ST.open_storage(postgres_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    blocker = pg_admin(dbname)
    blocker.autocommit = False
    with blocker.cursor() as cursor:  # another session holds the trial's row
        cursor.execute("SELECT trial_id FROM trials WHERE trial_id = %s FOR UPDATE", (trial._trial_id,))
    outcome: dict = {}

    def write():
        try:
            trial.set_user_attr("k", 1)
            outcome["ok"] = True
        except BaseException as error:  # what the trial would have died of
            outcome["error"] = error

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 60
    terminated = []
    while not terminated and time.monotonic() < deadline:
        admin = pg_admin()
        with admin.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                           "AND wait_event_type = 'Lock'", (dbname, application_name("storage")))
            for (pid,) in cursor.fetchall():
                cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
                terminated.append(pid)
        admin.close()
        time.sleep(0.05)
    assert terminated, "the write never waited on the lock"
    blocker.commit()
    blocker.close()
    writer.join(timeout=120)
    assert outcome == {"ok": True}, outcome
    assert study.trials[0].user_attrs["k"] == 1


def test_a_storage_that_stays_away_is_one_line_after_the_retries(tmp_path):
    from sweeps.core.faults import StorageOutage, retry_on_faults
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x",
                                      connect_args={"connect_timeout": 2})
    started = time.monotonic()
    with pytest.raises(StorageOutage) as caught:
        retry_on_faults(lambda: engine.connect(), "postgresql://postgres@127.0.0.1/x", seconds=3)
    assert 1.5 <= time.monotonic() - started < 30  # 0.5 + 1 s of back-off, then no room for the 2 s pause
    message = str(caught.value)
    assert message.startswith("the Optuna storage postgresql://postgres@127.0.0.1/x has not answered for")
    assert "Connection refused" in message and "\n" not in message
    assert not isinstance(caught.value, Exception)  # Optuna must not turn it into a failed trial
    with pytest.raises(ValueError):  # anything else is not retried
        retry_on_faults(lambda: int("x"), "u", seconds=3)


@pytest.fixture
def limited_role(postgres_url):
    """A login role of the test database whose CONNECTION LIMIT the test sets; its URL and a setter."""
    from contextlib import closing

    from services import pg_admin

    dbname = postgres_url.rsplit("/", 1)[1]
    role = f"{dbname}_limited"
    with closing(pg_admin()) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        cursor.execute(f'GRANT ALL ON DATABASE "{dbname}" TO "{role}"')
    with closing(pg_admin(dbname)) as admin, admin.cursor() as cursor:
        cursor.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')  # Optuna creates its tables there

    def set_limit(limit: int) -> None:
        with closing(pg_admin()) as admin, admin.cursor() as cursor:
            cursor.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT {int(limit)}')

    try:
        yield postgres_url.replace("postgresql://postgres@", f"postgresql://{role}@"), set_limit
    finally:
        with closing(pg_admin()) as admin, admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        with closing(pg_admin(dbname)) as admin, admin.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')  # its tables and grants in the test database
        with closing(pg_admin()) as admin, admin.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
def test_the_study_lock_waits_while_the_server_has_no_free_connection(limited_role):
    """PostgreSQL refuses the lock's connection (the role's CONNECTION LIMIT is used up, as
    "too many clients already" when max_connections is): the lock is retried with back-off
    and taken once a slot is free, instead of the worker dying with a traceback."""
    url, set_limit = limited_role
    lock = StorageLock.for_storage(url, "ann-sweep:study:busy")
    freed = threading.Timer(2.0, set_limit, args=(1,))
    started = time.monotonic()
    freed.start()
    try:
        lock.acquire()
        try:
            assert lock.held()
            assert time.monotonic() - started >= 1.5  # it waited for the slot
        finally:
            lock.release()
    finally:
        freed.join()
        lock.close()


@pytest.mark.postgres
def test_a_server_that_stays_full_ends_the_lock_in_one_line(limited_role):
    from sweeps.core.faults import StorageOutage

    url, _ = limited_role
    lock = StorageLock.for_storage(url, "ann-sweep:study:full")
    lock.retry_seconds = 3
    started = time.monotonic()
    with pytest.raises(StorageOutage) as caught:
        lock.acquire()
    assert 1.5 <= time.monotonic() - started < 30
    message = str(caught.value)
    assert "too many connections for role" in message and "\n" not in message
    assert message.startswith("the Optuna storage postgresql") and " has not answered for " in message
    # The lock is not left half-taken: once a connection is allowed, it is taken at once.
    lock.retry_seconds = 60
    _, set_limit = limited_role
    set_limit(1)
    with lock:
        assert lock.held()
    lock.close()


@pytest.mark.postgres
def test_opening_the_storage_waits_while_the_server_has_no_free_connection(limited_role):
    """With one connection allowed, the create-tables lock takes it and the storage's own
    connection is refused ("too many connections for role"): the storage waits for a slot
    instead of calling the URL unusable."""
    url, set_limit = limited_role
    set_limit(1)
    raised = threading.Timer(2.0, set_limit, args=(4,))
    started = time.monotonic()
    raised.start()
    try:
        storage = ST.open_storage(url)
    finally:
        raised.join()
    assert time.monotonic() - started >= 1.5
    optuna.create_study(study_name="busy", storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1),
                                                                    n_trials=1)
    storage.engine.dispose()


@pytest.mark.postgres
def test_a_wrong_storage_url_is_said_at_once_not_retried(postgres_url):
    """The first connection to a database that does not exist is not a fault to wait out."""
    import sqlalchemy

    lock = StorageLock.for_storage(postgres_url + "_missing", "ann-sweep:study:x")
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError, match="does not exist"):
        lock.acquire()
    assert time.monotonic() - started < 5
    lock.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_ann_sweep_on_a_full_server_waits_then_exits_in_one_line(limited_role, tmp_path):
    """The whole program, with every connection refused ("too many connections for role"):
    retried for a minute (sweeps.core.faults.RETRY_SECONDS), then one line, exit 1."""
    url, _ = limited_role
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "sweeps.cli.sweep", *cli_overrides(url, None, "sweep.n_trials=1")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - started >= 55
    assert "Traceback" not in result.stderr
    errors = [line for line in lines if line.startswith("ann-sweep: error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "has not answered for" in errors[0] and "too many connections for role" in errors[0]


@pytest.mark.slow
def test_processes_opening_a_fresh_mlflow_database_at_once_all_get_it(tmp_path):
    """Three processes open a fresh SQLite MLflow store at the same instant (a time barrier),
    as three ann-sweep processes started together do: the creation and the upgrade of its
    tables are serialised, so none of them fails with an Alembic migration error."""
    code = textwrap.dedent("""
        import sys, time
        from sweeps.tracking.session import _client
        from sweeps.tracking.client import get_or_create_experiment
        start = float(sys.argv[2])
        while time.time() < start:
            time.sleep(0.001)
        print(get_or_create_experiment(_client(sys.argv[1]), "team"))
    """)
    for round_ in range(2):
        uri = f"sqlite:///{tmp_path}/mlflow-{round_}.db"
        start = time.time() + 15  # every interpreter has imported MLflow by then, even on a busy machine
        processes = [subprocess.Popen([sys.executable, "-c", code, uri, str(start)], cwd=tmp_path, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        outputs = [process.communicate(timeout=300) for process in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], [err[-1500:] for _, err in outputs]
        assert len({out.strip() for out, _ in outputs}) == 1  # one experiment, the same for all
        assert time.time() > start, "a process finished before the barrier: raise its delay"


# ---------------------------------------------------------------------- finisher


def test_a_finisher_found_dead_is_replaced_at_once(tmp_path):
    """Same host: the elected process is gone. Another host: its beat is older than the grace period."""
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    coordinator.run_one(_objective)
    elected = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from sweeps.config import sweep_settings
        from sweeps.study import optuna_study as S
        from sweeps.study import storage as ST
        from sweeps.study.claims import Coordinator
        settings = sweep_settings.parse_settings({_as_section(settings)!r})
        study, _ = S.create_or_resume(settings, ST.open_sweep_storage(settings))
        assert Coordinator(settings, study, worker=5).elect_finisher()
        os._exit(0)   # killed while finishing: never marks the record done
    """)], capture_output=True, text=True, timeout=120)
    assert elected.returncode == 0, elected.stderr
    record = coordinator.finish_record()
    assert record["worker"] == 5 and not record["done"] and not coordinator.finisher_alive(record)
    assert coordinator.elect_finisher() is True              # at once, not after FINISH_TAKEOVER_SECONDS
    with coordinator.finishing():
        pass
    assert coordinator.finish_record()["done"] is True
    assert coordinator.elect_finisher() is False             # done: nobody finishes it again


    beat = time.time()
    study.set_user_attr(V.ATTR_FINISHED, {**coordinator.finish_record(), "host": "elsewhere", "pid": 1, "done": False,
                                        "beat": beat})
    assert coordinator.elect_finisher() is False             # another host's finisher, beating
    study.set_user_attr(V.ATTR_FINISHED, {**coordinator.finish_record(), "beat": beat - settings.grace_seconds - 1})
    assert coordinator.elect_finisher() is True              # its beat is stale
    coordinator.close()


def test_a_finisher_beats_while_it_finishes(tmp_path):
    settings = _settings(f"sqlite:///{tmp_path}/o.db", n_trials=1)
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    coordinator.run_one(_objective)
    assert coordinator.elect_finisher()
    first = coordinator.finish_record()["beat"]
    with coordinator.finishing():
        deadline = time.monotonic() + 60
        while coordinator.finish_record()["beat"] == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert coordinator.finish_record()["beat"] > first and not coordinator.finish_record()["done"]
    assert coordinator.finish_record()["done"]
    coordinator.close()


@pytest.mark.slow
def test_status_finishes_a_parent_run_left_running_by_a_dead_finisher(uris):
    from sweeps.study.runner import prepare, run_sweep
    from sweeps.study.status import study_status

    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=2"))
    outcome = run_sweep(prepared)
    client = MlflowClient(tracking_uri)
    parent_id = outcome.parent_run_id
    # As a finisher killed mid-way leaves it: the parent RUNNING, the record not done, its process gone.
    client.update_run(parent_id, status="RUNNING")
    client.delete_tag(parent_id, "best.model")
    study = _study(prepared.settings)
    study.set_user_attr(V.ATTR_FINISHED, {**study.user_attrs[V.ATTR_FINISHED], "pid": _dead_pid(), "done": False})

    dry = study_status(prepared.settings, tracking_uri, prepared.tracking.experiment_name, reconcile=False)
    assert any(line.startswith(f"parent run {parent_id} is RUNNING though all 2 trials are done") and
               "would be finished" in line for line in dry.reconciled), dry.reconciled
    assert client.get_run(parent_id).info.status == "RUNNING"
    report = study_status(prepared.settings, tracking_uri, prepared.tracking.experiment_name)
    assert any(f"parent run {parent_id} was RUNNING" in line and "finished (leaderboard" in line
               for line in report.reconciled), report.reconciled
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags.get("best.model")
    assert _study(prepared.settings).user_attrs[V.ATTR_FINISHED]["done"] is True
    assert study_status(prepared.settings, tracking_uri, prepared.tracking.experiment_name).reconciled == []


# ------------------------------------------------------- runs of trials that did not count


class _StalledAfterTraining:
    """The real objective (attributes and all); on its first trial, after training and before
    Optuna is told, the trial is failed, as another worker's ``fail_stale`` does while this one
    is stopped (SIGSTOP) after its last epoch."""

    def __init__(self, objective, other_storage) -> None:
        object.__setattr__(self, "objective", objective)
        object.__setattr__(self, "other_storage", other_storage)
        object.__setattr__(self, "calls", 0)

    def __getattr__(self, name):
        return getattr(self.objective, name)

    def __setattr__(self, name, value):
        setattr(self.objective, name, value)

    def __call__(self, trial):
        from optuna.trial import TrialState

        value = self.objective(trial)
        object.__setattr__(self, "calls", self.calls + 1)
        if self.calls == 1:
            assert self.other_storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        return value


@pytest.mark.slow
def test_a_trial_failed_while_its_worker_stalled_after_training_does_not_keep_a_finished_run(uris):
    from sweeps.study.objective import Objective
    from sweeps.study.runner import prepare
    from sweeps.study.workers import Budget, work

    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=1", "sweep.max_retries=0"))
    settings = prepared.settings
    study = _study(settings)
    coordinator = Coordinator(settings, study)
    objective = Objective(prepared.base, prepared.space, settings)
    work(study, _StalledAfterTraining(objective, ST.open_sweep_storage(settings)), Budget(None), None, coordinator)
    first = study.trials[0]
    assert first.state.name == "FAIL" and not S.counts_toward_budget(first)
    run = MlflowClient(tracking_uri).get_run(first.user_attrs[V.TRIAL_RUN_ID])
    assert run.info.status == "KILLED", run.info.status                 # not FINISHED
    assert run.data.tags["sweep.state"] == "FAIL"                        # not RUNNING, not COMPLETE
    assert "failed by another worker" in run.data.tags["fail_reason"]
    assert S.finished_count(study) == 1 and study.trials[1].state.name in ("COMPLETE", "PRUNED")
    coordinator.close()
    objective.close()  # its helper process exits now, not with pytest


def test_status_makes_finished_and_failed_runs_say_how_their_trial_ended(uris):
    from optuna.trial import TrialState

    from sweeps.study.status import study_status

    storage, tracking_uri = uris
    settings = _settings(storage, n_trials=3, heartbeat_interval=None, grace_period=None)
    study = _study(settings)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(settings.study_name)

    def trial_with_run(run_status: str, trial_state, **attrs):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        run = client.create_run(experiment_id, run_name=f"t{trial.number:03d}", tags={
            "sweep.role": "trial", "sweep.study_name": settings.study_name,
            "sweep.trial_number": str(trial.number), "sweep.state": "RUNNING"})
        client.set_terminated(run.info.run_id, run_status)
        trial.set_user_attr(V.TRIAL_RUN_ID, run.info.run_id)
        study.tell(trial, 0.5 if trial_state == TrialState.COMPLETE else None, state=trial_state)
        return run.info.run_id

    stalled = trial_with_run("FINISHED", TrialState.FAIL)                     # stalled after its last epoch
    lost_server = trial_with_run("FAILED", TrialState.FAIL, **{V.TRIAL_FAIL_REASON: "tracking failed: gone",
                                                                V.TRIAL_RETRYABLE: True})
    fine = trial_with_run("FINISHED", TrialState.COMPLETE)
    client.set_tag(fine, "sweep.state", "COMPLETE")

    dry = study_status(settings, tracking_uri, settings.study_name, reconcile=False)
    assert len(dry.reconciled) == 2, dry.reconciled
    report = study_status(settings, tracking_uri, settings.study_name)
    assert f"run {stalled} (t000) was FINISHED with sweep.state=RUNNING but trial 0 is FAIL" in report.reconciled[0]
    assert report.reconciled[0].endswith("marked KILLED")
    assert f"run {lost_server} (t001) was FAILED with sweep.state=RUNNING but trial 1 is FAIL (tracking failed: gone)" \
        in report.reconciled[1] and report.reconciled[1].endswith("tagged sweep.state=FAIL")
    assert (client.get_run(stalled).info.status, client.get_run(stalled).data.tags["sweep.state"]) == ("KILLED", "FAIL")
    assert (client.get_run(lost_server).info.status,
            client.get_run(lost_server).data.tags["sweep.state"]) == ("FAILED", "FAIL")
    assert client.get_run(fine).info.status == "FINISHED"
    assert study_status(settings, tracking_uri, settings.study_name).reconciled == []


# ------------------------------------------------------------------- frozen holder


@pytest.mark.postgres
@pytest.mark.slow
def test_a_holder_of_the_study_lock_stopped_with_sigstop_stalls_the_others_for_one_grace_period(postgres_url, tmp_path):
    """A worker stopped (SIGSTOP: Ctrl-Z, a laptop asleep) while it holds the study's lock:
    the others get the lock after the grace period; the stopped one, woken, knows it lost it."""
    import signal

    settings = _settings(postgres_url, heartbeat_interval=1, grace_period=3)
    _study(settings)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import logging, os, signal, sys
        logging.basicConfig(level=logging.WARNING)
        from sweeps.config import sweep_settings
        from sweeps.study import optuna_study as S
        from sweeps.study import storage as ST
        from sweeps.study.claims import Coordinator
        settings = sweep_settings.parse_settings({_as_section(settings)!r})
        study, _ = S.create_or_resume(settings, ST.open_sweep_storage(settings))
        coordinator = Coordinator(settings, study)
        coordinator.lock.acquire()
        print("held", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
        print("still held:", coordinator.lock.held(), flush=True)
        coordinator.lock.release()
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stopped (state T) before we time the wait
            with open(f"/proc/{holder.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            time.sleep(0.05)
        other = Coordinator(settings, _study(settings))
        got = threading.Event()
        started = time.monotonic()
        waiter = threading.Thread(target=lambda: (other.lock.acquire(), got.set()), daemon=True)
        waiter.start()
        assert got.wait(settings.grace_seconds + 60), "the stopped holder kept the lock"
        waited = time.monotonic() - started
        other.lock.release()
        other.close()
    finally:
        holder.send_signal(signal.SIGCONT)
        out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    assert "still held: False" in out and "it was lost while held" in err, (out, err)
    print(f"the others waited {waited:.1f} s (grace period {settings.grace_seconds} s)")
