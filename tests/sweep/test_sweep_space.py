"""The search space: parsing, validation against the engine's table, suggestions, trial configs."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from sweeps.core.errors import ConfigError
from sweeps.core.names import layers_label, short_number
from sweeps.study.objective import run_name, trial_config
from sweeps.config.compose import compose_sweep as compose
from sweeps.config.run_spec import to_container
from sweeps.config.space_parse import parse_space

SPACE = {
    "n_layers": {"low": 1, "high": 3},
    "units": {"low": 16, "high": 256, "log": True},
    "activation": {"choices": ["relu", "tanh"]},
    "lr": {"low": 1e-4, "high": 0.3, "log": True},
    "batch_size": {"choices": [16, 32, 64]},
}


def _error(section, key: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_space(section)
    assert caught.value.key == key, str(caught.value)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(key + "=")
    return message


def test_the_shipped_sweeps_parse():
    for name in ("digits", "moons", "quick", "multiobjective"):
        config = to_container(compose([f"sweep={name}"]))
        space = parse_space(config["sweep"]["params"])
        assert {"n_layers", "units", "activation", "lr", "batch_size"} <= set(space.dimensions)


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"lr": {"low": 0.3, "high": 1e-4}}, "sweep.params.lr.low", "inverted"),
        ({"lr": {"low": 0.1, "high": 0.1}}, "sweep.params.lr.low", "empty"),
        ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "sweep.params.lr.low", "log"),
        ({"l2": {"low": 0.0, "high": 0.1, "log": True}}, "sweep.params.l2.low", "log"),
        ({"lr": {"low": -1.0, "high": 0.1}}, "sweep.params.lr.low", "> 0"),
        ({"dropout": {"low": 0.0, "high": 1.0}}, "sweep.params.dropout.high", "[0, 1)"),
        ({"units": {"low": 0, "high": 8}}, "sweep.params.units.low", "[1, 65536]"),
        ({"n_layers": {"low": 1, "high": 40}}, "sweep.params.n_layers.high", "hidden layers"),
        ({"n_layers": {"low": 1.5, "high": 3}}, "sweep.params.n_layers.low", "integer"),
        ({"activation": {"choices": ["relu", "swishy"]}}, "sweep.params.activation.choices[1]", "relu"),
        ({"optimizer": {"choices": ["adam", "lbfgs"]}}, "sweep.params.optimizer.choices[1]", "sgd"),
        ({"activation": {"low": 1, "high": 2}}, "sweep.params.activation", "choices"),
        ({"learning_rate": {"low": 1e-3, "high": 1e-1}}, "sweep.params.learning_rate", "lr"),
        ({"lr": {"low": 1e-3, "hi": 1e-1}}, "sweep.params.lr.hi", "high"),
        ({"lr": {"low": 1e-3}}, "sweep.params.lr.high", "low and high"),
        ({"batch_size": {"type": "float", "low": 8, "high": 64}}, "sweep.params.batch_size.type", "whole number"),
        ({"batch_size": {"choices": []}}, "sweep.params.batch_size.choices", "non-empty"),
        ({"lr": {"low": 1e-3, "high": 1e-1, "log": True, "step": 0.01}}, "sweep.params.lr.step", "log"),
        ({"lr": None}, "sweep.params", "at least one"),
    ],
)
def test_bad_entries_are_refused_with_their_key(entry, key, words):
    assert words in _error(entry, key)


def test_units_are_conditional_on_the_layer_count():
    space = parse_space(SPACE)
    values = space.suggest(FixedTrial({"n_layers": 2, "units_l1": 64, "units_l2": 32, "activation": "relu",
                                       "lr": 3e-3, "batch_size": 64}))
    assert "units_l3" not in values
    assert space.hidden_layers(values) == [64, 32]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        widths = [k for k in values if k.startswith("units_l")]
        assert len(widths) == values["n_layers"]
        assert all(16 <= values[k] <= 256 for k in widths)
        study.tell(trial, 0.0)


def test_one_width_for_every_layer_and_no_layer_count():
    shared = parse_space({**SPACE, "units": {"low": 16, "high": 256, "per_layer": False}})
    values = shared.suggest(FixedTrial({"n_layers": 3, "units": 40, "activation": "relu", "lr": 1e-3, "batch_size": 16}))
    assert shared.hidden_layers(values) == [40, 40, 40]
    widths_only = parse_space({"units": {"low": 4, "high": 8}})
    values = widths_only.suggest(FixedTrial({"units_l1": 5, "units_l2": 6}), base_layers=(32, 16))
    assert widths_only.hidden_layers(values, (32, 16)) == [5, 6]


def test_trial_config_sets_the_keys_and_swaps_the_optimizer_group():
    base = to_container(compose(["tracking=off"]))
    base.pop("sweep")
    space = parse_space({**SPACE, "optimizer": {"choices": ["adam", "sgd"]}})
    values = {"n_layers": 2, "units_l1": 64, "units_l2": 64, "activation": "tanh", "lr": 3e-3,
              "batch_size": 64, "optimizer": "sgd"}
    cfg, overrides = trial_config(base, space, values)
    assert cfg["model"]["hidden_layers"] == [64, 64]
    assert cfg["model"]["activation"] == "tanh"
    assert cfg["optimizer"] == {"name": "sgd", "lr": 3e-3, "weight_decay": 0.0}  # adam's betas are gone with the group
    assert cfg["training"]["batch_size"] == 64
    assert base["optimizer"]["name"] == "adam"  # the base is not touched
    assert overrides[0] == "optimizer=sgd"
    assert "model.hidden_layers=[64,64]" in overrides and "optimizer.lr=0.003" in overrides
    assert run_name(7, cfg, list(space.dimensions)) == "t007 tanh 2x64 sgd lr=3e-3 bs=64"


def test_names_are_short():
    assert short_number(0.003) == "3e-3" and short_number(0.00031) == "3.1e-4" and short_number(0.25) == "0.25"
    assert layers_label([]) == "linear" and layers_label([64, 32]) == "64-32" and layers_label([8, 8]) == "2x8"


def test_grid_needs_steps_for_float_ranges():
    grid = parse_space({"n_layers": {"low": 1, "high": 2}, "units": {"choices": [8, 16]},
                        "lr": {"low": 0.01, "high": 0.03, "step": 0.01}}).grid()
    assert grid["n_layers"] == [1, 2] and grid["units_l1"] == [8, 16] and grid["units_l2"] == [8, 16]
    assert grid["lr"] == pytest.approx([0.01, 0.02, 0.03])
    with pytest.raises(ConfigError, match="sweep.params.lr"):
        parse_space({"lr": {"low": 1e-3, "high": 1e-1, "log": True}}).grid()


# ------------------------------------------------------------------ config paths


def test_any_config_key_is_searched_by_its_path_nested_or_dotted():
    space = parse_space({
        **SPACE,
        "optimizer": {"choices": ["adam", "adamw"], "beta1": {"low": 0.8, "high": 0.99}},
        "optimizer.weight_decay": {"low": 1e-5, "high": 0.1, "log": True},
        "training": {"schedule": {"name": ["constant", "cosine"], "warmup_epochs": {"low": 0, "high": 5}}},
        "model.init": {"choices": ["he", "xavier"]},
    })
    dims = space.dimensions
    assert dims["optimizer"].choices == ("adam", "adamw") and dims["optimizer"].key is None
    assert dims["optimizer.beta1"].type == "float" and dims["optimizer.beta1"].key == "optimizer.beta1"
    assert dims["optimizer.weight_decay"].log
    assert dims["training.schedule.warmup_epochs"].type == "int"  # the engine's table says integer
    assert dims["training.schedule.name"].choices == ("constant", "cosine")
    assert dims["model.init"].type == "categorical"


def test_a_path_of_a_named_setting_is_that_setting():
    space = parse_space({"optimizer.lr": {"low": 1e-3, "high": 0.1, "log": True}, "training.batch_size": [16, 32]})
    assert set(space.dimensions) == {"lr", "batch_size"}
    assert _error({"lr": {"low": 1e-3, "high": 0.1}, "optimizer.lr": {"low": 1e-3, "high": 0.1}},
                  "sweep.params.optimizer.lr").endswith("one entry per setting (lr is searched twice)")


@pytest.mark.parametrize("section, key, fragment", [
    ({"optimizer.foo": {"low": 1, "high": 2}}, "sweep.params.optimizer.foo", "a config path of model, optimizer, training"),
    ({"model": {"hidden_layers": [[8]]}}, "sweep.params.model.hidden_layers", "n_layers and units"),
    ({"optimizer.beta1": {"low": 0.5, "high": 1.5}}, "sweep.params.optimizer.beta1.high", "a finite number in [0, 1)"),
    ({"training.schedule.name": {"choices": ["cosine", "linear"]}}, "sweep.params.training.schedule.name.choices[1]",
     "one of 'constant', 'step'"),
    ({"training.schedule.warmup_epochs": {"low": 0.5, "high": 3}}, "sweep.params.training.schedule.warmup_epochs.low",
     "an integer"),
    ({"model.init": {"low": 1, "high": 2}}, "sweep.params.model.init", "choices for model.init"),
    ({"learning_rate": {"low": 1, "high": 2}}, "sweep.params.learning_rate", "or a config path such as optimizer.beta1"),
])
def test_bad_paths_are_refused_with_their_key(section, key, fragment):
    assert fragment in _error(section, key)


def _draw(space, base, params):
    return space.suggest(FixedTrial(params), (32,), base)


def test_optimizer_and_schedule_paths_are_drawn_only_when_read():
    space = parse_space({
        "optimizer": ["sgd", "adam", "adamw"],
        "optimizer.weight_decay": {"low": 1e-5, "high": 0.1, "log": True},
        "optimizer.beta1": {"low": 0.8, "high": 0.99},
        "training.schedule.name": ["constant", "cosine", "one_cycle"],
        "training.schedule.warmup_epochs": {"low": 0, "high": 5},
        "training.schedule.pct_start": {"low": 0.1, "high": 0.5},
    })
    base = to_container(compose([]))
    params = {"optimizer.weight_decay": 0.01, "optimizer.beta1": 0.9, "training.schedule.warmup_epochs": 2,
              "training.schedule.pct_start": 0.3}
    drawn = _draw(space, base, {**params, "optimizer": "adam", "training.schedule.name": "cosine"})
    assert set(drawn) == {"optimizer", "optimizer.beta1", "training.schedule.name", "training.schedule.warmup_epochs"}
    drawn = _draw(space, base, {**params, "optimizer": "sgd", "training.schedule.name": "one_cycle"})
    assert set(drawn) == {"optimizer", "optimizer.weight_decay", "training.schedule.name", "training.schedule.pct_start"}
    drawn = _draw(space, base, {**params, "optimizer": "adamw", "training.schedule.name": "constant"})
    assert set(drawn) == {"optimizer", "optimizer.weight_decay", "optimizer.beta1", "training.schedule.name"}


def test_a_path_no_trial_would_read_is_refused_before_the_sweep():
    base = to_container(compose([]))  # optimizer adam, constant schedule
    space = parse_space({"optimizer.weight_decay": {"low": 1e-5, "high": 0.1}})
    with pytest.raises(ConfigError, match=r"^sweep.params.optimizer.weight_decay=.* a setting of an optimizer the sweep "
                                          r"uses \(adam\): weight_decay is read by sgd, momentum, nesterov, adamw$"):
        space.check_conditions(base)
    parse_space({"optimizer": ["adam", "adamw"], "optimizer.weight_decay": {"low": 1e-5, "high": 0.1}}).check_conditions(base)
    space = parse_space({"training.schedule.warmup_epochs": {"low": 0, "high": 3}})
    with pytest.raises(ConfigError, match=r"a setting of a schedule the sweep uses \(constant\): warmup_epochs is read by cosine$"):
        space.check_conditions(base)


def test_trial_config_sets_nested_paths_and_the_engine_accepts_it():
    from sweeps.config.run_spec import build_run_spec

    base = to_container(compose([]))
    space = parse_space({"optimizer": ["adamw"], "optimizer.weight_decay": {"low": 1e-5, "high": 0.1},
                         "training.schedule.name": ["cosine"], "training.schedule.warmup_epochs": {"low": 0, "high": 5},
                         "model.init": ["xavier"]})
    values = _draw(space, base, {"optimizer": "adamw", "optimizer.weight_decay": 0.02, "training.schedule.name": "cosine",
                                 "training.schedule.warmup_epochs": 3, "model.init": "xavier"})
    cfg, overrides = trial_config(base, space, values)
    assert cfg["training"]["schedule"]["warmup_epochs"] == 3 and cfg["training"]["schedule"]["gamma"] == 0.5
    assert base["training"]["schedule"]["warmup_epochs"] == 0  # the base is left alone
    assert "training.schedule.warmup_epochs=3" in overrides and overrides[0] == "optimizer=adamw"
    kwargs = build_run_spec(cfg).model_kwargs
    assert (kwargs["optimizer"], kwargs["weight_decay"], kwargs["lr_schedule"], kwargs["warmup_epochs"], kwargs["init"]) == (
        "adamw", 0.02, "cosine", 3, "xavier")


# ------------------------------------------------------------------ enqueue


def test_enqueued_sets_are_checked_against_the_space():
    space = parse_space({**SPACE, "optimizer.beta1": {"low": 0.8, "high": 0.99}})
    assert space.check_enqueued({"n_layers": 2, "units": 64, "lr": 3e-3, "optimizer.beta1": 0.9}, "sweep.enqueue[0]") == {
        "n_layers": 2, "units_l1": 64, "units_l2": 64, "lr": 3e-3, "optimizer.beta1": 0.9}
    for values, key, fragment in [
        ({"n_layers": 4}, "sweep.enqueue[0].n_layers", "a value of sweep.params.n_layers: int [1, 3]"),
        ({"lr": 1.0}, "sweep.enqueue[0].lr", "a value of sweep.params.lr: float [0.0001, 0.3] log"),
        ({"activation": "elu"}, "sweep.enqueue[0].activation", "a value of sweep.params.activation: {relu, tanh}"),
        ({"units_l4": 16}, "sweep.enqueue[0].units_l4", "a parameter of the search space: one of n_layers, units_l1, units_l2, units_l3"),
        ({"epochs": 10}, "sweep.enqueue[0].epochs", "a parameter of the search space"),
        ([1, 2], "sweep.enqueue[0]", "a mapping of searched parameters"),
    ]:
        with pytest.raises(ConfigError) as caught:
            space.check_enqueued(values, "sweep.enqueue[0]")
        assert caught.value.key == key and fragment in str(caught.value), str(caught.value)


def test_the_parent_params_of_the_searched_settings_show_their_distributions():
    from sweeps.study.parent_setup import searched_params

    space = parse_space({"optimizer": {"beta1": {"low": 0.8, "high": 0.99}}, "lr": {"low": 1e-4, "high": 0.1, "log": True},
                         "n_layers": {"low": 1, "high": 2}, "units": {"low": 8, "high": 64},
                         "activation": {"choices": ["relu", "tanh"]}})
    assert searched_params(space) == {
        "optimizer.beta1": "float [0.8, 0.99]",  # a setting searched by its config path
        "optimizer.lr": "float [0.0001, 0.1] log",
        "model.hidden_layers": "n_layers int [1, 2]; units int [8, 64]",
        "model.activation": "{relu, tanh}",
    }
