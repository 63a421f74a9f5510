"""Real sweeps on SQLite: parent and child runs, curves, artifacts, links, resume, workers, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.study.runner import prepare, run_sweep
from sweeps.study.status import study_status
from sweep_helpers import cli_overrides, sweep_cfg

pytestmark = pytest.mark.slow


def _children(client, parent_run_id):
    return client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
    )


def _study(storage, name):
    return optuna.load_study(study_name=name, storage=ST.open_storage(storage))


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """One real 6-trial sweep on SQLite, shared by the tests that read it."""
    tmp = tmp_path_factory.mktemp("six")
    storage, tracking_uri = f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlflow.db"
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=6"))
    seen = []
    outcome = run_sweep(prepared, progress=seen.append, started=lambda info: seen.append(_views_at_start(tracking_uri, info)))
    return prepared, outcome, storage, tracking_uri, seen, tmp


def _views_at_start(tracking_uri, info) -> set[str]:
    """The saved UI views the experiment has when the sweep starts (before any trial)."""

    tags = MlflowClient(tracking_uri).get_experiment(info["experiment_id"]).tags
    return {key[len(V.VIEW_TAG_PREFIX):] for key in tags if key.startswith(V.VIEW_TAG_PREFIX)}


def test_six_trials_under_one_parent(six):
    prepared, outcome, storage, tracking_uri, seen, _ = six
    client = MlflowClient(tracking_uri)
    assert outcome.status == "FINISHED" and outcome.progress.finished == 6
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "sweep moons-quick"
    children = _children(client, outcome.parent_run_id)
    assert len(children) == 6
    study = _study(storage, "moons-quick")
    assert len(study.trials) == 6
    views, seen = seen[0], seen[1:]
    assert views == {f"trials-{outcome.parent_run_id}"}  # the printed compare link works from the start
    assert seen[0].finished == 0 and seen[-1].finished == 6  # progress at the start and after every trial
    assert parent.data.metrics["best/loss/val"] == pytest.approx(study.best_value)
    assert parent.data.tags["best.trial"] == str(study.best_trial.number)
    assert parent.data.tags["best.param.lr"] == str(study.best_params["lr"])
    note = parent.data.tags["mlflow.note.content"]  # the description on the parent's page
    counts = {state: sum(t.state.name == state for t in study.trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    assert note.startswith("**Sweep `moons-quick`**: minimize loss/val; tpe sampler, median pruner.")
    assert (f"6/6 trials finished: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
            f"{counts['FAIL']} failed.") in note
    best_name = client.get_run(study.best_trial.user_attrs[V.TRIAL_RUN_ID]).info.run_name
    assert f"Best: `{best_name}`, loss/val={study.best_value:.4g}" in note


def test_links_both_ways_and_run_names(six):
    _, outcome, storage, tracking_uri, _, _ = six
    client = MlflowClient(tracking_uri)
    runs = {run.info.run_id: run for run in _children(client, outcome.parent_run_id)}
    for trial in _study(storage, "moons-quick").trials:
        run = runs[trial.user_attrs[V.TRIAL_RUN_ID]]
        assert run.data.tags["sweep.trial_number"] == str(trial.number)
        assert run.data.tags["sweep.study_name"] == "moons-quick"
        assert run.data.tags["sweep.state"] == trial.state.name
        assert run.info.run_name.startswith(f"t{trial.number:03d} ")
        assert f"lr={run.info.run_name.split('lr=')[1].split()[0]}" in run.info.run_name


def test_curves_have_one_point_per_epoch_and_pruned_runs_stop_early(six):
    _, outcome, storage, tracking_uri, _, _ = six
    client = MlflowClient(tracking_uri)
    states = []
    for trial in _study(storage, "moons-quick").trials:
        run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss/val")]
        states.append(trial.state.name)
        if trial.state.name == "COMPLETE":
            assert steps == [1, 2, 3, 4, 5] and run.info.status == "FINISHED"
            assert run.data.tags["fit"] in ("good", "overfit", "underfit", "diverged")
        else:
            assert trial.state.name == "PRUNED"
            at = trial.user_attrs[V.TRIAL_PRUNED_AT]
            assert steps == list(range(1, at + 1)) and at < 5
            assert run.info.status == "KILLED" and run.data.tags["pruned_at_epoch"] == str(at)
            assert run.data.tags["prune_reason"]
    assert "PRUNED" in states and "COMPLETE" in states  # the seeded sweep prunes some trials


def test_artifacts_leaderboard_and_champion(six, tmp_path, global_tracking_uri):
    _, outcome, storage, tracking_uri, _, _ = six
    client = MlflowClient(tracking_uri)
    parent_id = outcome.parent_run_id
    listed = {a.path for folder in ("plots", "leaderboard", "sweep") for a in client.list_artifacts(parent_id, folder)}
    assert {"plots/optuna.html", "plots/top_trials_curves.png", "leaderboard/leaderboard.csv",
            "sweep/config.yaml", "sweep/overrides.yaml"} <= listed
    html = open(client.download_artifacts(parent_id, "plots/optuna.html", str(tmp_path))).read()
    for heading in ("Optimization history", "Parameter importances", "Parallel coordinates", "Intermediate values"):
        assert heading in html
    board = pd.read_csv(client.download_artifacts(parent_id, "leaderboard/leaderboard.csv", str(tmp_path)))
    assert len(board) == 6 and list(board["rank"]) == list(range(1, 7))
    assert set(board["run_id"]) == {run.info.run_id for run in _children(client, parent_id)}
    assert board.loc[0, "state"] == "COMPLETE" and board.loc[0, "fit"] in ("good", "overfit", "underfit")
    for run in _children(client, parent_id):
        if run.info.status == "FINISHED":
            assert {"plots/learning_curve.png"} <= {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    name, version = outcome.registered
    assert name == "moons-quick"
    import mlflow

    global_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    labels = model.predict(pd.DataFrame({"x1": [0.0, 1.0], "x2": [0.5, -0.5]}))
    assert len(labels) == 2
    version_info = client.get_model_version_by_alias(name, "champion")
    assert version_info.run_id == board.loc[0, "run_id"] and str(version_info.version) == version
    # The UI's page of the logged model shows it registered (a local store's client does not say so itself).
    logged = client.get_logged_model(model.metadata.model_id)
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": name, "version": version}]
    # Beside the objective, the leaderboard shows each completed trial's validation accuracy.
    assert list(board.columns[:5]) == ["rank", "trial", "state", "loss/val", "accuracy/val"]
    assert board.loc[board["state"] == "COMPLETE", "accuracy/val"].between(0, 1).all()


def test_status_report_finds_no_orphans_then_finds_them(six):
    prepared, outcome, storage, tracking_uri, _, _ = six
    report = study_status(prepared.settings, tracking_uri, "moons-quick")
    assert report.finished == 6 and report.orphans == [] and report.parent_run_id == outcome.parent_run_id
    assert list(report.leaderboard["run_id"].notna()) == [True] * 6
    # A trial left RUNNING (its process died) and a run without a trial are orphans.
    study = _study(storage, "moons-quick")
    study.ask()
    client = MlflowClient(tracking_uri)
    stray = client.create_run(outcome.experiment_id, run_name="stray",
                              tags={"sweep.role": "trial", "sweep.study_name": "moons-quick", "sweep.trial_number": "99"})
    report = study_status(prepared.settings, tracking_uri, "moons-quick")
    assert any("trial 6 left RUNNING" in line for line in report.orphans)
    assert any(stray.info.run_id in line and "has no trial" in line for line in report.orphans)


def test_a_huge_learning_rate_is_pruned_with_its_reason_and_the_sweep_completes(uris):
    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=3", "optimizer=sgd",
                                 "sweep.params.lr.high=1e6", "sweep.params.activation.choices=[relu]"))
    study, _ = S.create_or_resume(prepared.settings, ST.open_storage(storage))
    study.enqueue_trial({"n_layers": 1, "units_l1": 4, "activation": "relu", "lr": 1e6, "batch_size": 16})
    outcome = run_sweep(prepared)
    assert outcome.status == "FINISHED" and outcome.progress.finished == 3
    trial = _study(storage, "moons-quick").trials[0]
    assert trial.state.name == "PRUNED" and "non-finite" in trial.user_attrs[V.TRIAL_PRUNE_REASON]
    run = MlflowClient(tracking_uri).get_run(trial.user_attrs[V.TRIAL_RUN_ID])
    assert run.info.status == "KILLED" and "non-finite" in run.data.tags["prune_reason"]
    assert "non-finite" in outcome.leaderboard.set_index("trial").loc[0, "reason"]


def test_failed_trials_stop_the_sweep_at_the_failure_budget(uris, tmp_path):
    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=6", "sweep.max_failures=1"))
    # The data prepare() loaded once goes away: every trial then loads it again, and fails.
    gone = {"name": "csv", "path": str(tmp_path / "gone.csv"), "target": "y"}
    prepared.base["dataset"] = gone
    prepared.spec = dataclasses.replace(prepared.spec, dataset="csv", dataset_options={"path": gone["path"], "target": "y"})
    prepared.data = None
    outcome = run_sweep(prepared)
    assert outcome.status == "FAILED" and outcome.stop_reason == "failure budget"
    trials = _study(storage, "moons-quick").trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    assert all("gone.csv" in t.user_attrs[V.TRIAL_FAIL_REASON] for t in trials)
    assert MlflowClient(tracking_uri).get_run(outcome.parent_run_id).info.status == "FAILED"


def test_two_workers_make_exactly_n_trials(uris):
    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=6", "sweep.workers=2"))
    outcome = run_sweep(prepared)
    assert outcome.worker_errors == [] and outcome.status == "FINISHED"
    trials = _study(storage, "moons-quick").trials
    assert len(trials) == 6 and S.finished_count(_study(storage, "moons-quick")) == 6
    assert {t.user_attrs[V.TRIAL_WORKER] for t in trials} == {0, 1}
    client = MlflowClient(tracking_uri)
    assert len(_children(client, outcome.parent_run_id)) == 6
    assert {t.user_attrs[V.TRIAL_RUN_ID] for t in trials} == {r.info.run_id for r in _children(client, outcome.parent_run_id)}


def test_resume_after_an_interrupted_sweep(tmp_path):
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    # Trials of a few tenths of a second (tiny networks on 200 points): long enough that the sweep is
    # still running when the test, polling every 0.2 s, has seen two of them finish and sends Ctrl-C.
    argv = cli_overrides(storage, tracking_uri, "sweep.n_trials=5", "training.epochs=400", "sweep.pruner.name=none")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "sweeps.cli.sweep", *argv], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if (tmp_path / "optuna.db").exists():
                try:
                    done = S.finished_count(_study(storage, "moons-quick"))
                except Exception:  # the study is not created yet
                    continue
                if done >= 2:
                    break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out + err)[-4000:]
    assert "interrupted" in err
    study = _study(storage, "moons-quick")
    before = S.finished_count(study)
    assert 2 <= before < 5
    parent_id = study.user_attrs[V.ATTR_PARENT_RUN]
    client = MlflowClient(tracking_uri)
    assert client.get_run(parent_id).info.status == "KILLED"
    numbers_before = [t.number for t in study.trials]

    prepared = prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=5", "training.epochs=400",
                                 "sweep.pruner.name=none"))
    outcome = run_sweep(prepared)
    assert outcome.resumed and outcome.finished_before == before
    study = _study(storage, "moons-quick")
    assert S.finished_count(study) == 5
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers))) and numbers[: len(numbers_before)] == numbers_before
    assert outcome.parent_run_id == parent_id and client.get_run(parent_id).info.status == "FINISHED"
    interrupted = [t for t in study.trials if t.user_attrs.get(V.TRIAL_INTERRUPTED)]
    for trial in interrupted:  # the trial Ctrl-C stopped: FAILED, not counted, its run KILLED
        assert trial.state.name == "FAIL"
        assert client.get_run(trial.user_attrs[V.TRIAL_RUN_ID]).info.status == "KILLED"


PATH_PARAMS = (
    "+sweep.params.optimizer={choices:[adam,adamw]}",
    "+sweep.params.optimizer.weight_decay={low:1e-4,high:0.1,log:true}",
    "+sweep.params.training.schedule.name={choices:[constant,cosine]}",
    "+sweep.params.training.schedule.warmup_epochs={low:0,high:3}",
)


def test_enqueued_sets_run_first_and_paths_reach_the_runs(uris):
    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(
        storage, tracking_uri, "sweep.n_trials=4", "sweep.pruner.name=none", *PATH_PARAMS,
        "sweep.enqueue=[{n_layers:1,units:8,optimizer:adamw,optimizer.weight_decay:0.05,"
        "training.schedule.name:cosine,training.schedule.warmup_epochs:2},{n_layers:2,lr:0.01}]",
    ))
    outcome = run_sweep(prepared)
    assert outcome.status == "FINISHED" and outcome.progress.finished == 4
    trials = _study(storage, "moons-quick").trials
    first, second = trials[0].params, trials[1].params
    assert {k: first[k] for k in ("n_layers", "units_l1", "optimizer", "optimizer.weight_decay",
                                  "training.schedule.name", "training.schedule.warmup_epochs")} == {
        "n_layers": 1, "units_l1": 8, "optimizer": "adamw", "optimizer.weight_decay": 0.05,
        "training.schedule.name": "cosine", "training.schedule.warmup_epochs": 2}
    assert second["n_layers"] == 2 and second["lr"] == 0.01  # a partial set: the rest was sampled
    client = MlflowClient(tracking_uri)
    run = client.get_run(trials[0].user_attrs[V.TRIAL_RUN_ID])
    params = run.data.params
    assert (params["optimizer.name"], params["optimizer.weight_decay"]) == ("adamw", "0.05")
    assert (params["training.schedule.name"], params["training.schedule.warmup_epochs"]) == ("cosine", "2")
    lr = float(params["optimizer.lr"])
    curve = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)]
    assert curve[:2] == pytest.approx([lr / 2, lr]) and len(curve) == 5 and curve[-1] < lr
    # Running the same sweep again (same space, toward more trials) does not queue the sets a second time.
    run_sweep(prepare(sweep_cfg(storage, tracking_uri, "sweep.n_trials=5", "sweep.pruner.name=none", *PATH_PARAMS,
                                "sweep.enqueue=[{n_layers:2,lr:0.01}]")))
    trials = _study(storage, "moons-quick").trials
    assert len(trials) == 5
    assert sum(t.params.get("n_layers") == 2 and t.params.get("lr") == 0.01 for t in trials) == 1


def test_a_time_budget_stops_the_sweep_and_the_progress_shows_what_is_left(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "sweeps.cli.sweep",
                             *cli_overrides(storage, None, "sweep.n_trials=10000", "sweep.budget=4s")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "time budget: 0:04 (a trial still running then is pruned at the end of its epoch" in result.stdout
    assert "(stopped: timeout)" in result.stdout
    assert "of budget left" in result.stderr
    finished = S.finished_count(_study(storage, "moons-quick"))
    assert 1 <= finished < 10000
    assert time.time() - started < 120


def test_a_trial_still_running_when_the_budget_is_spent_is_pruned(uris):
    storage, _ = uris
    prepared = prepare(sweep_cfg(storage, None, "sweep.n_trials=100", "sweep.budget=3s", "training.epochs=100000",
                                 "sweep.pruner.name=none"))
    started = time.time()
    outcome = run_sweep(prepared)
    assert time.time() - started < 60  # 100000 epochs would take hours
    trials = _study(storage, "moons-quick").trials
    assert len(trials) == 1 and trials[0].state.name == "PRUNED"
    assert trials[0].user_attrs[V.TRIAL_PRUNE_REASON].startswith("sweep.budget ran out: stopped at epoch ")
    assert outcome.stop_reason == "timeout"


def test_a_sweep_without_tracking(uris):
    storage, _ = uris
    outcome = run_sweep(prepare(sweep_cfg(storage, None, "sweep.n_trials=3")))
    assert outcome.progress.finished == 3 and outcome.parent_run_id is None and outcome.registered is None
    assert len(outcome.leaderboard) == 3 and outcome.leaderboard["run_id"].isna().all()


def test_the_command_line_prints_the_leaderboard_and_how_to_look(tmp_path):
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, "-m", "sweeps.cli.sweep",
                             *cli_overrides(storage, tracking_uri, "sweep.n_trials=3")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "3/3 trials finished" in out and "rank  trial  state" in out
    assert "models:/moons-quick@champion" in out and f"mlflow ui --backend-store-uri {tracking_uri}" in out
    assert "[3/3] trial 2" in result.stderr  # one progress line per trial when stderr is not a terminal
    status = subprocess.run([sys.executable, "-c", "from sweeps.cli.sweep import status_main; status_main()",
                             *cli_overrides(storage, tracking_uri)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    assert "3 finished" in status.stdout and "orphans: none" in status.stdout
    assert not (tmp_path / "outputs" / "status").exists()


def test_names_carry_the_run_and_the_parent_shows_the_searched_space(six):
    from sweeps.tracking.model_logging import logged_model_name

    prepared, outcome, storage, tracking_uri, _, _ = six
    client = MlflowClient(tracking_uri)
    params = client.get_run(outcome.parent_run_id).data.params
    space = prepared.space.dimensions
    for name, dim in space.items():
        assert params[f"sweep.space.{name}"] == dim.describe()
    # The config keys the sweep searches show their distribution, not the base config's value.
    assert params["model.activation"] == space["activation"].describe() == "{relu, tanh}"
    assert params["training.batch_size"] == space["batch_size"].describe()
    assert params["model.hidden_layers"] == f"n_layers {space['n_layers'].describe()}; units {space['units'].describe()}"
    assert not [key for key in params if key.startswith("model.layer_") or key == "model.n_hidden_layers"]
    assert params["dataset.name"] == "moons"  # what is not searched keeps its value

    done = [t for t in _study(storage, "moons-quick").trials if t.state.name == "COMPLETE"]
    for trial in done:
        run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
        model_id = run.data.tags["model_uri"].split("models:/", 1)[1]
        assert client.get_logged_model(model_id).name == logged_model_name(run.info.run_name)
        assert logged_model_name(run.info.run_name).startswith(f"t{trial.number:03d} ")
        assert not [key for key in run.data.metrics if key.startswith("system/")]  # off by default in sweeps
    name, version = outcome.registered
    registered = client.get_model_version(name, version)
    best_name = client.get_run(registered.run_id).info.run_name
    assert registered.tags[V.TAG_VERSION_RUN_NAME] == best_name
    assert registered.description.startswith(f"{best_name}: trial ")


def test_a_trial_replays_bit_for_bit(six):
    """A sweep's trial (complete or pruned) trained again from its logged config reproduces."""
    from sweeps.cli.replay import replay

    _, outcome, storage, tracking_uri, _, _ = six
    trials = _study(storage, "moons-quick").trials
    client = MlflowClient(tracking_uri)
    for state in ("COMPLETE", "PRUNED"):
        trial = next(t for t in trials if t.state.name == state)
        run_id = trial.user_attrs[V.TRIAL_RUN_ID]
        done = replay(run_id, uri=tracking_uri)
        assert done.comparison.identical, done.comparison.first_difference
        assert done.comparison.epochs == len(client.get_metric_history(run_id, "loss/val"))
        copy = client.get_run(done.result["run_id"])
        assert copy.data.tags[V.TAG_REPLAY_OF] == run_id and copy.data.tags[V.TAG_IDENTICAL] == "true"
        assert "mlflow.parentRunId" not in copy.data.tags  # a run of its own, not a trial of the sweep
        if state == "PRUNED":
            assert done.comparison.notes and "KILLED" in done.comparison.notes[0]
