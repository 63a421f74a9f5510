"""``ann-sweep`` / ``ann-sweep-status`` as a user runs them: one-line errors, exit 2, nothing started."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import optuna
import pytest

from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.core import vocabulary as V
from sweeps.cli.leaderboard import leaderboard_table
from sweeps.cli.sweep_report import ProgressPrinter
from sweeps.study.workers import Progress
from sweeps.cli.sweep import main, status_main
from programs import program, run_in_read_only_folder
from sweep_helpers import cli_overrides


def _run(capsys, entry, argv):
    with pytest.raises(SystemExit) as caught:
        entry(argv)
    out, err = capsys.readouterr()
    return caught.value.code, out, err


def _run_to_end(capsys, entry, argv):
    """Like :func:`_run` for a command that may succeed (status 0 without SystemExit)."""
    try:
        entry(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["sweep.params.lr.low=0.5", "sweep.params.lr.high=0.1"], "sweep.params.lr.low=0.5 is not allowed"),
        (["sweep.params.units.low=64", "sweep.params.units.high=64"], "sweep.params.units.low=64 is not allowed"),
        (["sweep.params.lr.low=0", "sweep.params.lr.log=true"], "sweep.params.lr.low=0 is not allowed"),
        (["sweep.sampler.name=bayes"], "sweep.sampler.name='bayes' is not allowed"),
        (["sweep.pruner.name=patient"], "sweep.pruner.name='patient' is not allowed"),
        (["+sweep.params.width={low:1,high:2}"], "sweep.params.width="),
        (["sweep.params.width={low:1,high:2}"], "sweep.params.width is not allowed"),
        (["sweep.n_trials=0"], "sweep.n_trials=0 is not allowed"),
        (["sweep.storage=sqlite:////no/such/folder/optuna.db"], "sweep.storage='sqlite:////no/such/folder/optuna.db' cannot be opened"),
        (["sweep.storage=mongodb://localhost/x"], "sweep.storage='mongodb://localhost/x' cannot be opened"),
        (["sweep=nope"], "sweep=nope is not allowed"),
        (["sweep.metric=r2/val"], "sweep.metric='r2/val' is not allowed"),
        (["sweep.params.batch_size.choices=[16,100000]"], "sweep.params.batch_size.choices[1]=100000 is not allowed"),
        (["sweep.params.lr={choices:[0.01,0.1]}"], "sweep.params.lr cannot take that shape by merging: replace"),
        (["sweep.params.lr.foo=1"], "sweep.params.lr.foo is not allowed: expected a key of sweep.params.lr"),
        (["optimiser=adam"], "optimiser is not allowed: did you mean `optimizer`? (`ann-sweep --cfg job` shows every key)"),
        (["model.hiden_layers=[8]"], "model.hiden_layers is not allowed: did you mean `model.hidden_layers`?"),
        (["sweep.n_trail=3"], "sweep.n_trail is not allowed: did you mean `sweep.n_trials`?"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_starts_nothing(capsys, tmp_path, monkeypatch, argv, start):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, main, argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ann-sweep: error: {start}"), err
    assert sorted(os.listdir(tmp_path)) == []  # no storage, no MLflow store, no Hydra output folder


@pytest.mark.parametrize("tracking", ["tracking=off", "tracking=local"])
def test_a_read_only_working_directory_is_one_line_exit_2(tmp_path, tracking):
    result = run_in_read_only_folder(tmp_path / "read-only", [*program("ann-sweep"), tracking, "sweep=quick"])
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ann-sweep: error: cannot write 'outputs' in "), result.stderr
    assert "Read-only file system" in lines[0] and "hydra.run.dir=" in lines[0]


def test_resuming_with_another_direction_or_metric_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    from sweeps.study import optuna_study as S
    settings = sweep_settings.parse_settings({"study_name": "digits-quick", "storage": storage, "n_trials": 1})
    S.create_or_resume(settings, ST.open_storage(storage))
    base = cli_overrides(storage, None)
    code, _, err = _run(capsys, main, [*base, "sweep.study_name=digits-quick", "sweep.metric=accuracy/val"])
    assert code == 2 and "sweep.direction=maximize does not match study 'digits-quick'" in err
    code, _, err = _run(capsys, main, [*base, "sweep.study_name=digits-quick", "sweep.metric=accuracy/val",
                                       "sweep.direction=minimize"])
    assert code == 2 and "sweep.metric=accuracy/val does not match" in err
    assert sorted(os.listdir(tmp_path)) == ["optuna.db"]


def test_help_lists_the_groups():
    result = subprocess.run([sys.executable, "-m", "sweeps.cli.sweep", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    for group in ("sweep:", "dataset:", "model:", "optimizer:", "training:", "tracking:", "digits, moons, multiobjective, quick"):
        assert group in result.stdout
    assert "ann-sweep-status" in result.stdout


def test_status_of_a_missing_study_names_the_ones_there(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    from sweeps.study import optuna_study as S
    S.create_or_resume(sweep_settings.parse_settings({"study_name": "other", "storage": storage, "n_trials": 1}), ST.open_storage(storage))
    code, _, err = _run(capsys, status_main, [f"sweep.storage={storage}", "tracking=off", "sweep.study_name=mine"])
    assert code == 2 and "expected a study in" in err and "one of other" in err
    assert os.listdir(tmp_path) == ["optuna.db"]


def test_status_of_the_default_sweep_beside_a_study_of_the_former_default_says_sweep_digits(capsys, tmp_path,
                                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    from sweeps.study import optuna_study as S
    S.create_or_resume(sweep_settings.parse_settings({"study_name": "digits-mlp", "storage": storage, "n_trials": 1}),
                       ST.open_storage(storage))
    code, _, err = _run(capsys, status_main, [f"sweep.storage={storage}", "tracking=off"])  # digits-tabular
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "one of digits-mlp" in lines[0], err
    assert lines[0].endswith("are <dataset>-mlp: add sweep=digits)"), err


@pytest.mark.parametrize("storage", ["sqlite:///optuna.db", "optuna.log"])
def test_status_creates_no_storage_file(capsys, tmp_path, monkeypatch, storage):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, status_main, [f"sweep.storage={storage}", "sweep.study_name=mine"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and out == "", err
    file = storage.removeprefix("sqlite:///")
    assert lines[0] == (f"ann-sweep-status: error: sweep.storage={storage!r} holds no study: the file "
                        f"{tmp_path / file} does not exist (give the sweep.storage that ann-sweep used)")
    assert os.listdir(tmp_path) == []  # neither the storage nor the local MLflow store was created


def test_status_with_a_tracking_server_that_does_not_answer_gives_up_after_the_probe(capsys, tmp_path, monkeypatch):
    """A server that accepts connections and never answers (a real listening socket): the same
    probe as ann-train, then one line and exit 2, not minutes of retries."""
    import socket
    import time

    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    from sweeps.study import optuna_study as S
    S.create_or_resume(sweep_settings.parse_settings({"study_name": "mine", "storage": storage, "n_trials": 1}), ST.open_storage(storage))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, out, err = _run(capsys, status_main, [f"sweep.storage={storage}", "sweep.study_name=mine",
                                                    f"tracking.uri={uri}", "tracking.probe_timeout=2"])
        seconds = time.monotonic() - started
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and out == "", err
    assert lines[0].startswith(f"ann-sweep-status: error: tracking.uri='{uri}' cannot be used: no answer within 2 s")
    assert seconds < 30


def test_leaderboard_table_of_no_trials():
    assert leaderboard_table(None, ["loss/val"]) == "(no trials)"


def test_the_compare_link_opens_the_sweeps_view_of_its_trials_best_first(tmp_path):
    """The printed link opens the saved view of the parent's trials, sorted by the objective in
    the sweep's direction (a real SQLite tracking store; the browser tests open it in Chromium)."""
    from urllib.parse import parse_qs, urlparse

    from mlflow import MlflowClient

    from sweeps.tracking import links, ui_views
    from sweeps.cli.sweep_report import trials_url

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("views")
    parent = client.create_run(experiment_id, tags={"sweep.direction": "maximize"}, run_name="sweep s").info.run_id
    ui_views.ensure_run_view(client, experiment_id, "multiclass", parent)

    url = trials_url(uri, experiment_id, parent)
    assert url.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?")
    query = parse_qs(urlparse(url.split("#", 1)[1]).query)
    assert query[links.VIEW_URL_PARAM] == [ui_views.trials_view_id(parent)]
    assert query["compareRunsMode"] == ["CHART"]
    assert "searchFilter" not in query and "orderByKey" not in query  # the UI would ignore the view
    tag = client.get_experiment(experiment_id).tags[V.VIEW_TAG_PREFIX + ui_views.trials_view_id(parent)]
    _, state = ui_views.decode_view(tag)
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{parent}'"
    assert state["orderByKey"] == "metrics.`sweep/objective`" and state["orderByAsc"] is False


