"""The fit diagnosis on real training runs, tracked in a real SQLite store."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sweeps.config.compose import compose
from sweeps.training.run import train

pytestmark = pytest.mark.slow


def _tracked(sqlite_uri, *overrides):
    cfg = compose([*overrides, f"tracking.uri={sqlite_uri}", "tracking.log_model=false"])
    result = train(cfg)
    return result, MlflowClient(sqlite_uri).get_run(result["run_id"])


def test_large_net_on_small_noisy_moons_without_regularisation_overfits(sqlite_uri):
    result, run = _tracked(
        sqlite_uri,
        "dataset=moons", "dataset.n_samples=150", "dataset.noise=0.3",
        "model.hidden_layers=[128,128]", "model.dropout=0.0", "training.l2=0.0",
        "optimizer=adam", "optimizer.lr=0.003", "training.batch_size=32", "training.epochs=500",
    )
    assert run.data.tags["fit"] == "overfit", run.data.tags["fit_reason"]
    metrics = run.data.metrics
    assert metrics["fit/val_rise"] > 0.1
    assert metrics["fit/gap"] > 0.1
    assert metrics["best_epoch"] < metrics["epochs_run"]
    assert len(MlflowClient(sqlite_uri).get_metric_history(run.info.run_id, "loss/val")) == 500


def test_linear_model_on_the_spiral_underfits(sqlite_uri):
    result, run = _tracked(
        sqlite_uri, "dataset=spiral", "model=linear", "optimizer=adam", "optimizer.lr=0.01", "training.epochs=100",
    )
    assert run.data.tags["fit"] == "underfit", run.data.tags["fit_reason"]
    assert run.data.params["model.n_hidden_layers"] == "0"
    assert run.data.metrics["fit/train_skill"] < 0.5
    assert run.data.metrics["fit/train_loss_ratio"] > 0.5
    assert run.data.metrics["accuracy/test"] < 0.7
