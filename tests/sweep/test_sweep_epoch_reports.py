"""Per-epoch reports: the median pruner decided in the process equals Optuna's own
``trial.should_prune()`` on a real SQLite study, every value reaches the storage before a
trial ends (pruned, interrupted, failed), and a writing error surfaces as it did in line."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time

import optuna
import pytest

from sweeps.core import vocabulary as V
from sweeps.study.epoch_reports import LocalDecisions, ReportWriter, StudyView, local_pruner
from sweeps.study.objective import Objective
from sweeps.study.reporter import EpochReporter
from sweeps.study.runner import prepare
from sweeps.study.storage import open_storage
from sweeps.study.trial_errors import STOP, TrialLost
from sweeps.training.run import StopRun
from sweep_helpers import sweep_cfg

optuna.logging.set_verbosity(optuna.logging.WARNING)

PRUNERS = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    "median-interval": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1, interval_steps=3,
                                                           n_min_trials=2),
    "percentile": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=1),
    "none": optuna.pruners.NopPruner,
}


def _curve(rng: random.Random, steps: int) -> list[float]:
    level, values = rng.uniform(0.5, 2.0), []
    for _ in range(steps):
        level *= rng.uniform(0.8, 1.02)
        values.append(float("nan") if rng.random() < 0.02 else level)
    return values


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_local_decisions_equal_optunas_should_prune(tmp_path, name, direction):
    """Trials of random curves (a few NaNs, some trials completing while others run) on a real
    SQLite study: at every step, the local decision is what ``trial.should_prune()`` says."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/optuna.db", pruner=PRUNERS[name](),
                                direction=direction)
    rng, decisions = random.Random(f"{name}{direction}"), []
    for number in range(14):
        trial = study.ask()
        local = LocalDecisions(trial, local_pruner(trial), StudyView(study, max_age=0.0))
        steps, pruned = rng.randint(1, 12), False
        for step, value in enumerate(_curve(rng, steps), start=1 + rng.randint(0, 1)):
            trial.report(value, step)
            local.report(value, step)
            pruned = trial.should_prune()
            assert local.should_prune() == pruned, (number, step)
            decisions.append(pruned)
            if pruned:
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, steps * 0.1)
    assert name == "none" or True in decisions  # the comparison saw both answers
    assert False in decisions


def test_the_snapshot_of_complete_trials_is_read_again_after_max_age(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/optuna.db")
    now = [0.0]
    view = StudyView(study, max_age=5.0, clock=lambda: now[0])
    assert view.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) == [] and view.reads == 1
    study.tell(study.ask(), 1.0)  # another worker's trial completes
    now[0] = 4.9
    assert view.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) == [] and view.reads == 1
    now[0] = 5.0
    assert len(view.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) == 1 and view.reads == 2
    with pytest.raises(ValueError, match="COMPLETE trials only"):
        view.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_successive_halving_and_hyperband_decide_through_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    for pruner in (optuna.pruners.SuccessiveHalvingPruner(), optuna.pruners.HyperbandPruner(),
                   optuna.pruners.ThresholdPruner(upper=1.0)):
        trial = optuna.create_study(storage=storage, pruner=pruner).ask()
        reporter = EpochReporter(trial, "val_loss", report=True, pruner_name="x")
        assert local_pruner(trial) is None and reporter.writer is None
    trial = optuna.create_study(storage=storage).ask()
    assert isinstance(local_pruner(trial), optuna.pruners.MedianPruner)


