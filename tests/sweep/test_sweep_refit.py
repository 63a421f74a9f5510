"""sweep.refit, sweep.epochs=auto, the pruner's decision epochs and the tabular space: real sweeps, small."""

from __future__ import annotations

import mlflow
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

import ann
from ann.data import load_dataset, split_dataset
from sweeps.config.run_spec import to_container
from sweeps.core.errors import ConfigError
from sweeps.core.names import refit_line
from sweeps.core.vocabulary import cv_metric
from sweeps.config import sweep_settings
from sweeps.study import optuna_study as S
from sweeps.study import pruning
from sweeps.core.vocabulary import ATTR_REFIT, TRIAL_EPOCHS, TRIAL_RUN_ID
from sweeps.study.data_scaled import auto_epochs
from sweeps.study.runner import compose, prepare, run_sweep
from sweep_helpers import cli_overrides, sweep_cfg

SH = ["sweep.pruner.name=successive_halving", "+sweep.pruner.min_resource=2", "+sweep.pruner.reduction_factor=2",
      "training.epochs=12", "sweep.n_trials=8", "sweep.sampler.n_startup_trials=4"]


def _settings(*overrides: str) -> sweep_settings.SweepSettings:
    return sweep_settings.parse_settings(to_container(compose(["sweep=quick", *overrides]))["sweep"])


def test_successive_halving_and_hyperband_decide_at_their_rungs_only():
    assert pruning.decision_epochs(_settings(*SH), 12) == {2, 4, 8, 12}
    hyperband = _settings("sweep.pruner.name=hyperband", "+sweep.pruner.reduction_factor=3")
    assert pruning.decision_epochs(hyperband, 90) == {10, 30, 90}   # min_resource: 90 // 9
    assert pruning.decision_epochs(_settings(*SH, "+sweep.pruner.min_early_stopping_rate=1"), 12) == {4, 8, 12}
    assert pruning.decision_epochs(_settings(), 30) is None         # the median pruner: every epoch


def test_the_refit_line_fits_a_terminal_of_100_columns():
    """The longest refit a sweep prints: a 4-digit trial, 200 epochs, an ensemble, cross-validated scores."""
    def record(scores: dict) -> dict:  # the refit's record (sweeps.study.refit): its scores, the trial's, the folds' mean
        out = {"trial": 1234, "epochs": 200, "networks": 5}
        for name, (refit, trial, folds) in scores.items():
            out |= {f"{name}/test": refit, f"trial/{name}/test": trial, "trial/" + cv_metric(f"{name}/val", "mean"): folds}
        return out

    classifier = record({"accuracy": (0.97037037, 0.96296, 0.98296), "loss": (0.10312345, 0.1090123, 0.0676712)})
    regressor = record({"r2": (0.52412, -0.123456, 0.51812), "rmse": (0.71234, 0.7345678, 0.6912345)})
    for record, task, scores in ((classifier, "multiclass", ("accuracy", "loss")), (regressor, "regression", ("r2", "rmse"))):
        printed = refit_line(record, task)
        assert max(len(line) for line in printed.splitlines()) <= 100, printed
        assert all(f"{name}/test" in printed and f"its folds' {name}/val" in printed for name in scores), printed


def _sweep(uris, *overrides):
    prepared = prepare(sweep_cfg(uris[0], None, *overrides))
    run_sweep(prepared)
    return optuna.load_study(study_name=prepared.settings.study_name, storage=uris[0])


def test_reporting_at_the_rungs_makes_the_decisions_of_reporting_every_epoch(tmp_path, monkeypatch):
    rungs = _sweep((f"sqlite:///{tmp_path}/rungs.db", None), *SH)
    monkeypatch.setattr(pruning, "decision_epochs", lambda settings, epochs: None)
    every = _sweep((f"sqlite:///{tmp_path}/every.db", None), *SH)
    outcome = [(t.state.name, t.user_attrs.get(TRIAL_EPOCHS), t.params) for t in rungs.trials]
    assert outcome == [(t.state.name, t.user_attrs.get(TRIAL_EPOCHS), t.params) for t in every.trials]
    assert any(state == "PRUNED" for state, _, _ in outcome) and any(state == "COMPLETE" for state, _, _ in outcome)
    for trial in rungs.trials:
        assert set(trial.intermediate_values) <= {2, 4, 8, 12}, trial.intermediate_values
    assert any(len(t.intermediate_values) == 12 for t in every.trials)


