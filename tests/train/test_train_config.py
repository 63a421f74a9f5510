"""The Hydra configs compose, validate against the engine's table and flatten into params."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sweeps.config import CONFIG_DIR
from sweeps.config.compose import compose
from sweeps.config.run_spec import build_run_spec, resolved_yaml, run_params
from sweeps.core.errors import ConfigError, UserError
from sweeps.core.redaction import redact

GROUPS = {
    "model": {"mlp", "linear", "deep"},
    "optimizer": {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"},
    "dataset": {"xor", "moons", "circles", "spiral", "regression", "digits", "breast_cancer",
                "diabetes", "csv", "mnist", "fashion_mnist"},
    "training": {"default"},
    "tracking": {"local", "server", "off"},
}


def test_the_config_directory_has_one_file_per_option():
    assert (CONFIG_DIR / "config.yaml").is_file()
    for group, options in GROUPS.items():
        found = {path.stem for path in (CONFIG_DIR / group).glob("*.yaml")}
        assert found == options, group


def test_every_dataset_of_the_engine_has_a_config():
    from ann.data import DATASETS

    assert set(DATASETS) == GROUPS["dataset"]


def test_defaults_compose_into_engine_arguments(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = build_run_spec(compose())
    assert spec.dataset == "moons"
    assert spec.model_kwargs["hidden_layers"] == (32,)
    assert spec.model_kwargs["optimizer"] == "adam"
    assert spec.tracking.uri == "sqlite:///mlflow.db"
    assert spec.tracking.experiment_name == "ann"
    assert spec.tracking.enabled


def test_command_line_overrides_reach_the_engine():
    spec = build_run_spec(compose(["dataset=digits", "model.hidden_layers=[64,32]", "optimizer=adam", "optimizer.lr=3e-3"]))
    assert spec.dataset == "digits"
    assert spec.model_kwargs["hidden_layers"] == (64, 32)
    assert spec.model_kwargs["lr"] == pytest.approx(3e-3)


@pytest.mark.parametrize("option,settings", [
    ("sgd", {"lr", "weight_decay"}), ("momentum", {"lr", "momentum", "weight_decay"}),
    ("adam", {"lr", "beta1", "beta2", "eps"}), ("adamw", {"lr", "beta1", "beta2", "eps", "weight_decay"}),
])
def test_each_optimizer_has_its_own_settings(option, settings):
    spec = build_run_spec(compose([f"optimizer={option}"]))
    assert spec.model_kwargs["optimizer"] == option
    assert set(spec.config["optimizer"]) == {"name", *settings}


def test_schedule_clipping_and_decay_reach_the_engine():
    spec = build_run_spec(compose([
        "optimizer=adamw", "optimizer.weight_decay=0.05", "training.clip_norm=2",
        "training.schedule.name=cosine", "training.schedule.warmup_epochs=5", "training.schedule.min_lr=1e-5",
        "training.schedule.gamma=0.9",  # not read by cosine: checked, not passed on
    ]))
    kwargs = spec.model_kwargs
    assert kwargs["optimizer"] == "adamw" and kwargs["weight_decay"] == 0.05 and kwargs["clip_norm"] == 2.0
    assert kwargs["lr_schedule"] == "cosine" and kwargs["warmup_epochs"] == 5 and kwargs["min_lr"] == 1e-5
    assert "gamma" not in kwargs and "plateau_patience" not in kwargs
    params = run_params(spec)
    assert params["training.schedule.name"] == "cosine" and params["training.schedule.warmup_epochs"] == "5"
    assert "training.schedule.gamma" not in params and "training.schedule" not in params


def test_plateau_schedule_keys_map_to_the_engine():
    spec = build_run_spec(compose([
        "training.schedule.name=plateau", "training.schedule.factor=0.5", "training.schedule.patience=2",
        "training.schedule.threshold=0.01",
    ]))
    kwargs = spec.model_kwargs
    assert (kwargs["plateau_factor"], kwargs["plateau_patience"], kwargs["plateau_threshold"]) == (0.5, 2, 0.01)


def test_linear_model_has_no_hidden_layer():
    assert build_run_spec(compose(["model=linear"])).model_kwargs["hidden_layers"] == ()


def test_environment_tracking_uri_wins_over_the_file_default(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert build_run_spec(compose()).tracking.uri == "http://127.0.0.1:5999"
    assert build_run_spec(compose(["tracking=server"])).tracking.uri == "http://127.0.0.1:5999"
    # An explicit override on the command line wins over both.
    assert build_run_spec(compose(["tracking.uri=sqlite:///x.db"])).tracking.uri == "sqlite:///x.db"


def test_server_default_without_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert build_run_spec(compose(["tracking=server"])).tracking.uri == "http://127.0.0.1:5000"
    assert not build_run_spec(compose(["tracking=off"])).tracking.enabled


@pytest.mark.parametrize("overrides,key", [
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
    (["training.batch_size=0"], "training.batch_size=0"),
    (["model.hidden_layers=[16,0]"], "model.hidden_layers[1]=0"),
    (["model.activation=softsign"], "model.activation='softsign'"),
    (["model.dropout=1.5"], "model.dropout=1.5"),
    (["training.dtype=float16"], "training.dtype='float16'"),
    (["training.epochs=0"], "training.epochs=0"),
    (["+optimizer.momentum=0.5"], "optimizer.momentum=0.5"),
    (["+model.units=5"], "model.units=5"),
    (["training.val_size=0.9"], "training.val_size=0.9"),
    (["model.rrelu_lower=0.9"], "model.rrelu_lower=0.9"),
    (["dataset=moons", "+dataset.colour=red"], "dataset.colour='red'"),
    (["tracking.flush_interval=0"], "tracking.flush_interval=0"),
    (["training.threads=0"], "training.threads=0"),
    (["training.threads=many"], "training.threads='many'"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(overrides, key):
    with pytest.raises(ConfigError) as caught:
        build_run_spec(compose(overrides))
    message = str(caught.value)
    assert message.startswith(key + " is not allowed: expected ")
    assert "\n" not in message


def test_missing_csv_path_is_a_one_line_error():
    with pytest.raises(UserError, match=r"^dataset\.path is missing: .*dataset\.path=data\.csv$"):
        build_run_spec(compose(["dataset=csv"]))


def test_params_are_the_flattened_config_with_readable_names():
    spec = build_run_spec(compose(["model.hidden_layers=[64,32]", "optimizer=momentum", "optimizer.lr=0.05"]))
    params = run_params(spec, {"model.output_activation": "sigmoid", "dataset.task": "binary"})
    assert params["model.hidden_layers"] == "[64, 32]"
    assert params["model.n_hidden_layers"] == "2"
    assert params["model.layer_1_units"] == "64"
    assert params["model.layer_2_units"] == "32"
    assert params["optimizer.name"] == "momentum"
    assert params["optimizer.lr"] == "0.05"
    assert params["optimizer.momentum"] == "0.9"
    assert params["training.batch_size"] == "32"
    assert params["training.seed"] == "0"
    assert params["training.early_stopping"] == "false"
    assert params["dataset.name"] == "moons"
    assert params["model.output_activation"] == "sigmoid"
    assert not any(key.startswith("tracking.") for key in params)


def test_passwords_in_tracking_uris_are_redacted():
    assert redact("postgresql://me:secret@db:5432/mlflow") == "postgresql://me:***@db:5432/mlflow"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    spec = build_run_spec(compose(["tracking.uri=postgresql://me:secret@db/mlflow"]))
    assert "secret" not in resolved_yaml(spec)


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sweeps.cli.train", "--cfg", "job", "dataset=digits", "optimizer.lr=0.003"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "name: digits" in result.stdout
    assert "lr: 0.003" in result.stdout
    assert "hidden_layers:" in result.stdout
    assert not list(tmp_path.iterdir())  # printing the config writes nothing
