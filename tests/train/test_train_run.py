"""Tracked training runs against a real SQLite store: what a user looks for in MLflow."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

import ann
from ann.data import TableEncoding, load_dataset, split_dataset
from sweeps.core.errors import ConfigError, TrackingError
from sweeps.training.run import RunEnd, StopRun, train
from train_helpers import all_runs, history, make_cfg

CLASSIFICATION_METRICS = ["loss/train", "loss/val", "accuracy/train", "accuracy/val"]


@pytest.fixture
def finished(sqlite_uri):
    """One small finished run: (client, result)."""
    result = train(make_cfg(sqlite_uri, "model.hidden_layers=[8,4]", "optimizer=momentum", "optimizer.lr=0.05"),
                   overrides=["model.hidden_layers=[8,4]", "optimizer=momentum"])
    return MlflowClient(sqlite_uri), result


def test_run_finishes_with_params_a_user_can_read(finished):
    client, result = finished
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.n_hidden_layers"] == "2"
    assert params["model.layer_1_units"] == "8" and params["model.layer_2_units"] == "4"
    assert params["model.activation"] == "relu"
    assert params["model.output_activation"] == "sigmoid"  # chosen from the task
    assert params["optimizer.name"] == "momentum"
    assert params["optimizer.lr"] == "0.05"
    assert params["optimizer.momentum"] == "0.9"
    assert params["training.batch_size"] == "32"
    assert params["training.seed"] == "0"
    assert params["dataset.name"] == "moons"
    assert params["dataset.task"] == "binary"
    assert int(params["dataset.n_train"]) + int(params["dataset.n_val"]) + int(params["dataset.n_test"]) == 200


def test_per_epoch_histories_have_one_value_per_epoch(finished):
    client, result = finished
    run_id = result["run_id"]
    for key in CLASSIFICATION_METRICS + ["time/epoch_seconds"]:
        assert [step for step, _ in history(client, run_id, key)] == [1, 2, 3, 4], key


def test_final_metrics_and_fit_tags(finished):
    client, result = finished
    run = client.get_run(result["run_id"])
    metrics, tags = run.data.metrics, run.data.tags
    for key in ("loss/test", "accuracy/test", "epochs_run", "best_epoch", "n_parameters",
                "time/fit_seconds", "best/loss/val", "best/accuracy/val", "fit/gap", "fit/constant_loss"):
        assert key in metrics, key
    assert metrics["epochs_run"] == 4
    assert metrics["n_parameters"] == 2 * 8 + 8 + 8 * 4 + 4 + 4 + 1
    assert 1 <= metrics["best_epoch"] <= 4
    assert tags["fit"] in ("good", "overfit", "underfit", "diverged")
    assert tags["fit"] == result["fit"] and tags["fit_reason"]
    assert metrics["loss/test"] == pytest.approx(result["loss/test"])
    # The description on the run's page: the verdict first, then the facts behind it.
    description = tags["mlflow.note.content"]
    assert description.startswith(f"**fit: {tags['fit']}**: {tags['fit_reason']}")
    assert "of 4" in description and "test loss" in description and "accuracy" in description


def test_reproducibility_tags(finished):
    client, result = finished
    tags = client.get_run(result["run_id"]).data.tags
    assert tags["seed"] == "0"
    assert tags["versions.numpy"] == np.__version__
    assert tags["versions.mlflow"] == mlflow.__version__
    assert tags["versions.python"]
    assert "command" in tags
    assert tags["dataset"] == "moons" and tags["task"] == "binary"
    assert len(tags["git.commit"]) == 40  # the tests run from a checkout
    assert tags["mlflow.source.git.commit"] == tags["git.commit"]
    assert tags["blas_threads"] == "1"  # a network this small trains on one BLAS thread (training.threads=auto)


def test_experiment_is_a_model_training_experiment(finished):
    client, result = finished
    experiment = client.get_experiment(result["experiment_id"])
    assert experiment.name == "ann"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # The printed link opens the experiment's saved view: loss/train vs loss/val first (sweeps.tracking.ui_views).
    assert result["experiment_url"].endswith(
        "/runs?viewStateShareKey=learning-curves&workflowType=machine_learning&compareRunsMode=CHART")
    assert "mlflow.sharedViewState.learning-curves" in experiment.tags


def test_artifacts_config_overrides_and_learning_curve(finished, tmp_path):
    client, result = finished
    run_id = result["run_id"]
    names = {f.path for f in client.list_artifacts(run_id)} | {
        f.path for d in ("config", "plots") for f in client.list_artifacts(run_id, d)
    }
    assert {"config/config.yaml", "config/overrides.yaml", "plots/learning_curve.png"} <= names
    local = client.download_artifacts(run_id, "", str(tmp_path))
    config = yaml.safe_load(open(f"{local}/config/config.yaml"))
    assert config["model"]["hidden_layers"] == [8, 4]
    assert config["optimizer"]["name"] == "momentum"
    assert yaml.safe_load(open(f"{local}/config/overrides.yaml")) == ["model.hidden_layers=[8,4]", "optimizer=momentum"]
    image = mpimg.imread(f"{local}/plots/learning_curve.png")
    assert image.ndim == 3 and image.shape[1] > 800


def test_pyfunc_model_predicts_like_the_engine(finished, tmp_path, global_tracking_uri, sqlite_uri):
    client, result = finished
    global_tracking_uri(sqlite_uri)
    model_uri = result["model_uri"]
    assert model_uri.startswith("models:/")
    assert client.get_run(result["run_id"]).data.tags["model_uri"] == model_uri
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    signature = pyfunc.metadata.get_input_schema()
    assert signature.input_names() == ["x1", "x2"]
    # The run's final scores are the logged model's too: its page in the UI shows them.
    scores = {m.key: m.value for m in client.get_logged_model(pyfunc.metadata.model_id).metrics}
    run_metrics = client.get_run(result["run_id"]).data.metrics
    assert scores["accuracy/test"] == run_metrics["accuracy/test"] and "loss/test" in scores
    assert pyfunc.metadata.get_params_schema().to_dict()[0]["name"] == "output"

    local = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "model"))
    engine = ann.MLP.load(f"{local}/artifacts/network/model")  # the engine's own .npz + .json
    X = np.random.default_rng(1).normal(size=(50, 2))
    frame = pd.DataFrame(X, columns=["x1", "x2"])
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(frame)), engine.predict(X))
    proba = pyfunc.predict(frame, params={"output": "proba"})
    np.testing.assert_allclose(proba.to_numpy(), engine.predict_proba(X))
    # The run's URI form works too (the logged model carries the run's name), and the input example is stored.
    from sweeps.tracking.model_logging import logged_model_name

    name = logged_model_name(client.get_run(result["run_id"]).info.run_name)
    again = mlflow.pyfunc.load_model(f"runs:/{result['run_id']}/{name}")
    np.testing.assert_array_equal(np.asarray(again.predict(frame)), engine.predict(X))
    example = json.load(open(f"{local}/input_example.json"))
    assert example["columns"] == ["x1", "x2"]


def test_a_csv_model_takes_the_files_raw_columns_and_predicts_its_label_names(
        sqlite_uri, global_tracking_uri, tmp_path):
    """A CSV with empty cells, integers and text: its model's signature and example are the
    file's own columns, and it predicts from ``pd.read_csv`` as the engine predicts from the
    encoded data set (rows it never saw, with values it never saw, an integer column read as
    floats because a cell is empty: all taken); its labels are the names the file gave the classes."""
    rng = np.random.default_rng(0)
    n = 160
    age = rng.integers(18, 80, n)
    income = np.where(rng.random(n) < 0.2, np.nan, rng.normal(50, 10, n).round(2))
    job = rng.choice(["clerk", "nurse", "pilot", ""], n)
    label = np.where((age > 45) ^ (job == "pilot"), "yes", "no")
    frame = pd.DataFrame({"age": age, "income": income, "job": job, "label": label})
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    result = train(make_cfg(sqlite_uri, "dataset=csv", f"dataset.path={path}", "dataset.target=label",
                            "training.epochs=3", "model.hidden_layers=[8]", fast=False))
    global_tracking_uri(sqlite_uri)
    pyfunc = mlflow.pyfunc.load_model(result["model_uri"])
    assert MlflowClient(sqlite_uri).get_run(result["run_id"]).data.params["dataset.encoding"] == data_summary(path)
    inputs = pyfunc.metadata.get_input_schema().to_dict()
    assert [c["name"] for c in inputs] == ["age", "income", "job"]
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "model"))
    example = json.load(open(f"{local}/input_example.json"))
    assert example["columns"] == ["age", "income", "job"]
    rows = example["data"]  # as the file held them: whole numbers, text (an empty cell: NaN)
    assert all(isinstance(row[0], int) for row in rows) and any(isinstance(row[2], str) for row in rows)

    engine = ann.load(f"{local}/artifacts/network/model")
    data = load_dataset("csv", path=str(path), target="label")
    encoding = TableEncoding.from_dict(json.load(open(f"{local}/artifacts/network/features.json"))["encoding"])
    assert encoding.feature_names == data.feature_names  # the file's, with the training rows' medians
    raw = pd.read_csv(path).drop(columns="label")
    labels = np.asarray(pyfunc.predict(raw))
    assert set(labels) <= {"no", "yes"}
    np.testing.assert_array_equal(labels, np.asarray(data.class_names)[engine.predict(encoding.transform(raw))])
    new = pd.DataFrame({"job": ["pilot", "astronaut", None], "age": [30.0, 60.0, np.nan], "income": [40, 70, 55]})
    proba = pyfunc.predict(new, params={"output": "proba"})
    np.testing.assert_allclose(proba.to_numpy(), engine.predict_proba(encoding.transform(new)))


def data_summary(path) -> str:
    return load_dataset("csv", path=str(path), target="label").encoding.summary()


def test_the_model_pins_this_processs_versions_without_mlflows_slow_check(tmp_path, monkeypatch):
    """The requirements name the running mlflow, numpy and pandas, so MLflow's mismatch check
    (a scan of every installed distribution, 1.2-1.7 s a process) is skipped while saving, and
    put back after."""
    import mlflow.utils.environment as environment
    from sweeps.tracking.model_logging import save_pyfunc_model

    checked = []
    check = lambda requirements: checked.append(requirements)  # noqa: E731
    monkeypatch.setattr(environment, "warn_dependency_requirement_mismatches", check)
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = ann.MLP(hidden_layers=[3], epochs=2)
    model.fit(X, (X[:, 0] > 0).astype(int))
    path = save_pyfunc_model(tmp_path / "model", model, ["x1", "x2"], None, X)
    assert checked == [] and environment.warn_dependency_requirement_mismatches is check
    pinned = (path / "requirements.txt").read_text().split()
    for package in (mlflow, np, pd):
        assert f"{package.__name__}=={package.__version__}" in pinned


def test_regression_run_logs_mae_rmse_r2_and_predicts_values(sqlite_uri, global_tracking_uri, tmp_path):
    result = train(make_cfg(sqlite_uri, "dataset=regression", "dataset.n_samples=150"))
    client = MlflowClient(sqlite_uri)
    run_id = result["run_id"]
    for key in ("loss/train", "loss/val", "mae/train", "mae/val", "rmse/train", "rmse/val", "r2/train", "r2/val"):
        assert len(history(client, run_id, key)) == 4, key
    metrics = client.get_run(run_id).data.metrics
    assert {"mae/test", "rmse/test", "r2/test", "loss/test"} <= set(metrics)
    assert client.get_run(run_id).data.params["model.output_activation"] == "linear"
    global_tracking_uri(sqlite_uri)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "model"))
    engine = ann.MLP.load(f"{local}/artifacts/network/model")
    X = np.linspace(-2, 2, 20).reshape(-1, 1)
    predictions = mlflow.pyfunc.load_model(result["model_uri"]).predict(pd.DataFrame(X, columns=["x1"]))
    np.testing.assert_allclose(np.asarray(predictions, dtype=float), engine.predict(X))


def test_an_ensemble_run_scores_and_logs_the_averaged_networks(sqlite_uri, global_tracking_uri, tmp_path):
    """training.ensemble=3: the run's curves are the first network's (seeded as a single run);
    its test scores, logged model and pyfunc predictions are the three networks averaged."""
    single = train(make_cfg(sqlite_uri, "dataset=regression", "dataset.n_samples=150"))
    result = train(make_cfg(sqlite_uri, "dataset=regression", "dataset.n_samples=150", "training.ensemble=3"))
    client = MlflowClient(sqlite_uri)
    assert history(client, result["run_id"], "loss/val") == history(client, single["run_id"], "loss/val")
    metrics = client.get_run(result["run_id"]).data.metrics
    assert metrics["ensemble/members"] == 3 and client.get_run(result["run_id"]).data.params["training.ensemble"] == "3"
    assert metrics["ensemble/first/r2"] == pytest.approx(single["r2/test"])
    assert metrics["n_parameters"] == 3 * single["n_parameters"]
    note = client.get_run(result["run_id"]).data.tags["mlflow.note.content"]
    assert f"3 networks averaged (the first alone: loss {metrics['ensemble/first/loss']:.4g}, " in note
    global_tracking_uri(sqlite_uri)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "model"))
    engine = ann.load(f"{local}/artifacts/network/model")
    assert isinstance(engine, ann.Ensemble) and [m.seed for m in engine.members] == [0, 1, 2]
    data = load_dataset("regression", n_samples=150)
    split = split_dataset(data, val_size=0.15, test_size=0.15, seed=0)
    assert engine.evaluate(split.X_test, split.y_test)["r2"] == pytest.approx(metrics["r2/test"])
    assert metrics["r2/test"] != pytest.approx(metrics["ensemble/first/r2"])
    X = np.linspace(-2, 2, 20).reshape(-1, 1)
    predictions = mlflow.pyfunc.load_model(result["model_uri"]).predict(pd.DataFrame(X, columns=["x1"]))
    np.testing.assert_allclose(np.asarray(predictions, dtype=float),
                               np.mean([member.predict(X) for member in engine.members], axis=0), rtol=1e-6)


def test_training_ensemble_takes_1_to_20_networks(sqlite_uri):
    for bad in (0, 21, "two", True):
        with pytest.raises(ConfigError, match=r"training.ensemble=.* is not allowed: expected an integer in \[1, 20\]"):
            train(make_cfg(sqlite_uri, f"training.ensemble={str(bad).lower() if bad is True else bad}"))
    assert not all_runs(MlflowClient(sqlite_uri))  # refused before any run existed


def test_same_config_and_seed_give_identical_metrics(sqlite_uri):
    first = train(make_cfg(sqlite_uri, "model.dropout=0.2"))
    second = train(make_cfg(sqlite_uri, "model.dropout=0.2"))
    client = MlflowClient(sqlite_uri)
    one, two = client.get_run(first["run_id"]).data.metrics, client.get_run(second["run_id"]).data.metrics
    keys = [key for key in one if not key.startswith(("time/", "system/"))]  # wall time, the machine's load
    assert sorted(keys) == sorted(key for key in two if not key.startswith(("time/", "system/")))
    assert {key: one[key] for key in keys} == {key: two[key] for key in keys}
    for key in CLASSIFICATION_METRICS:
        assert history(client, first["run_id"], key) == history(client, second["run_id"], key)
    other = train(make_cfg(sqlite_uri, "model.dropout=0.2", "training.seed=1"))
    assert history(client, other["run_id"], "loss/train") != history(client, first["run_id"], "loss/train")


def test_child_run_of_a_parent(sqlite_uri):
    client = MlflowClient(sqlite_uri)
    from sweeps.tracking.client import get_or_create_experiment

    parent = client.create_run(get_or_create_experiment(client, "ann"), run_name="sweep")
    result = train(make_cfg(sqlite_uri, "tracking.log_model=false"), parent_run_id=parent.info.run_id,
                   run_name="trial-0", tags={"trial": "0"})
    run = client.get_run(result["run_id"])
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.info.run_name == "trial-0" and run.data.tags["trial"] == "0"
    assert result["model_uri"] is None
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"  # the parent is the caller's


def test_callbacks_see_every_epoch_after_it_was_logged(sqlite_uri):
    seen = []
    train(make_cfg(sqlite_uri, "tracking.log_model=false"), callbacks=[lambda epoch, logs: seen.append((epoch, dict(logs)))])
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= set(seen[0][1])


def test_error_in_a_callback_marks_the_run_failed(sqlite_uri):
    def explode(epoch, logs):
        if epoch == 2:
            raise RuntimeError("the pruner's database went away")

    with pytest.raises(RuntimeError):
        train(make_cfg(sqlite_uri), callbacks=[explode])
    (run,) = all_runs(MlflowClient(sqlite_uri))
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: the pruner's database went away"
    assert [step for step, _ in history(MlflowClient(sqlite_uri), run.info.run_id, "loss/train")] == [1, 2]


def test_interrupt_marks_the_run_killed(sqlite_uri):
    def interrupt(epoch, logs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(sqlite_uri), callbacks=[interrupt])
    (run,) = all_runs(MlflowClient(sqlite_uri))
    assert run.info.status == "KILLED"


def test_a_callback_stops_the_run_with_its_status_and_tags(sqlite_uri):
    """The generic stop signal (a sweep's pruner uses it): the run ends with the status and
    tags the callback chose, holding every epoch trained, and the signal reaches the caller."""
    def prune(epoch, logs):
        if epoch == 3:
            raise StopRun("stopped at 3", RunEnd("KILLED", {"pruned": "true"}), epoch)

    with pytest.raises(StopRun, match="stopped at 3"):
        train(make_cfg(sqlite_uri), callbacks=[prune])
    (run,) = all_runs(MlflowClient(sqlite_uri))
    assert run.info.status == "KILLED"
    assert run.data.tags["pruned"] == "true"
    assert len(history(MlflowClient(sqlite_uri), run.info.run_id, "loss/val")) == 3


def test_the_result_hook_sets_the_runs_end(sqlite_uri):
    """``on_result`` sees the run's own result (curves included) and its RunEnd is written with the last batch."""
    seen = {}

    def decide(result):
        seen.update(result)
        return RunEnd("KILLED", {"sweep.state": "PRUNED"}, {"sweep/objective": 1.5})

    result = train(make_cfg(sqlite_uri), on_result=decide)
    run = MlflowClient(sqlite_uri).get_run(result["run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["sweep.state"] == "PRUNED" and run.data.metrics["sweep/objective"] == 1.5
    assert len(seen["curves"]["val_loss"]) == int(seen["epochs_run"])


def test_divergence_is_diagnosed_and_the_run_finishes(sqlite_uri):
    result = train(make_cfg(sqlite_uri, "optimizer=sgd", "optimizer.lr=1e6"))
    run = MlflowClient(sqlite_uri).get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["fit"] == "diverged"
    assert "non-finite" in run.data.tags["stop_reason"]
    assert result["model_uri"] is None  # no model with NaN weights


def test_tracking_off_trains_without_mlflow():
    result = train(make_cfg(None))
    assert result["run_id"] is None
    assert result["fit"] in ("good", "overfit", "underfit", "diverged")
    assert "accuracy/test" in result


@pytest.mark.parametrize("overrides,error,message", [
    (["optimizer.lr=-0.1"], ConfigError, "optimizer.lr=-0.1 is not allowed"),
    (["training.batch_size=0"], ConfigError, "training.batch_size=0 is not allowed"),
    (["training.batch_size=1000"], ConfigError, "training.batch_size=1000 is not allowed: expected an integer in [1, 140]"),
    (["model.hidden_layers=[0]"], ConfigError, "model.hidden_layers[0]=0 is not allowed"),
    (["model.activation=bogus"], ConfigError, "model.activation='bogus' is not allowed"),
    (["model.loss=categorical_crossentropy"], ConfigError, "model.loss='categorical_crossentropy' is not allowed"),
])
def test_user_mistakes_create_no_run(sqlite_uri, overrides, error, message):
    with pytest.raises(error) as caught:
        train(make_cfg(sqlite_uri, *overrides))
    assert message in str(caught.value)
    assert all_runs(MlflowClient(sqlite_uri)) == []


def test_unreachable_tracking_server_creates_nothing(tmp_path):
    with pytest.raises(TrackingError):
        train(make_cfg("http://127.0.0.1:9", "tracking.probe_timeout=2"))
