"""``ann-train`` as a user runs it: one-line errors with exit status 2, signals, real runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow import MlflowClient

from sweeps.cli.train import main
from programs import program, run_in_read_only_folder
from train_helpers import FAST, all_runs, history


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """Run ``ann-train`` in this process from ``tmp_path``; returns (status, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # main(argv) replaces sys.argv
    for name, value in (("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"), ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
                        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")):
        monkeypatch.setenv(name, value)  # what main() would set, restored after the test

    def run(*argv: str):
        monkeypatch.setenv("HYDRA_FULL_ERROR", "")  # main() sets it; restored after the test
        try:
            main(list(argv))
            status = 0
        except SystemExit as exit_:
            status = exit_.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ann-train: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("argv,fragments", [
    (["optimizer=adamx"], ["optimizer=adamx is not allowed: did you mean `optimizer=adam`? "
                           "(expected one of adam, adamw, momentum, nesterov, rmsprop, sgd)"]),
    (["optimizer=lbfgs"], ["optimizer=lbfgs is not allowed: expected one of adam, adamw, momentum, nesterov, rmsprop, sgd"]),
    # Misspellings get the key they meant, not a `+key=` hint that leads to another error.
    (["optimiser=adam"], ["optimiser is not allowed: did you mean `optimizer`? (`ann-train --cfg job` shows every key)"]),
    (["model.hiden_layers=[8]"], ["model.hiden_layers is not allowed: did you mean `model.hidden_layers`?"]),
    (["modl.hidden_layers=[8]"], ["did you mean `model.hidden_layers`?"]),
    (["dataset.pth=a.csv"], ["did you mean `dataset.path`?"]),  # a key of another option of the group
    (["tracking.experiment_nam=x"], ["did you mean `tracking.experiment_name`?"]),
    (["optimizer=adam", "+optimizer.weight_decay=0.1"],
     ["optimizer.weight_decay=0.1 is not allowed: expected a setting of optimizer 'adam'", "(weight_decay is a setting of sgd, momentum, nesterov, adamw)"]),
    (["optimizer=adamw", "optimizer.weight_decay=-1"], ["optimizer.weight_decay=-1 is not allowed: expected a finite number >= 0"]),
    (["training.clip_norm=0"], ["training.clip_norm=0 is not allowed: expected a finite number > 0"]),
    (["training.schedule.name=cosinus"], ["training.schedule.name='cosinus' is not allowed: expected one of 'constant', 'step'"]),
    (["training.schedule.name=cosine", "training.schedule.warmup_epochs=80"],
     ["training.schedule.warmup_epochs=80 is not allowed: expected an integer in [0, 50) (fewer than epochs=50)"]),
    (["training.schedule.gamma=1.5"], ["training.schedule.gamma=1.5 is not allowed: expected a finite number in (0, 1]"]),
    (["dataset=imagenet"], ["dataset=imagenet is not allowed: expected one of", "moons"]),
    (["optimizer.lr=-0.01"], ["optimizer.lr=-0.01 is not allowed: expected a finite number > 0"]),
    (["training.batch_size=0"], ["training.batch_size=0 is not allowed: expected an integer >= 1"]),
    (["model.hidden_layers=[64,0]"], ["model.hidden_layers[1]=0 is not allowed: expected an integer in [1, 65536]"]),
    (["model.activation=swishy"], ["model.activation='swishy' is not allowed: expected one of", "'relu'"]),
    (["tracking.system_metrics=maybe"], ["tracking.system_metrics='maybe' is not allowed: expected true or false"]),
    (["tracking.system_metrics_interval=0"], ["tracking.system_metrics_interval=0 is not allowed: expected a number of seconds in (0, 3600]"]),
    (["model.units=3"], ["model.units is not allowed: expected a key of model", "+model.units="]),
    (["model.hidden_layers=[64"], ["cannot parse the command line"]),
    (["dataset=csv"], ["dataset.path is missing", "dataset.path=data.csv"]),
    (["dataset=csv", "dataset.path=nowhere.csv", "dataset.target=label"], ["dataset.path=", "nowhere.csv", "CSV file not found"]),
    (["dataset=mnist"], ["dataset.path is missing", "dataset.path=data/mnist"]),
])
def test_mistakes_exit_2_with_one_line_and_create_nothing(run_cli, tmp_path, argv, fragments):
    status, out, err = run_cli(*argv, "tracking.uri=sqlite:///mlflow.db")
    assert_one_line_error(status, err, *fragments)
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("content,options,fragments", [
    ("a,b,label\n1,2,0\n,3,1\n4,5,0\n6,7,1\n", ["dataset.missing=error"],
     ["dataset.path=", "missing or empty cells", "'a'"]),
    ("a,b,label\n1,2,0\n2,3,\n4,5,0\n6,7,1\n", [], ["dataset.path=", "missing or empty cells", "'label' (1)"]),
    ("a,b,label\n1,x,0\n2,3,1\n4,5,0\n6,7,1\n", ["dataset.categorical=error"],
     ["dataset.path=", "feature column 'b'", "not numeric"]),
    ("a,b,label\n1,2,0\n2,3,1\n", ["dataset.missing=drop"], ["dataset.missing='drop'", "'impute', 'error'"]),
    ("a,b,label\n1,2,yes\n2,3,yes\n4,5,yes\n", [], ["dataset.target='label'", "single class"]),
    ("a,b,label\n", [], ["dataset.path=", "has no data rows (only its header: a, b, label)"]),
])
def test_bad_csv_files(run_cli, tmp_path, content, options, fragments):
    path = write(tmp_path / "data.csv", content)
    status, out, err = run_cli("dataset=csv", f"dataset.path={path}", "dataset.target=label", *options,
                               "tracking.uri=sqlite:///mlflow.db")
    assert_one_line_error(status, err, *fragments)
    assert not (tmp_path / "mlflow.db").exists()
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]  # no Hydra output folder either


@pytest.mark.parametrize("tracking", ["tracking=off", "tracking=local"])
def test_a_read_only_working_directory_is_one_line_exit_2(tmp_path, tracking):
    result = run_in_read_only_folder(tmp_path / "read-only", [*program("ann-train"), tracking, "training.epochs=1"])
    assert_one_line_error(result.returncode, result.stderr, "cannot write 'outputs' in ", "Read-only file system",
                          "hydra.run.dir=")
    assert result.stdout == ""


def test_csv_run(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "pos", "neg")
    lines = ["f1,f2,f3,label"] + [f"{a},{b},{c},{d}" for (a, b, c), d in zip(X, label)]
    path = write(tmp_path / "data.csv", "\n".join(lines) + "\n")
    status, out, err = run_cli("dataset=csv", f"dataset.path={path}", "dataset.target=label",
                               "training.epochs=3", "tracking=off")
    assert status == 0, err
    assert "fit: " in out and "test: loss=" in out


def test_mnist_folder_without_idx_files(run_cli, tmp_path):
    (tmp_path / "mnist").mkdir()
    status, out, err = run_cli("dataset=mnist", f"dataset.path={tmp_path / 'mnist'}", "tracking=off")
    assert_one_line_error(status, err, "dataset.path=", "train-images-idx3-ubyte")


def test_mnist_folder_with_idx_files_trains(run_cli, tmp_path, sqlite_uri, global_tracking_uri):
    import mlflow
    import pandas as pd

    import ann
    from ann.data import write_idx

    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 120), ("t10k", 40)):
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    status, out, err = run_cli("dataset=mnist", f"dataset.path={folder}", "training.epochs=2",
                               "model.hidden_layers=[16]", f"tracking.uri={sqlite_uri}")
    assert status == 0, err
    (run,) = all_runs(MlflowClient(sqlite_uri))
    assert run.data.params["dataset.n_test"] == "40"  # the t10k files are the test set
    assert run.data.params["dataset.n_features"] == "784"
    # 784 inputs get a tensor signature; a DataFrame of pixels still works.
    global_tracking_uri(sqlite_uri)
    model_uri = run.data.tags["model_uri"]
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    assert pyfunc.metadata.get_input_schema().is_tensor_spec()
    local = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "model"))
    engine = ann.MLP.load(f"{local}/artifacts/network/model")
    X = rng.uniform(0, 1, size=(7, 784))
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(pd.DataFrame(X))), engine.predict(X))


