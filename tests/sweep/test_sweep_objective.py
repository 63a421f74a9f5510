"""One trial: the objective with ``optuna.trial.FixedTrial`` and with live trials, real MLflow runs."""

from __future__ import annotations


import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import FixedTrial

from sweeps.core import vocabulary as V
from sweeps.study.objective import Objective, TrialFailed
from sweeps.study.runner import prepare
from sweep_helpers import sweep_cfg

PARAMS = {"n_layers": 1, "units_l1": 6, "activation": "tanh", "lr": 0.02, "batch_size": 16}


_OPEN: list[Objective] = []


@pytest.fixture(autouse=True)
def _close_objectives():
    """Each test's objectives closed after it: their helper processes exit then, not with pytest."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _objective(uris, *overrides, parent_run_id=None):
    storage, tracking_uri = uris
    prepared = prepare(sweep_cfg(storage, tracking_uri, *overrides))
    objective = Objective(prepared.base, prepared.space, prepared.settings, parent_run_id=parent_run_id,
                          overrides=["dataset=moons"])
    _OPEN.append(objective)
    return prepared, objective


def test_a_fixed_trial_trains_a_tracked_run_and_links_it(uris):
    prepared, objective = _objective(uris)
    trial = FixedTrial(PARAMS, number=7)
    value = objective(trial)
    objective.drain()  # the run's tail (PNG, model files, its end) is written in the background
    client = MlflowClient(uris[1])
    run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss/val"))
    assert value == pytest.approx(history[-1][1])  # no early stopping: the last epoch's weights are kept
    assert len(history) == 5 and run.info.status == "FINISHED"
    assert run.info.run_name == "t007 tanh 1x6 lr=0.02 bs=16"
    tags = run.data.tags
    assert tags["sweep.study_name"] == prepared.settings.study_name and tags["sweep.trial_number"] == "7"
    assert tags["sweep.state"] == "COMPLETE" and tags["fit"] in ("good", "overfit", "underfit", "diverged")
    assert run.data.params["model.hidden_layers"] == "[6]" and run.data.params["optimizer.lr"] == "0.02"
    assert run.data.metrics["sweep/objective"] == pytest.approx(value)
    assert trial.user_attrs[V.TRIAL_MODEL_URI] == tags["model_uri"] and trial.user_attrs[V.TRIAL_EPOCHS] == 5
    overrides = client.download_artifacts(run.info.run_id, "config/overrides.yaml")
    assert "model.hidden_layers=[6]" in open(overrides).read()


def test_the_value_is_the_kept_epochs_metric(uris):
    _, objective = _objective(uris, "training.early_stopping=true", "training.patience=2", "training.epochs=12",
                              "sweep.metric=accuracy/val")
    trial = FixedTrial({**PARAMS, "lr": 0.3}, number=1)
    value = objective(trial)
    objective.drain()  # the run's last batch is written by the worker's background writer
    run = MlflowClient(uris[1]).get_run(trial.user_attrs[V.TRIAL_RUN_ID])
    assert value == pytest.approx(run.data.metrics["best/accuracy/val"])


def test_a_non_finite_loss_prunes_the_trial_with_the_reason(uris):
    _, objective = _objective(uris, "optimizer=sgd", "sweep.params.lr.high=1e6")
    trial = FixedTrial({**PARAMS, "activation": "relu", "lr": 1e6}, number=3)
    with pytest.raises(optuna.TrialPruned, match="non-finite"):
        objective(trial)
    objective.drain()
    assert "non-finite" in trial.user_attrs[V.TRIAL_PRUNE_REASON]
    run = MlflowClient(uris[1]).get_run(trial.user_attrs[V.TRIAL_RUN_ID])
    assert run.info.status == "KILLED"
    assert run.data.tags["sweep.state"] == "PRUNED" and run.data.tags["pruned"] == "true"
    assert "non-finite" in run.data.tags["prune_reason"] and run.data.tags["fit"] == "diverged"
    assert run.data.tags["pruned_at_epoch"] == str(trial.user_attrs[V.TRIAL_PRUNED_AT])


def test_the_pruner_stops_a_live_trial_and_its_run_keeps_the_partial_curves(uris):
    prepared, objective = _objective(uris, "training.epochs=6")
    # A pruner that prunes any trial whose validation loss is above 0: it stops at the first epoch it may.
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=3))
    study.enqueue_trial(PARAMS)
    study.optimize(objective, n_trials=1)
    objective.drain()
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs[V.TRIAL_PRUNED_AT] == 3 and sorted(trial.intermediate_values) == [1, 2, 3]
    client = MlflowClient(uris[1])
    run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
    assert run.info.status == "KILLED" and run.data.tags["pruned_at_epoch"] == "3"
    assert "pruner stopped it at epoch 3" in run.data.tags["prune_reason"]
    assert len(client.get_metric_history(run.info.run_id, "loss/train")) == 3


def test_any_other_error_fails_the_trial_with_its_message(uris, tmp_path):
    prepared, objective = _objective(uris)
    csv = tmp_path / "gone.csv"
    objective.base["dataset"] = {"name": "csv", "path": str(csv), "target": "y"}
    trial = FixedTrial(PARAMS, number=2)
    with pytest.raises(TrialFailed) as caught:
        objective(trial)
    assert "gone.csv" in str(caught.value) and "\n" not in str(caught.value)
    assert trial.user_attrs[V.TRIAL_FAIL_REASON] == str(caught.value)


def test_untracked_trials_still_return_values(uris):
    storage, _ = uris
    prepared = prepare(sweep_cfg(storage, None))
    objective = Objective(prepared.base, prepared.space, prepared.settings)
    trial = FixedTrial(PARAMS, number=0)
    assert objective(trial) > 0 and V.TRIAL_RUN_ID not in trial.user_attrs


def test_multi_objective_returns_one_value_per_metric(uris):
    prepared, objective = _objective(uris, "sweep.metric=[loss/val,n_parameters]", "sweep.pruner.name=none",
                                     "sweep.sampler.name=nsga2")
    loss, n_parameters = objective(FixedTrial(PARAMS, number=0))
    assert n_parameters == 2 * 6 + 6 + 6 + 1 and loss > 0