def _rows(X, y) -> list:
    return sorted(zip(map(tuple, np.asarray(X).tolist()), np.asarray(y).tolist()))


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "moons", "spiral", "diabetes"])
def test_the_split_without_validation_keeps_the_test_rows(name):
    data = load_dataset(name)
    for seed in (0, 1, 2):
        with_val = split_dataset(data, val_size=0.15, test_size=0.15, seed=seed)
        without = split_dataset(data, val_size=0.0, test_size=0.15, seed=seed)
        assert _rows(with_val.X_test, with_val.y_test) == _rows(without.X_test, without.y_test)  # the same rows (in another order)
        assert len(without.X_train) == len(with_val.X_train) + len(with_val.X_val)


@pytest.mark.slow
def test_refit_registers_the_champion_retrained_on_training_and_validation_rows(uris, capsys):
    from sweeps.cli.sweep import main

    storage, tracking_uri = uris
    main(cli_overrides(storage, tracking_uri, "sweep.refit=true", "sweep.n_trials=4"))  # returns: exit status 0
    printed = capsys.readouterr().out
    study = optuna.load_study(study_name="moons-quick", storage=storage)
    record = study.user_attrs[ATTR_REFIT]
    best = S.best_trials(study)[0]
    assert record["trial"] == best.number and record["epochs"] == best.user_attrs[TRIAL_EPOCHS] == 5
    assert f"refit: trial {best.number} retrained on training + validation rows for 5 epochs:\n  accuracy/test" in printed
    client = MlflowClient(tracking_uri)
    refit_run = client.get_run(record["run_id"])
    trial_run = client.get_run(best.user_attrs[TRIAL_RUN_ID])
    assert refit_run.data.tags["sweep.role"] == "refit" and refit_run.info.run_name == f"refit of t{best.number:03d}"
    assert refit_run.data.tags["mlflow.parentRunId"] == trial_run.data.tags["mlflow.parentRunId"]
    params, trial_params = refit_run.data.params, trial_run.data.params
    assert params["dataset.n_val"] == "0" and params["dataset.n_test"] == trial_params["dataset.n_test"]
    assert int(params["dataset.n_train"]) == int(trial_params["dataset.n_train"]) + int(trial_params["dataset.n_val"])
    assert params["model.hidden_layers"] == trial_params["model.hidden_layers"]
    assert record["accuracy/test"] == pytest.approx(refit_run.data.metrics["accuracy/test"])
    assert record["trial/accuracy/test"] == pytest.approx(trial_run.data.metrics["accuracy/test"])
    parent = client.get_run(trial_run.data.tags["mlflow.parentRunId"])
    assert parent.data.metrics["refit/accuracy/test"] == pytest.approx(record["accuracy/test"])
    # The parent's plots, made by the writer and its helper process while the champion was refitted.
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optuna.html", "plots/fit_map.png", "plots/top_trials_curves.png"} <= plots
    assert "could not be" not in printed
    version = client.get_model_version_by_alias("moons-quick", "champion")
    assert version.run_id == record["run_id"] and version.tags["sweep.refit"] == "true"
    assert version.tags["sweep.trial_number"] == str(best.number)


def test_the_refit_as_an_ensemble_registers_the_networks_averaged(uris, capsys, global_tracking_uri):
    from sweeps.cli.sweep import main

    storage, tracking_uri = uris
    main(cli_overrides(storage, tracking_uri, "sweep.refit=true", "sweep.ensemble=3", "sweep.n_trials=3"))
    printed = capsys.readouterr().out
    record = optuna.load_study(study_name="moons-quick", storage=storage).user_attrs[ATTR_REFIT]
    assert record["networks"] == 3 and "for 5 epochs, 3 networks averaged:\n  accuracy/test" in printed
    client = MlflowClient(tracking_uri)
    run = client.get_run(record["run_id"])
    assert run.data.params["training.ensemble"] == "3" and run.data.metrics["ensemble/members"] == 3
    assert record["accuracy/test"] == pytest.approx(run.data.metrics["accuracy/test"])
    global_tracking_uri(tracking_uri)
    champion = mlflow.pyfunc.load_model("models:/moons-quick@champion").unwrap_python_model().model
    assert isinstance(champion, ann.Ensemble) and len(champion.members) == 3


