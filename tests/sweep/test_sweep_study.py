"""Sweep settings, storages, samplers, pruners and resuming a study."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from sweeps.core import vocabulary as V
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.config.run_spec import to_container
from sweeps.core.errors import ConfigError, UserError
from sweeps.config.compose import compose_sweep as compose

BASE = {"study_name": "s", "storage": "sqlite:///optuna.db", "n_trials": 3}


def _settings(**changes):
    return sweep_settings.parse_settings({**BASE, **changes})


def test_the_shipped_sweeps_have_valid_settings():
    for name in ("default", "tabular", "digits", "moons", "quick", "multiobjective"):
        settings = sweep_settings.parse_settings(to_container(compose([f"sweep={name}"]))["sweep"])
        assert settings.n_trials >= 6
    # The default is the general space (conf/sweep/default.yaml); sweep=tabular is its former name.
    default = to_container(compose([]))
    assert default == to_container(compose(["sweep=default"])) == to_container(compose(["sweep=tabular"]))
    settings = sweep_settings.parse_settings(default["sweep"])
    assert (settings.study_name, settings.sampler, settings.pruner, settings.metrics, settings.directions) == (
        "digits-tabular", "tpe", "successive_halving", ("loss/val",), ("minimize",))
    assert settings.n_trials >= 20 and settings.seed == 0
    assert (default["sweep"]["epochs"], default["sweep"]["refit"]) == ("auto", True)
    assert set(default["sweep"]["params"]) >= {"optimizer", "dropout", "optimizer.weight_decay", "training.schedule.name"}
    # sweep=digits, the former default, keeps its space and its study name (old optuna.db files resume it).
    digits = sweep_settings.parse_settings(to_container(compose(["sweep=digits"]))["sweep"])
    assert (digits.study_name, digits.pruner, digits.n_trials) == ("digits-mlp", "median", 30)
    multi = sweep_settings.parse_settings(to_container(compose(["sweep=multiobjective"]))["sweep"])
    assert multi.metrics == ("loss/val", "n_parameters") and multi.sampler == "nsga2" and multi.pruner == "none"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"n_trials": 0}, "sweep.n_trials"),
        ({"n_trials": 2.5}, "sweep.n_trials"),
        ({"workers": 0}, "sweep.workers"),
        ({"timeout": -1}, "sweep.timeout"),
        ({"budget": "10 minutes"}, "sweep.budget"),
        ({"budget": "0s"}, "sweep.budget"),
        ({"budget": -5}, "sweep.budget"),
        ({"budget": True}, "sweep.budget"),
        ({"budget": "10m", "timeout": 60}, "sweep.budget"),
        ({"sampler": {"name": "bayes"}}, "sweep.sampler.name"),
        ({"pruner": {"name": "patient"}}, "sweep.pruner.name"),
        ({"sampler": {"name": "tpe", "n_startup": 3}}, "sweep.sampler.n_startup"),
        ({"pruner": {"name": "median", "n_warmup_steps": -1}}, "sweep.pruner.n_warmup_steps"),
        ({"metric": "accuracy/test"}, "sweep.metric"),
        ({"metric": "n_parameters"}, "sweep.metric"),
        ({"direction": "down"}, "sweep.direction"),
        ({"metric": ["loss/val", "n_parameters"], "pruner": {"name": "median"}}, "sweep.pruner.name"),
        ({"metric": ["loss/val", "n_parameters"], "direction": ["minimize"] * 3, "pruner": "none"}, "sweep.direction"),
        ({"sampler": {"name": "nsga2"}}, "sweep.sampler.name"),
        ({"register": {"alias": "9 lives"}}, "sweep.register.alias"),
        ({"colour": "blue"}, "sweep.colour"),
    ],
)
def test_bad_settings_are_refused_with_their_key(changes, key):
    with pytest.raises(ConfigError) as caught:
        _settings(**changes)
    assert caught.value.key == key, str(caught.value)


@pytest.mark.parametrize("budget, seconds", [
    ("10m", 600), ("90s", 90), ("1h30m", 5400), ("2.5h", 9000), ("1h2m3s", 3723), (45, 45), (" 5M ", 300),
])
def test_a_budget_is_a_duration(budget, seconds):
    assert _settings(budget=budget).timeout == seconds


def test_format_duration():
    assert [sweep_settings.format_duration(s) for s in (0, 59.6, 605, 3725, -3)] == ["0:00", "1:00", "10:05", "1:02:05", "0:00"]


def test_settings_of_another_sampler_or_pruner_are_ignored():
    settings = _settings(sampler={"name": "random", "n_startup_trials": 10},
                         pruner={"name": "hyperband", "n_warmup_steps": 4})
    assert settings.sampler_options == {} and settings.pruner_options == {}
    assert isinstance(S.make_sampler(settings), optuna.samplers.RandomSampler)
    pruner = S.make_pruner(settings, epochs=30)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)


def test_directions_follow_the_metrics():
    assert _settings(metric="accuracy/val").directions == ("maximize",)
    settings = _settings(metric=["loss/val", "n_parameters"], pruner="none", sampler="nsga2")
    assert settings.directions == ("minimize", "minimize") and settings.multi_objective


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes"])
def test_samplers_are_seeded_per_worker(name):
    settings = _settings(sampler={"name": name}, seed=3)
    values = []
    for worker in (0, 0, 1):
        study = optuna.create_study(sampler=S.make_sampler(settings, worker=worker))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        values.append([t.params["x"] for t in study.trials])
    assert values[0] == values[1] and values[0] != values[2]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite:////no/such/folder/optuna.db", "does not exist"),
        ("redis://localhost/0", "expected sqlite"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot be opened"),
        ("/no/such/folder/optuna.log", "does not exist"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line(url, words):
    with pytest.raises(UserError) as caught:
        ST.open_storage(url)
    message = str(caught.value)
    assert message.startswith("sweep.storage=") and words in message and "\n" not in message


def test_resuming_checks_direction_and_metric(tmp_path):
    settings = _settings(storage=f"sqlite:///{tmp_path}/o.db")
    storage = ST.open_storage(settings.storage)
    study, resumed = S.create_or_resume(settings, storage)
    assert not resumed and study.user_attrs[V.ATTR_METRICS] == ["loss/val"]
    _, resumed = S.create_or_resume(settings, storage)
    assert resumed
    with pytest.raises(UserError, match="sweep.direction=maximize does not match"):
        S.create_or_resume(dataclasses.replace(settings, directions=("maximize",)), storage)
    with pytest.raises(UserError, match="sweep.metric=accuracy/val does not match"):
        S.create_or_resume(dataclasses.replace(settings, metrics=("accuracy/val",)), storage)


def test_a_journal_file_is_a_storage(tmp_path):
    settings = _settings(storage=str(tmp_path / "optuna.log"))
    study, _ = S.create_or_resume(settings, ST.open_storage(settings.storage))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again, resumed = S.create_or_resume(settings, ST.open_storage(settings.storage))
    assert resumed and len(again.trials) == 2


def test_what_counts_toward_n_trials(tmp_path):
    study = optuna.create_study()
    study.optimize(lambda t: 1.0, n_trials=2)
    trial = study.ask()
    trial.set_user_attr(V.TRIAL_FAIL_REASON, "ValueError: boom")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    interrupted = study.ask()
    interrupted.set_user_attr(V.TRIAL_INTERRUPTED, True)
    study.tell(interrupted, state=optuna.trial.TrialState.FAIL)
    study.ask()  # left RUNNING
    assert S.finished_count(study) == 3


@pytest.mark.postgres
def test_a_postgresql_storage_with_heartbeats(postgres_url):
    settings = _settings(storage=postgres_url, heartbeat_interval=5)
    storage = ST.open_storage(settings.storage, settings.heartbeat_interval)
    study, resumed = S.create_or_resume(settings, storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again, resumed = S.create_or_resume(settings, ST.open_storage(settings.storage))
    assert resumed and S.finished_count(again) == 2


def test_parent_refreshes_are_spaced_in_proportion_to_the_study():
    from sweeps.study.runner import refresh_interval

    assert refresh_interval(0, 5) == 5 and refresh_interval(40, 5) == 5
    assert refresh_interval(500, 5) == 50
    # Refreshing 1,000 trials reads O(n) rows in all, not O(n^2): each refresh reads `done` rows.
    done, refreshes, rows_read = 0, 0, 0
    while done < 1000:
        done += refresh_interval(done, 5)
        refreshes += 1
        rows_read += done
    assert refreshes < 60
    assert rows_read < 12 * 1000