class _WriteLock:
    """Another connection holding SQLite's write lock: the reporter's writes wait for it."""

    def __init__(self, path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")

    def release_after(self, seconds: float) -> None:
        threading.Timer(seconds, lambda: self.connection.execute("COMMIT")).start()


def _study(tmp_path, **pruner):
    """A SQLite study (opened as a sweep opens it) with three completed trials of 10 steps."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(storage=storage, pruner=optuna.pruners.MedianPruner(**pruner))
    for level in (1.0, 1.1, 1.2):
        done = study.ask()
        for step in range(1, 11):
            done.report(level / step, step)
        study.tell(done, level)
    return study


def _stored(tmp_path, number: int) -> dict[int, float]:
    """The intermediate values of trial ``number`` as another process would read them."""
    return optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path}/optuna.db").trials[number].intermediate_values


def test_a_pruned_trial_stores_every_value_before_it_stops(tmp_path):
    """The writes queued behind a lock are all in the storage when StopRun leaves the callback."""
    study = _study(tmp_path, n_startup_trials=3, n_warmup_steps=3)
    trial = study.ask()
    reporter = EpochReporter(trial, "val_loss", report=True, pruner_name="median")
    lock = _WriteLock(tmp_path / "optuna.db")
    lock.release_after(0.5)
    with pytest.raises(StopRun, match="median pruner stopped it at epoch 3"):
        for epoch in range(1, 11):
            reporter(epoch, {"val_loss": 5.0 / epoch})  # worse than every completed trial
    assert _stored(tmp_path, trial.number) == {epoch: 5.0 / epoch for epoch in range(1, 4)}
    reporter.close()


def test_ctrl_c_and_sigterm_mid_trial_store_every_value_first(tmp_path, monkeypatch):
    """A stop request (what ann-sweep's Ctrl-C / SIGTERM handler makes) acted on at the next
    epoch's start: the live trial's values, written slowly, are all stored before Optuna ends
    the trial (a real sweep's trial through the objective)."""
    real, write = EpochReporter.__call__, EpochReporter._report

    def slow_write(reporter, value, epoch):  # a busy storage: the last values are still queued at the stop
        time.sleep(0.1 if epoch >= 4 else 0.0)
        write(reporter, value, epoch)

    monkeypatch.setattr(EpochReporter, "_report", slow_write)
    for signum in (signal.SIGINT, signal.SIGTERM):
        prepared = prepare(sweep_cfg(f"sqlite:///{tmp_path}/s{signum}.db", None, "training.epochs=40",
                                     "sweep.pruner.name=none", "sweep.n_trials=1"))
        objective = Objective(prepared.base, prepared.space, prepared.settings)
        study = optuna.create_study(storage=open_storage(prepared.settings.storage), study_name="s")

        def call(reporter, epoch, logs):  # the signal arrives during epoch 7
            real(reporter, epoch, logs)
            if epoch == 7:
                STOP.request(signum)

        monkeypatch.setattr(EpochReporter, "__call__", call)
        try:
            with pytest.raises(BaseException) as caught:
                study.optimize(objective, n_trials=1, catch=())
        finally:
            STOP.clear()
        assert type(caught.value).__name__ in ("KeyboardInterrupt", "Terminated")
        trial = optuna.load_study(study_name="s", storage=prepared.settings.storage).trials[0]
        assert trial.user_attrs[V.TRIAL_INTERRUPTED] is True and trial.user_attrs[V.TRIAL_EPOCHS] == 7
        assert sorted(trial.intermediate_values) == list(range(1, 8))


def test_a_writing_error_surfaces_as_trial_lost(tmp_path):
    """Another worker failed the trial (a stale heartbeat): the background write's error is the
    same TrialLost as before, raised on the training thread by the next epoch or the flush."""
    study = _study(tmp_path)
    trial = study.ask()
    reporter = EpochReporter(trial, "val_loss", report=True, pruner_name="median")
    reporter(1, {"val_loss": 0.5})
    reporter.flush()
    other = optuna.load_study(study_name=study.study_name, storage=open_storage(f"sqlite:///{tmp_path}/optuna.db"))
    other.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    reporter(2, {"val_loss": 0.4})
    with pytest.raises(TrialLost, match="failed by another worker"):
        reporter.flush()
    reporter.flush()  # raised once
    reporter.close()


class _MedianInTheStorage(optuna.pruners.MedianPruner):
    """The median pruner, not recognised as a local one: asked through ``trial.should_prune()`` as before."""


def test_a_seeded_sweep_gives_the_same_trials_both_ways_and_stores_every_value(tmp_path):
    """The same seeded sweep (median pruner) decided in the process and through the storage:
    the same states, values and stored curves; a pruned trial's curve ends at its pruning epoch."""
    results = []
    for index, pruner in enumerate((optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
                                    _MedianInTheStorage(n_startup_trials=2, n_warmup_steps=1))):
        prepared = prepare(sweep_cfg(f"sqlite:///{tmp_path}/{index}.db", None, "training.epochs=8"))
        objective = Objective(prepared.base, prepared.space, prepared.settings)
        study = optuna.create_study(storage=open_storage(prepared.settings.storage), pruner=pruner,
                                    sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=3))
        study.optimize(objective, n_trials=10, catch=())
        trials = optuna.load_study(study_name=study.study_name, storage=prepared.settings.storage).trials
        results.append([(t.state.name, t.value, t.params, t.intermediate_values) for t in trials])
        for trial in trials:
            assert sorted(trial.intermediate_values) == list(range(1, trial.user_attrs[V.TRIAL_EPOCHS] + 1))
    assert results[0] == results[1]
    assert {state for state, *_ in results[0]} == {"COMPLETE", "PRUNED"}


def test_the_writer_writes_in_order_and_at_most_a_few_values_behind():
    """Epochs much faster than the storage's writes wait for them (a budget's stop, a Ctrl-C
    wait for a few writes at most); the values are written in the order they came."""
    written: list[int] = []

    def write(items) -> None:
        time.sleep(0.01 * len(items))
        written.extend(step for _, step in items)

    writer = ReportWriter(write, max_queued=3)
    for step in range(1, 31):
        writer.put(0.5, step)
        assert len(written) >= step - 3  # at most 3 put and not written
    writer.flush()
    assert written == list(range(1, 31))
    writer.close()


def test_the_writer_writes_what_comes_within_its_batch_time_at_once_and_a_flush_at_once():
    calls: list[list[int]] = []
    writer = ReportWriter(lambda items: calls.append([step for _, step in items]), max_queued=16, batch_seconds=60)
    for step in range(1, 6):
        writer.put(0.5, step)
    started = time.monotonic()
    writer.flush()  # does not wait out the 60 s
    assert time.monotonic() - started < 30 and calls == [[1, 2, 3, 4, 5]]
    for step in range(6, 40):  # a full batch (16 values) is written without waiting either
        writer.put(0.5, step)
    writer.close()
    assert calls[1:] == [list(range(6, 22)), list(range(22, 38)), [38, 39]]


def test_report_values_writes_several_steps_in_one_transaction(tmp_path):
    """On an RDB storage the values of a batch are one commit; Optuna's trial, storage and
    a fresh load of the study all see them."""
    import sqlalchemy

    from sweeps.study.storage import report_values, storage_of

    storage = open_storage(f"sqlite:///{tmp_path}/reports.db")
    study = optuna.create_study(storage=storage, study_name="reports")
    trial = study.ask()
    commits = []
    engine = storage_of(study)._backend.engine
    sqlalchemy.event.listen(engine, "commit", lambda connection: commits.append(1))
    report_values(trial, [(0.9, 1), (0.7, 2), (0.6, 3)])
    assert len(commits) == 1
    report_values(trial, [(0.5, 4)])  # a single value: Optuna's own trial.report
    assert trial._cached_frozen_trial.intermediate_values == {1: 0.9, 2: 0.7, 3: 0.6, 4: 0.5}
    stored = optuna.load_study(study_name="reports", storage=f"sqlite:///{tmp_path}/reports.db").trials[0]
    assert stored.intermediate_values == {1: 0.9, 2: 0.7, 3: 0.6, 4: 0.5}
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].value == 0.5  # a pruned trial's value: its last stored one


def test_set_user_attrs_writes_a_trials_attributes_in_one_transaction(tmp_path):
    """A group of a trial's attributes (its run, why it was pruned, ...) is one commit; Optuna's
    trial and a fresh load of the study see each of them; on a FixedTrial it is set_user_attr."""
    import sqlalchemy

    from sweeps.study.storage import set_user_attrs, storage_of

    storage = open_storage(f"sqlite:///{tmp_path}/attrs.db")
    study = optuna.create_study(storage=storage, study_name="attrs")
    trial = study.ask()
    trial.set_user_attr(V.TRIAL_EPOCHS, 1)
    commits = []
    sqlalchemy.event.listen(storage_of(study)._backend.engine, "commit", lambda connection: commits.append(1))
    attrs = {V.TRIAL_PRUNED_AT: 3, V.TRIAL_EPOCHS: 3, V.TRIAL_PRUNE_REASON: "worse than the median", "cv": [0.1, 0.2]}
    set_user_attrs(trial, attrs)
    assert len(commits) == 1
    assert trial.user_attrs == attrs  # the epochs overwritten, not added twice
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    stored = optuna.load_study(study_name="attrs", storage=f"sqlite:///{tmp_path}/attrs.db").trials[0]
    assert stored.user_attrs == attrs
    fixed = optuna.trial.FixedTrial({})
    set_user_attrs(fixed, {"a": 1, "b": 2})
    assert fixed.user_attrs == {"a": 1, "b": 2}
