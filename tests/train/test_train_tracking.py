"""The MLflow layer: reachability probe, experiment kind, batched metric logging (real stores)."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.tracking import client as tracking
from sweeps.tracking import links
from sweeps.tracking.metric_logger import MetricLogger
from sweeps.core.storage import sqlite_path
from sweeps.core.errors import TrackingError
from services import free_port


def test_unreachable_server_fails_fast():
    started = time.monotonic()
    with pytest.raises(TrackingError, match=r"tracking\.uri='http://127\.0\.0\.1:\d+' cannot be used: no MLflow server answers"):
        tracking.probe(f"http://127.0.0.1:{free_port()}", timeout=5)
    assert time.monotonic() - started < 10


def test_server_that_accepts_but_never_answers_fails_within_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TrackingError, match="no answer within 2 s"):
            tracking.probe(f"http://127.0.0.1:{port}", timeout=2)
        assert time.monotonic() - started < 10


def test_http_server_that_is_not_mlflow_is_refused():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(TrackingError, match="is it an MLflow tracking server"):
            tracking.probe(f"http://127.0.0.1:{server.server_address[1]}", timeout=3)
    finally:
        server.shutdown()
        server.server_close()


def test_sqlite_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(TrackingError, match="does not exist"):
        tracking.probe(f"sqlite:///{tmp_path}/nowhere/mlflow.db")


def test_sqlite_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "mlflow.db").write_text("this is not a database, " * 100)
    with pytest.raises(TrackingError, match="not a usable SQLite database"):
        tracking.probe(f"sqlite:///{tmp_path}/mlflow.db")


def test_unreachable_database_fails_fast():
    started = time.monotonic()
    with pytest.raises(TrackingError, match="the database does not answer"):
        tracking.probe(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/mlflow", timeout=2)
    assert time.monotonic() - started < 10


def test_sqlite_path_forms():
    assert str(sqlite_path("sqlite:///mlflow.db")) == "mlflow.db"
    assert str(sqlite_path("sqlite:////tmp/x/mlflow.db")) == "/tmp/x/mlflow.db"
    assert sqlite_path("sqlite://") is None


def test_experiment_is_created_as_model_training(client):
    experiment_id = tracking.get_or_create_experiment(client, "ann")
    experiment = client.get_experiment(experiment_id)
    assert experiment.tags[V.TAG_EXPERIMENT_KIND] == "custom_model_development"
    assert tracking.get_or_create_experiment(client, "ann") == experiment_id


def test_existing_experiment_gets_a_kind_but_a_chosen_kind_is_kept(client):
    plain = client.create_experiment("plain")
    chosen = client.create_experiment("chosen", tags={V.TAG_EXPERIMENT_KIND: "genai_development"})
    tracking.get_or_create_experiment(client, "plain")
    tracking.get_or_create_experiment(client, "chosen")
    assert client.get_experiment(plain).tags[V.TAG_EXPERIMENT_KIND] == "custom_model_development"
    assert client.get_experiment(chosen).tags[V.TAG_EXPERIMENT_KIND] == "genai_development"


def test_deleted_experiment_name_is_a_user_error(client):
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(TrackingError, match="tracking.experiment_name='gone' is not allowed: .*deleted"):
        tracking.get_or_create_experiment(client, "gone")


def test_metric_logger_batches_and_keeps_order(client):
    experiment_id = tracking.get_or_create_experiment(client, "ann")
    run_id = client.create_run(experiment_id).info.run_id
    logger = MetricLogger(client, run_id, flush_interval=3600)
    for epoch in range(1, 401):
        logger.log({"loss/train": 1.0 / epoch, "loss/val": 2.0 / epoch}, step=epoch)
    assert logger.batches_sent == 0  # nothing sent while training
    logger.close()
    assert logger.metrics_sent == 800
    assert logger.batches_sent == 1
    values = client.get_metric_history(run_id, "loss/val")
    assert sorted((m.step, m.value) for m in values) == [(e, 2.0 / e) for e in range(1, 401)]


def test_metric_logger_sends_in_the_background_while_running(client):
    experiment_id = tracking.get_or_create_experiment(client, "ann")
    run_id = client.create_run(experiment_id).info.run_id
    logger = MetricLogger(client, run_id, flush_interval=0.2)
    logger.log({"loss/train": 0.5}, step=1)
    deadline = time.monotonic() + 5
    while not client.get_metric_history(run_id, "loss/train") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m.value for m in client.get_metric_history(run_id, "loss/train")] == [0.5]
    logger.close()


def test_metric_logger_raises_a_failed_send(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    logger = MetricLogger(client, "0" * 32, flush_interval=3600)  # no such run
    logger.log({"loss/train": 1.0}, step=1)
    with pytest.raises(Exception):
        logger.close()


def test_ui_links_open_the_model_training_view():
    url = links.experiment_url("http://127.0.0.1:5000/", "3")
    assert url == "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&compareRunsMode=CHART"
    assert links.run_url("sqlite:///mlflow.db", "3", "abc").endswith("/#/experiments/3/runs/abc?workflowType=machine_learning")
    assert links.ui_command("sqlite:///mlflow.db") == "mlflow ui --backend-store-uri sqlite:///mlflow.db"
    assert links.ui_command("http://127.0.0.1:5000") is None