@pytest.mark.slow
def test_resuming_with_another_search_space_is_refused_unless_allowed(capsys, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    base = [*cli_overrides(storage, tracking_uri), "sweep.study_name=space", "sweep.params.lr.low=1e-3",
            "sweep.params.lr.high=0.1"]
    code, _, err = _run_to_end(capsys, main, [*base, "sweep.n_trials=1"])
    assert code == 0, err
    changed = [*base, "sweep.params.lr.low=0.01", "sweep.n_trials=2"]
    code, out, err = _run_to_end(capsys, main, changed)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == ("ann-sweep: error: sweep.params differ from the search space of study 'space' "
                        "(lr: float [0.001, 0.1] log -> float [0.01, 0.1] log): resume with the same sweep.params, "
                        "choose a new sweep.study_name, or accept the change with sweep.allow_space_change=true")
    import optuna

    assert len(optuna.load_study(study_name="space", storage=storage).trials) == 1  # nothing ran

    code, out, err = _run_to_end(capsys, main, [*changed, "sweep.allow_space_change=true"])
    assert code == 0, err
    assert "search space changed (sweep.allow_space_change=true" in out and "lr: float [0.001, 0.1] log -> float [0.01, 0.1] log" in out
    loaded = optuna.load_study(study_name="space", storage=storage)
    assert [c["change"] for c in loaded.user_attrs["sweep.space_changes"]] == ["lr: float [0.001, 0.1] log -> float [0.01, 0.1] log"]
    parent = MlflowClient(tracking_uri).get_run(loaded.user_attrs[V.ATTR_PARENT_RUN])
    assert parent.data.tags["sweep.space_changed"] == "lr: float [0.001, 0.1] log -> float [0.01, 0.1] log"


def test_a_new_tracking_store_is_created_without_mlflow_info_lines(tmp_path):
    # MLflow logs "Creating initial MLflow database tables..." at INFO when it makes a store;
    # ann-sweep sets its level before anything imports MLflow, so the terminal shows none.
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_LOGGING_LEVEL"}
    result = subprocess.run([*program("ann-sweep"), "sweep=quick", "dataset=moons", "sweep.n_trials=1",
                             "training.epochs=2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlflow.db").exists()  # the store was created by this run
    assert " INFO " not in result.stderr, result.stderr


def test_a_csv_sweep_says_what_became_of_its_text_columns_and_empty_cells(tmp_path):
    cells = [(i % 7, "" if i % 5 == 0 else f"{i / 3:.2f}", ["red", "blue", "green"][i % 3], i % 2) for i in range(120)]
    (tmp_path / "data.csv").write_text("n,x,colour,label\n" + "".join("%s,%s,%s,%s\n" % row for row in cells))
    result = subprocess.run([*program("ann-sweep"), "sweep=quick", "dataset=csv", "dataset.path=data.csv",
                             "dataset.target=label", "sweep.n_trials=1", "training.epochs=2", "tracking=off"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert ("dataset data: 3 columns -> 6 features: empty cells filled with the median and marked in "
            "<name>_missing (x); one-hot (colour 3)") in result.stdout, result.stdout


def test_a_pruned_trials_progress_line_says_its_value_once():
    """One line per trial off a terminal: the pruner's reason without the value the line already shows."""
    reason = "successive_halving pruner stopped it at epoch 6 (loss/val=1.821)"
    pruned = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, value=1.821, intermediate_values={6: 1.821},
                                       user_attrs={V.TRIAL_PRUNE_REASON: reason})
    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                       user_attrs={V.TRIAL_FAIL_REASON: "loss/val is not finite (nan) at epoch 3"})
    stream = io.StringIO()
    printer = ProgressPrinter(40, 0, "loss/val", stream=stream)
    for number, trial in enumerate((pruned, failed), start=1):
        trial.number = number
        printer(Progress(target=40, finished=number, pruned=1, failed=number - 1, best_value=1.548, best_trial=0,
                         last=trial))
    first, second = stream.getvalue().splitlines()
    assert first == ("[1/40] trial 1 pruned loss/val=1.821 (successive_halving pruner stopped it at epoch 6); "
                     "pruned 1, failed 0, best loss/val=1.548 (t0)")
    assert second.startswith("[2/40] trial 2 fail (loss/val is not finite (nan) at epoch 3);"), second