def test_unreachable_tracking_server_exits_2_within_10_seconds(run_cli):
    started = time.monotonic()
    status, out, err = run_cli("tracking=server", "tracking.uri=http://127.0.0.1:9")
    assert time.monotonic() - started < 10
    assert_one_line_error(status, err, "tracking.uri='http://127.0.0.1:9' cannot be used", "mlflow server")


def test_successful_run_prints_a_summary_with_links(run_cli, tmp_path):
    status, out, err = run_cli(*FAST, "tracking.uri=sqlite:///mlflow.db")
    assert status == 0, err
    assert (tmp_path / "mlflow.db").exists()
    assert "fit: " in out and "run: " in out and "model: models:/" in out
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out
    assert "workflowType=machine_learning" in out
    (run,) = all_runs(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"))
    assert run.info.status == "FINISHED"
    assert run.data.tags["command"].startswith("ann-train ")


# ----------------------------------------------------------------- the real console script


def _start(tmp_path, *argv, **extra_env):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "HYDRA_"))}
    env.update(extra_env)
    return subprocess.Popen([*program("ann-train"), *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


LONG_RUN = ["dataset=moons", "dataset.n_samples=4000", "model.hidden_layers=[64,64]",
            "training.batch_size=4", "training.epochs=10000"]


@pytest.mark.slow
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_marks_the_run_killed_and_curves_show_while_running(tmp_path, signum, status):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # create the store first (two processes must not race to create its tables)
    process = _start(tmp_path, *LONG_RUN, f"tracking.uri={uri}")
    try:
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if process.poll() is not None:
                pytest.fail(f"ann-train ended early: {process.communicate()}")
            runs = all_runs(MlflowClient(uri))
            if runs and len(history(MlflowClient(uri), runs[0].info.run_id, "loss/train")) >= 2:
                run = runs[0]
                break
        assert run is not None, "no curves appeared while the run was running"
        assert run.info.status == "RUNNING"
        # The default flush interval (2 s) puts curves in the UI within seconds of an epoch.
        first = min(m.timestamp for m in MlflowClient(uri).get_metric_history(run.info.run_id, "loss/train"))
        assert first - run.info.start_time < 15_000
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status, err
    assert "Traceback" not in err
    killed = MlflowClient(uri).get_run(run.info.run_id)
    assert killed.info.status == "KILLED"
    assert len(history(MlflowClient(uri), run.info.run_id, "loss/train")) >= 2


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path):
    process = _start(tmp_path, *FAST, "tracking.uri=sqlite:///mlflow.db")
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert "fit: " in out
    (run,) = all_runs(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"))
    assert run.info.status == "FINISHED"
    bad = _start(tmp_path, "optimizer.lr=-1")
    out, err = bad.communicate(timeout=120)
    assert bad.returncode == 2
    assert err.strip() == "ann-train: error: optimizer.lr=-1 is not allowed: expected a finite number > 0"


@pytest.mark.slow
def test_server_that_goes_away_during_a_run_fails_it_in_seconds(tmp_path):
    """Not the client's minutes of retries: one line on stderr and exit 1 within a minute."""
    from services import MlflowServer

    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path)
    process = None
    try:
        server.start(timeout=120)
        process = _start(tmp_path, *LONG_RUN, f"tracking.uri={server.uri}", "tracking.flush_interval=0.5")
        client = MlflowClient(server.uri)
        deadline = time.monotonic() + 90
        while not all_runs(client) or not history(client, all_runs(client)[0].info.run_id, "loss/train"):
            assert time.monotonic() < deadline and process.poll() is None, "the run did not start"
            time.sleep(0.5)
        server.stop()
        gone = time.monotonic()
        out, err = process.communicate(timeout=120)
        assert time.monotonic() - gone < 60
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        server.stop()
    assert process.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("ann-train: error: ")]
    assert len(errors) == 1 and "tracking failed during the run" in errors[0]
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_terminal_shows_each_fact_once_and_no_mlflow_info_unless_asked(tmp_path):
    (tmp_path / "quiet").mkdir()
    process = _start(tmp_path / "quiet", *FAST, "tracking.uri=sqlite:///mlflow.db")
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert "INFO mlflow" not in err and "Creating initial MLflow database tables" not in out + err
    terminal = (out + err).splitlines()
    assert len([line for line in terminal if "fit: " in line]) == 1, out + err
    assert not [line for line in terminal if "view the run at" in line]  # the summary's `run:` line says it
    (log_file,) = (tmp_path / "quiet" / "outputs").glob("*/*/ann-train.log")
    assert "fit: " in log_file.read_text() and "view the run at" in log_file.read_text()  # the log keeps them
    (tmp_path / "asked").mkdir()
    process = _start(tmp_path / "asked", *FAST, "tracking.uri=sqlite:///mlflow.db", MLFLOW_LOGGING_LEVEL="INFO")
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert "INFO mlflow." in err  # e.g. mlflow.pyfunc's input example check (a new store is copied, not migrated)