def test_sweep_ensemble_auto_is_the_folds_of_a_cross_validated_sweep():
    assert _settings("sweep.cv_folds=4", "sweep.ensemble=auto").ensemble == 4
    assert _settings("sweep.ensemble=auto").ensemble == 1  # one validation split: one network
    assert _settings().ensemble == 1 and not _settings().refit
    assert _settings("sweep.ensemble=7").ensemble == 7 and _settings("sweep.ensemble=7").refit  # an ensemble is a refit
    for bad in ("0", "21", "many"):
        with pytest.raises(ConfigError, match=r"sweep.ensemble=.* is not allowed: expected an integer in \[1, 20\]"):
            _settings(f"sweep.ensemble={bad}")
    with pytest.raises(ConfigError, match="sweep.ensemble=3 is not allowed: expected 1 for a sweep of several metrics"):
        sweep_settings.parse_settings(to_container(compose(["sweep=multiobjective", "sweep.ensemble=3"]))["sweep"])


def test_the_trials_of_a_sweep_train_one_network_each(uris):
    with pytest.raises(ConfigError, match="training.ensemble=3 is not allowed: expected 1 in a sweep"):
        prepare(sweep_cfg(uris[0], None, "training.ensemble=3"))
    with pytest.raises(ConfigError, match="sweep.params.training.ensemble=.* expected a config path of"):
        prepare(sweep_cfg(uris[0], None, "+sweep.params.training.ensemble={low:1,high:3}"))


def test_refit_without_tracking_records_the_test_scores_on_the_study(uris):
    study = _sweep(uris, "sweep.refit=true", "sweep.n_trials=3")
    record = study.user_attrs[ATTR_REFIT]
    assert record["run_id"] is None and 0.0 <= record["accuracy/test"] <= 1.0 and "trial/accuracy/test" in record
    assert record["trial"] == S.best_trials(study)[0].number


def test_refit_is_refused_for_several_metrics(uris):
    with pytest.raises(ConfigError, match="sweep.refit=true is not allowed: expected false for a sweep of several"):
        prepare(compose(["sweep=multiobjective", "sweep.refit=true", "dataset=moons", "tracking=off",
                         f"sweep.storage={uris[0]}"]))


def test_auto_epochs_grow_as_the_data_shrinks_and_are_printed(uris):
    assert [auto_epochs(n) for n in (100, 309, 1257, 7000, 60000)] == [200, 180, 90, 40, 20]
    prepared = prepare(sweep_cfg(uris[0], None, "sweep.epochs=auto"))
    assert prepared.epochs == prepared.base["training"]["epochs"] == auto_epochs(prepared.n_train) == 200
    assert prepared.chosen == [f"sweep.epochs=auto: at most 200 epochs per trial ({prepared.n_train} training rows)"]
    assert prepare(sweep_cfg(uris[0], None, "sweep.epochs=7")).epochs == 7
    for bad in ("many", "0"):
        with pytest.raises(ConfigError, match="sweep.epochs"):
            prepare(sweep_cfg(uris[0], None, f"sweep.epochs={bad}"))


@pytest.mark.slow
def test_the_tabular_space_runs_a_sweep_with_refit(uris):
    prepared = prepare(compose(["sweep=tabular", "dataset=moons", "dataset.n_samples=400", f"sweep.storage={uris[0]}",
                                "tracking=off", "sweep.n_trials=4", "sweep.epochs=6"]))
    assert prepared.settings.pruner == "successive_halving" and prepared.settings.refit
    assert set(prepared.space.dimensions) >= {"optimizer", "dropout", "optimizer.weight_decay", "training.schedule.name"}
    run_sweep(prepared)
    study = optuna.load_study(study_name=prepared.settings.study_name, storage=uris[0])
    assert study.trials[0].params == prepared.enqueued[0]  # the known-good network runs first
    assert S.finished_count(study) == 4 and study.user_attrs[ATTR_REFIT]["trial"] == S.best_trials(study)[0].number
