"""sweep.cv_folds: cross-validated trials in real, small sweeps (Optuna and MLflow in SQLite files)."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

from ann.data import kfold_indices
from sweeps.cli.sweep import main
from sweeps.config import sweep_settings
from sweeps.config.run_spec import build_run_spec, to_container
from sweeps.core import vocabulary as V
from sweeps.study import optuna_study as S
from sweeps.study.cv_folds import fold_means, refit_epochs, validation_scores
from sweeps.study.data_scaled import AUTO_CV_ROWS, auto_cv_folds
from sweeps.study.runner import compose, prepare, run_sweep
from sweeps.training import data as data_module
from sweep_helpers import cli_overrides, sweep_cfg

#: Successive halving at epochs 2, 4, 8 and 12: some of 8 trials are pruned (as in test_sweep_refit).
SH = ["sweep.pruner.name=successive_halving", "+sweep.pruner.min_resource=2", "+sweep.pruner.reduction_factor=2",
      "training.epochs=12", "sweep.n_trials=8", "sweep.sampler.n_startup_trials=4"]


def _sweep(uris, *overrides):
    prepared = prepare(sweep_cfg(uris[0], None, *overrides))
    run_sweep(prepared)
    return prepared, optuna.load_study(study_name=prepared.settings.study_name, storage=uris[0])


def _complete(study) -> list:
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_trials_are_the_mean_of_their_folds_and_fold_1_is_what_the_pruner_sees(uris, monkeypatch):
    splits = []
    monkeypatch.setattr(data_module, "kfold_indices", lambda *a, **k: splits.append(a) or kfold_indices(*a, **k))
    prepared, study = _sweep(uris, *SH, "sweep.cv_folds=3")
    assert len(splits) == 1  # the folds are made once (by prepare), not per trial
    assert prepared.settings.cv_folds == 3 and prepared.settings.refit  # refit forced on
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and len(_complete(study)) >= 2
    for trial in pruned:  # stopped in fold 1 by the pruner: no other fold trained
        assert V.TRIAL_CV_VALUES not in trial.user_attrs and max(trial.intermediate_values) < 12
    for trial in _complete(study):
        values = trial.user_attrs[V.TRIAL_CV_VALUES]
        assert len(values) == 3 and len(set(values)) == 3  # three different folds
        assert trial.value == pytest.approx(np.mean(values))
        assert trial.user_attrs[V.TRIAL_CV_STD] == pytest.approx(np.std(values))
        assert trial.user_attrs[V.TRIAL_CV_EPOCHS] == [12, 12, 12]
        assert set(trial.intermediate_values) <= {2, 4, 8, 12}  # reported at the rungs, by fold 1 only
        assert trial.intermediate_values[12] == pytest.approx(values[0]) != pytest.approx(trial.value)
    best = S.best_trials(study)[0]
    record = study.user_attrs[V.ATTR_REFIT]
    assert record["trial"] == best.number and record["epochs"] == 12 and 0.0 <= record["accuracy/test"] <= 1.0


def test_with_early_stopping_each_fold_keeps_its_best_epoch_and_the_refit_trains_their_mean(uris):
    _, study = _sweep(uris, "sweep.cv_folds=3", "sweep.pruner.name=none", "sweep.n_trials=3", "training.epochs=25",
                      "training.early_stopping=true", "training.patience=2", "sweep.params.lr.low=0.05")
    for trial in _complete(study):
        curve = [trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)]
        epochs = trial.user_attrs[V.TRIAL_CV_EPOCHS]
        assert trial.user_attrs[V.TRIAL_CV_VALUES][0] == pytest.approx(min(curve))  # fold 1's best epoch
        assert epochs[0] == int(np.argmin(curve)) + 1 and all(1 <= e <= 25 for e in epochs)
    best = S.best_trials(study)[0]
    assert study.user_attrs[V.ATTR_REFIT]["epochs"] == refit_epochs(best.user_attrs[V.TRIAL_CV_EPOCHS])
    assert [refit_epochs(e) for e in ([3, 4, 4], [2, 3], [1], [5, 5, 6, 6])] == [4, 3, 1, 6]


@pytest.mark.slow
def test_a_tracked_cross_validated_sweep_logs_the_folds_and_registers_the_refitted_champion(uris, capsys):
    storage, tracking_uri = uris
    main(cli_overrides(storage, tracking_uri, "sweep.cv_folds=3", "sweep.n_trials=4"))  # returns: exit status 0
    printed = capsys.readouterr().out
    assert ("sweep.cv_folds=3: every trial trains 3 folds of the 170 training + validation rows\n"
            "  (fold 1 is the trial's run and what the pruner sees; its value is their mean);\n"
            "  the champion is refitted on them (sweep.refit is forced on)" in printed)
    study = optuna.load_study(study_name="moons-quick", storage=storage)
    client = MlflowClient(tracking_uri)
    for trial in _complete(study):
        run = client.get_run(trial.user_attrs[V.TRIAL_RUN_ID])
        metrics, values = run.data.metrics, trial.user_attrs[V.TRIAL_CV_VALUES]
        assert [metrics[V.cv_metric("loss/val", j)] for j in (1, 2, 3)] == pytest.approx(values)
        assert metrics[V.cv_metric("loss/val", "mean")] == pytest.approx(trial.value) == metrics[V.OBJECTIVE]
        assert metrics[V.cv_metric("loss/val", "std")] == pytest.approx(np.std(values)) and metrics[V.CV_EPOCHS] == 5
        curve = client.get_metric_history(run.info.run_id, "loss/val")  # the run's curves: fold 1's
        assert len(curve) == 5 and max(curve, key=lambda m: m.step).value == pytest.approx(values[0])
        n_train, n_val = int(run.data.params["dataset.n_train"]), int(run.data.params["dataset.n_val"])
        assert n_train + n_val == 170 and n_val in (56, 57)
        # The folds' mean accuracy on the run and the trial; the run's own accuracy/val is fold 1's.
        kept = trial.user_attrs[V.TRIAL_METRICS]
        mean_accuracy = V.cv_metric("accuracy/val", "mean")
        assert kept[mean_accuracy] == pytest.approx(metrics[mean_accuracy]) and 0.0 < kept[mean_accuracy] <= 1.0
        fold_1 = client.get_metric_history(run.info.run_id, "accuracy/val")[-1].value  # the run's own accuracy/val
        assert kept[mean_accuracy] != pytest.approx(fold_1)
        assert kept[V.cv_metric("loss/val", "mean")] == pytest.approx(trial.value)  # the objective's own mean
    record = study.user_attrs[V.ATTR_REFIT]
    assert record["trial"] == S.best_trials(study)[0].number
    folds_accuracy = S.best_trials(study)[0].user_attrs[V.TRIAL_METRICS][V.cv_metric("accuracy/val", "mean")]
    assert record["trial/cv/accuracy/val/mean"] == folds_accuracy  # printed beside the refit's test score:
    assert f"its folds' accuracy/val {folds_accuracy:.4g})" in printed
    refit_run = client.get_run(record["run_id"])
    assert refit_run.data.params["dataset.n_train"] == "170" and refit_run.data.params["dataset.n_val"] == "0"
    version = client.get_model_version_by_alias("moons-quick", "champion")
    assert version.run_id == record["run_id"] and version.tags["sweep.refit"] == "true"


def _settings(*overrides: str) -> sweep_settings.SweepSettings:
    return sweep_settings.parse_settings(to_container(compose(["sweep=quick", *overrides]))["sweep"])


def test_null_or_one_fold_is_one_validation_split_and_refit_stays_as_set():
    for overrides in ((), ("sweep.cv_folds=null",), ("sweep.cv_folds=1",)):
        settings = _settings(*overrides)
        assert settings.cv_folds is None and not settings.refit
    assert _settings("sweep.cv_folds=5", "sweep.refit=true").refit and _settings("sweep.cv_folds=2").cv_folds == 2


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["sweep.cv_folds=0"], "sweep.cv_folds=0 is not allowed: expected an integer in [2, 20]"),
        (["sweep.cv_folds=many"], "sweep.cv_folds='many' is not allowed: expected an integer in [2, 20]"),
        (["sweep.cv_folds=2.5"], "sweep.cv_folds=2.5 is not allowed"),
        (["sweep.cv_folds=21"], "sweep.cv_folds=21 is not allowed"),
        (["sweep=multiobjective", "sweep.cv_folds=3"],
         "sweep.cv_folds=3 is not allowed: expected null for a sweep of several metrics"),
        (["dataset=moons", "dataset.n_samples=10", "sweep.cv_folds=20"],
         "sweep.cv_folds=20 is not allowed: expected an integer in [2, 8] (the rows to split)"),
    ],
)
def test_bad_numbers_of_folds_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, start):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(["tracking=off", *argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert caught.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"ann-sweep: error: {start}"), err
    assert sorted(os.listdir(tmp_path)) == []  # nothing started


def test_auto_cross_validates_a_small_data_set_and_says_so(uris):
    # moons as the fast sweeps have it: 200 rows, fewer than 1,000 training + validation rows: five folds, refit on.
    prepared = prepare(sweep_cfg(uris[0], None, "sweep.cv_folds=auto"))
    assert prepared.settings.cv_folds == 5 and prepared.settings.refit
    assert prepared.config["sweep"]["cv_folds"] == 5  # what worker processes read
    assert any(line.startswith("sweep.cv_folds=auto: 5 folds (") for line in prepared.chosen), prepared.chosen


def test_auto_keeps_one_split_on_a_larger_data_set_and_for_several_metrics(uris):
    # 4,000 moons, 3,400 training + validation rows (over AUTO_CV_ROWS): one validation split.
    prepared = prepare(sweep_cfg(uris[0], None, "sweep=quick", "dataset=moons", "sweep.cv_folds=auto", "dataset.n_samples=4000", fast=False))
    assert prepared.settings.cv_folds is None and not prepared.settings.refit
    assert any(line.startswith("sweep.cv_folds=auto: one validation split (") for line in prepared.chosen)
    several = prepare(sweep_cfg(uris[0], None, "sweep=multiobjective", "sweep.cv_folds=auto"))
    assert several.settings.cv_folds is None


def test_auto_folds_follow_the_rows():
    assert auto_cv_folds(AUTO_CV_ROWS - 1) == 5 and auto_cv_folds(AUTO_CV_ROWS) is None
    assert auto_cv_folds(100, n_metrics=2) is None


def test_the_folds_mean_of_every_validation_score_at_the_kept_epoch():
    spec = build_run_spec(compose(["dataset=moons", "training.epochs=3"]))
    curves = {"train_loss": [0.9, 0.8, 0.7], "val_loss": [0.6, 0.5, 0.55], "val_accuracy": [0.7, 0.8, 0.75]}
    result = {"curves": curves, V.EPOCHS_RUN: 3, V.BEST_EPOCH: 2}
    assert validation_scores(spec, result) == {"loss/val": 0.55, "accuracy/val": 0.75}  # the last epoch's
    restored = replace(spec, model_kwargs={**spec.model_kwargs, "early_stopping": True})
    assert validation_scores(restored, result) == {"loss/val": 0.5, "accuracy/val": 0.8}  # the best epoch's weights
    folds = [{"loss/val": 0.3, "accuracy/val": 0.9, "r2/val": 0.5}, {"loss/val": 0.5, "accuracy/val": 0.7}]
    assert fold_means(folds) == {"cv/accuracy/val/mean": pytest.approx(0.8), "cv/loss/val/mean": pytest.approx(0.4)}
