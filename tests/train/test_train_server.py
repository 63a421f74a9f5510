"""Tracked runs against a real ``mlflow server`` whose backend store is PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient

import ann
from sweeps.training.run import train
from services import free_port
from train_helpers import history, make_cfg

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_run(mlflow_server):
    """One run on the server: (client, result)."""
    result = train(make_cfg(mlflow_server, "dataset=spiral", "dataset.n_samples=300", "model.hidden_layers=[16]",
                            "tracking.experiment_name=server-tests"))
    return MlflowClient(mlflow_server), result


def test_run_on_the_server_has_params_histories_and_tags(server_run):
    client, result = server_run
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.name"] == "spiral"
    assert run.data.params["model.output_activation"] == "softmax"
    assert run.data.params["dataset.n_classes"] == "3"
    for key in ("loss/train", "loss/val", "accuracy/train", "accuracy/val"):
        assert [step for step, _ in history(client, run.info.run_id, key)] == [1, 2, 3, 4]
    assert {"loss/test", "accuracy/test", "best_epoch", "epochs_run", "n_parameters"} <= set(run.data.metrics)
    assert run.data.tags["fit"] in ("good", "overfit", "underfit", "diverged")
    experiment = client.get_experiment(result["experiment_id"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert result["experiment_url"].startswith(client.tracking_uri) or result["experiment_url"].startswith("http://127.0.0.1")


def test_artifacts_are_served_by_the_server(server_run, tmp_path):
    client, result = server_run
    local = client.download_artifacts(result["run_id"], "", str(tmp_path))
    assert os.path.getsize(f"{local}/plots/learning_curve.png") > 10_000
    assert "name: spiral" in open(f"{local}/config/config.yaml").read()


def test_pyfunc_from_the_server_predicts_like_the_engine(server_run, global_tracking_uri, mlflow_server, tmp_path):
    client, result = server_run
    global_tracking_uri(mlflow_server)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "model"))
    engine = ann.MLP.load(f"{local}/artifacts/network/model")
    X = np.random.default_rng(3).uniform(-1, 1, size=(40, 2))
    predictions = mlflow.pyfunc.load_model(result["model_uri"]).predict(pd.DataFrame(X, columns=["x1", "x2"]))
    np.testing.assert_array_equal(np.asarray(predictions), engine.predict(X))
    model_id = result["model_uri"].split("models:/", 1)[1]
    scores = {m.key: m.value for m in client.get_logged_model(model_id).metrics}  # linked over REST too
    assert scores["accuracy/test"] == client.get_run(result["run_id"]).data.metrics["accuracy/test"]


def test_curves_show_while_the_run_is_running(mlflow_server):
    """With the default flush interval (2 s) a running run shows its curves within seconds."""
    watcher = MlflowClient(mlflow_server)
    seen = {}

    def slow_epoch(epoch, logs):
        time.sleep(0.25)
        if epoch == 20:  # about 5 s into training
            run = watcher.search_runs(
                [watcher.get_experiment_by_name("server-live").experiment_id], order_by=["start_time DESC"]
            )[0]
            seen["status"] = run.info.status
            seen["epochs"] = len(watcher.get_metric_history(run.info.run_id, "loss/train"))

    cfg = make_cfg(mlflow_server, "training.epochs=24", "tracking.flush_interval=2.0",
                   "tracking.experiment_name=server-live", "tracking.log_model=false")
    train(cfg, callbacks=[slow_epoch])
    assert seen["status"] == "RUNNING"
    assert seen["epochs"] >= 10  # at most one flush interval (8 epochs) behind


def test_mlflow_models_serve_answers_with_the_engine_predictions(server_run, global_tracking_uri, mlflow_server, tmp_path):
    client, result = server_run
    global_tracking_uri(mlflow_server)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "model"))
    engine = ann.MLP.load(f"{local}/artifacts/network/model")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = open(tmp_path / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", local, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        X = np.random.default_rng(4).uniform(-1, 1, size=(10, 2))
        payload = {"dataframe_split": {"columns": ["x1", "x2"], "data": X.tolist()}}
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == engine.predict(X).tolist()
        proba = requests.post(f"http://127.0.0.1:{port}/invocations",
                              json={**payload, "params": {"output": "proba"}}, timeout=30).json()["predictions"]
        np.testing.assert_allclose(pd.DataFrame(proba).to_numpy(), engine.predict_proba(X), rtol=1e-6)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.mark.browser
def test_the_ui_opens_the_experiment_in_the_model_training_view(server_run):
    """Headless Chromium renders the link ``ann-train`` prints: the runs and their charts."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("chromium is not installed (apt-get install chromium); CI must run the browser tests")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    client, result = server_run
    run_name = client.get_run(result["run_id"]).info.run_name
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1400,900", "--virtual-time-budget=20000", "--dump-dom", result["experiment_url"]],
            capture_output=True, text=True, timeout=120,
        ).stdout
    assert run_name in dom
    assert "Model training" in dom
    assert "Detect Issues" not in dom  # the GenAI overview's button
