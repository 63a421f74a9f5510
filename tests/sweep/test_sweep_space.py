"""The search space: parsing, validation against the engine's table, suggestions, trial configs."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from sweeps.errors import ConfigError
from sweeps.objective import layers_label, run_name, short_number, trial_config
from sweeps.runner import compose
from sweeps.config import to_container
from sweeps.space import parse_space

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
