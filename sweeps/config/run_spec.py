"""Validate a run's configuration and turn it into engine arguments.

The configs live in the top-level ``conf/`` directory (:data:`sweeps.config.CONFIG_DIR`;
composed by :mod:`sweeps.config.compose`).

:func:`build_run_spec` checks a composed config against the engine's table of allowed
values (:mod:`ann.params`) and the data registry (:data:`ann.data.DATASETS`) before
anything runs; every problem is a :class:`~sweeps.core.errors.ConfigError` naming the config
key (as it is written on the command line), the value and what is allowed.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, OmegaConf

import ann
from ann import params as P
from ann.data import DATASETS
from sweeps.core.errors import ConfigError, UserError, first_line
from sweeps.core.redaction import redact
from sweeps.core.storage import absolute_path


#: The config groups a run is made of, in the order they are logged.
GROUPS = ("model", "optimizer", "dataset", "training", "tracking")

#: model.<key> -> ann.MLP argument.
MODEL_KEYS = {
    "hidden_layers": "hidden_layers",
    "activation": "activation",
    "output_activation": "output_activation",
    "loss": "loss",
    "init": "init",
    "init_scale": "init_scale",
    "dropout": "dropout",
    "leaky_slope": "leaky_slope",
    "rrelu_lower": "rrelu_lower",
    "rrelu_upper": "rrelu_upper",
    "elu_alpha": "elu_alpha",
}
#: optimizer.<key> -> ann.MLP argument (``name`` selects the optimizer).
OPTIMIZER_KEYS = {
    "name": "optimizer",
    "lr": "lr",
    "momentum": "momentum",
    "beta1": "beta1",
    "beta2": "beta2",
    "rho": "rho",
    "eps": "eps",
    "weight_decay": "weight_decay",
}
#: Which settings each optimizer of the engine reads (a setting of another optimizer is
#: refused rather than silently ignored): the engine's own table.
OPTIMIZER_SETTINGS = P.OPTIMIZER_SETTINGS
#: training.<key> -> ann.MLP argument.
TRAINING_KEYS = {key: key for key in ("epochs", "batch_size", "l2", "clip_norm", "early_stopping", "patience",
                                      "min_delta", "restore_best_weights", "standardize", "shuffle", "seed", "dtype")}
#: training.schedule.<key> -> ann.MLP argument (``name`` selects the schedule).
SCHEDULE_KEYS = {
    "name": "lr_schedule",
    "warmup_epochs": "warmup_epochs",
    "min_lr": "min_lr",
    "step_size": "step_size",
    "gamma": "gamma",
    "pct_start": "pct_start",
    "div_factor": "div_factor",
    "final_div_factor": "final_div_factor",
    "factor": "plateau_factor",
    "patience": "plateau_patience",
    "threshold": "plateau_threshold",
}
#: training.<key> that configure the train / validation / test split.
SPLIT_KEYS = ("val_size", "test_size")
#: The most networks ``training.ensemble`` averages.
MAX_ENSEMBLE = 20
#: Dataset options that name files or folders (made absolute, ``~`` expanded).
PATH_OPTIONS = ("path",)

_ENGINE_TO_KEY = {
    **{engine: f"model.{key}" for key, engine in MODEL_KEYS.items()},
    **{engine: f"optimizer.{key}" for key, engine in OPTIMIZER_KEYS.items()},
    **{engine: f"training.{key}" for key, engine in TRAINING_KEYS.items()},
    **{engine: f"training.schedule.{key}" for key, engine in SCHEDULE_KEYS.items()},
}


@dataclass(frozen=True)
class TrackingSettings:
    """Where and how a run is tracked (the ``tracking`` group)."""

    enabled: bool = True
    uri: str | None = "sqlite:///mlflow.db"
    experiment_name: str = "ann"
    run_name: str | None = None
    artifact_location: str | None = None
    flush_interval: float = 2.0
    log_model: bool = True
    probe_timeout: float = 5.0
    system_metrics: bool = True
    system_metrics_interval: float = 2.0


@dataclass(frozen=True)
class RunSpec:
    """Everything a training run needs, validated.

    Attributes:
        model_kwargs: arguments of :class:`ann.MLP` (``task`` is set from the data later).
        dataset: registry name of the data set.
        dataset_options: keyword options of its loader.
        val_size, test_size, split_seed: arguments of :func:`ann.data.split_dataset`.
        ensemble: networks trained (seeds ``seed``, ``seed + 1``, ...) and averaged (:class:`ann.Ensemble`).
        threads: ``training.threads``: BLAS threads, None for auto (:mod:`sweeps.training.threads`).
        tracking: the tracking settings.
        config: the composed config as plain containers (interpolations resolved).
    """

    model_kwargs: dict[str, Any]
    dataset: str
    dataset_options: dict[str, Any]
    val_size: float
    test_size: float
    split_seed: int
    tracking: TrackingSettings
    config: dict[str, Any] = field(repr=False)
    ensemble: int = 1
    threads: int | None = None


# -------------------------------------------------------------------------- validate


def to_container(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain dicts and lists, interpolations resolved, ``hydra`` left out."""
    if isinstance(cfg, DictConfig):
        missing = sorted(key for key in OmegaConf.missing_keys(cfg) if not key.startswith("hydra"))
        if missing:
            dataset = cfg.get("dataset", {}).get("name") if isinstance(cfg.get("dataset"), DictConfig) else None
            raise UserError(f"{missing[0]} is missing: set it on the command line, e.g. {_missing_hint(missing[0], dataset)}")
        try:
            container = OmegaConf.to_container(cfg, resolve=True)
        except Exception as error:  # an interpolation that cannot be resolved
            raise UserError(f"the config cannot be resolved: {first_line(error)}") from None
    else:
        container = dict(cfg)
    container.pop("hydra", None)
    return container


def build_run_spec(cfg: DictConfig | Mapping[str, Any]) -> RunSpec:
    """Validate a composed config and split it into engine, data and tracking settings.

    Raises:
        ConfigError: a key holds a value the engine, the data loader or the tracking layer
            does not accept (the message names the key as written on the command line).
        UserError: a required key is missing.
    """
    config = to_container(cfg)
    for group in GROUPS:
        if not isinstance(config.get(group), dict):
            raise ConfigError(group, config.get(group), f"a config group: choose one with {group}=<option>")

    model_kwargs: dict[str, Any] = {}
    _collect(config["model"], "model", MODEL_KEYS, model_kwargs)
    _collect(config["training"], "training", TRAINING_KEYS, model_kwargs, extra=(*SPLIT_KEYS, "schedule", "ensemble", "threads"))
    model_kwargs.update(_schedule(config["training"].get("schedule")))
    optimizer = config["optimizer"]
    name = optimizer.get("name")
    if "name" not in optimizer:
        raise ConfigError("optimizer.name", None, "one of " + ", ".join(OPTIMIZER_SETTINGS))
    _check_engine("optimizer.name", "optimizer", name)
    allowed_settings = OPTIMIZER_SETTINGS.get(name, tuple(k for k in OPTIMIZER_KEYS if k != "name"))
    for key in optimizer:
        if key != "name" and key not in allowed_settings:
            readers = [other for other, settings in OPTIMIZER_SETTINGS.items() if key in settings]
            hint = f" ({key} is a setting of " + ", ".join(readers) + ")" if readers else ""
            raise ConfigError(
                f"optimizer.{key}", optimizer[key],
                f"a setting of optimizer {name!r}: one of " + ", ".join(allowed_settings) + hint,
            )
    _collect(optimizer, "optimizer", OPTIMIZER_KEYS, model_kwargs)

    # Rules that tie several arguments together, and anything else the engine checks.
    try:
        P.check_all(model_kwargs)
        ann.MLP(**model_kwargs)
    except ann.InvalidParameterError as error:
        raise _config_error(error) from None

    val_size, test_size, ensemble, threads = _split_ensemble_threads(config["training"])

    dataset, dataset_options = _dataset(config["dataset"])
    tracking = _tracking(config["tracking"])
    return RunSpec(
        model_kwargs=model_kwargs,
        dataset=dataset,
        dataset_options=dataset_options,
        val_size=val_size,
        test_size=test_size,
        split_seed=model_kwargs.get("seed", 0) or 0,
        tracking=tracking,
        config=config,
        ensemble=ensemble,
        threads=threads,
    )


def _collect(section: dict, group: str, keys: Mapping[str, str], out: dict, extra: Iterable[str] = ()) -> None:
    extra = tuple(extra)
    for key, value in section.items():
        if key in extra:
            continue
        if key not in keys:
            allowed = ", ".join([*keys, *extra])
            raise ConfigError(f"{group}.{key}", value, f"a key of {group}: one of {allowed}")
        engine_name = keys[key]
        out[engine_name] = _check_engine(f"{group}.{key}", engine_name, value)


def _schedule(section: Any) -> dict[str, Any]:
    """The engine arguments of ``training.schedule``: its name and the settings it reads.

    Every key is checked; the settings of other schedules are left out (each schedule
    reads its own, :data:`ann.params.SCHEDULE_SETTINGS`).
    """
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError("training.schedule", section, "a mapping such as {name: cosine, warmup_epochs: 5}")
    checked: dict[str, Any] = {}
    _collect(section, "training.schedule", SCHEDULE_KEYS, checked)
    name = checked.get("lr_schedule", P.PARAMETERS_DEFAULTS["lr_schedule"])
    reads = P.SCHEDULE_SETTINGS[name]
    return {engine: value for engine, value in checked.items() if engine == "lr_schedule" or engine in reads}


def schedule_keys(name: str) -> tuple[str, ...]:
    """The ``training.schedule`` keys schedule ``name`` reads, ``name`` first."""
    reads = P.SCHEDULE_SETTINGS.get(name, ())
    return ("name", *(key for key, engine in SCHEDULE_KEYS.items() if engine in reads))


def _check_engine(key: str, engine_name: str, value: Any) -> Any:
    try:
        return P.check(engine_name, value)
    except ann.InvalidParameterError as error:
        suffix = error.name[len(engine_name):] if error.name.startswith(engine_name) else ""
        raise ConfigError(key + suffix, error.value if suffix else value, error.allowed) from None


def _config_error(error: ann.InvalidParameterError) -> ConfigError:
    name = error.name
    base, bracket, rest = name.partition("[")
    key = _ENGINE_TO_KEY.get(base, name)
    return ConfigError(key + bracket + rest, error.value, error.allowed)


def _split_ensemble_threads(training: dict) -> tuple[float, float, int, int | None]:
    """``training.val_size``, ``test_size``, ``ensemble`` and ``threads`` (None: auto), checked."""
    val_size = _fraction("training.val_size", training.get("val_size", 0.15))
    test_size = _fraction("training.test_size", training.get("test_size", 0.15))
    if val_size + test_size >= 1.0:
        raise ConfigError("training.val_size", val_size, f"a fraction with val_size + test_size < 1 (test_size={test_size:g})")
    ensemble = training.get("ensemble", 1)
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or not 1 <= ensemble <= MAX_ENSEMBLE:
        raise ConfigError("training.ensemble", ensemble, f"an integer in [1, {MAX_ENSEMBLE}] (networks averaged)")
    threads = training.get("threads", "auto")
    if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError("training.threads", threads, "auto or a positive integer (BLAS threads)")
    return val_size, test_size, ensemble, None if threads == "auto" else threads


def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value < 1:
        raise ConfigError(key, value, "a fraction in [0, 1)")
    return float(value)


def _dataset(section: dict) -> tuple[str, dict[str, Any]]:
    name = section.get("name")
    if name not in DATASETS:
        raise ConfigError("dataset.name", name, "one of " + ", ".join(DATASETS) + " (choose with dataset=<name>)")
    loader_params = inspect.signature(DATASETS[name]).parameters
    options = {}
    for key, value in section.items():
        if key == "name":
            continue
        if key not in loader_params:
            allowed = ", ".join(loader_params) or "none"
            raise ConfigError(f"dataset.{key}", value, f"an option of dataset {name!r}: one of {allowed}")
        if key in PATH_OPTIONS and value is not None:
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                raise ConfigError(f"dataset.{key}", value, "a file or folder path")
            value = absolute_path(value)
        options[key] = value
    for key, spec in loader_params.items():
        if spec.default is inspect.Parameter.empty and key not in options:
            raise UserError(f"dataset.{key} is missing: dataset {name!r} needs it, e.g. {_missing_hint('dataset.' + key, name)}")
    return name, options


def _tracking(section: dict) -> TrackingSettings:
    defaults = TrackingSettings()
    known = set(TrackingSettings.__dataclass_fields__)
    for key, value in section.items():
        if key not in known:
            raise ConfigError(f"tracking.{key}", value, "a key of tracking: one of " + ", ".join(known))
    values = {**defaults.__dict__, **section}
    for key in ("enabled", "log_model", "system_metrics"):
        if not isinstance(values[key], bool):
            raise ConfigError(f"tracking.{key}", values[key], "true or false")
    for key in ("flush_interval", "probe_timeout", "system_metrics_interval"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise ConfigError(f"tracking.{key}", value, "a number of seconds in (0, 3600]")
        values[key] = float(value)
    if values["enabled"]:
        uri = values["uri"]
        if not isinstance(uri, str) or not uri.strip():
            raise ConfigError("tracking.uri", uri, "an MLflow tracking URI, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000")
        name = values["experiment_name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("tracking.experiment_name", name, "a non-empty experiment name")
    for key in ("run_name", "artifact_location"):  # a number on the command line: its text
        values[key] = None if values[key] is None else str(values[key])
    return TrackingSettings(**values)


# ------------------------------------------------------------------------ logging


def format_value(value: Any) -> str:
    """A config value as a readable MLflow param (YAML spelling: true, null, [64, 32])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def run_params(spec: RunSpec, resolved: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The flattened config as MLflow params, named like the command-line keys.

    ``model.hidden_layers=[64, 32]`` also gives ``model.n_hidden_layers=2``,
    ``model.layer_1_units=64`` and ``model.layer_2_units=32``; ``resolved`` adds values
    known once the data is loaded (``model.output_activation``, ``dataset.task``, ...).
    The tracking group is left out (its URI may hold credentials).
    """
    config = spec.config
    params: dict[str, Any] = {}
    model = dict(config["model"])
    hidden = list(model.get("hidden_layers", []))
    for key, value in model.items():
        params[f"model.{key}"] = value
        if key == "hidden_layers":
            params["model.n_hidden_layers"] = len(hidden)
            for index, width in enumerate(hidden, start=1):
                params[f"model.layer_{index}_units"] = width
    for group in ("optimizer", "dataset", "training"):
        for key, value in config[group].items():
            if group == "training" and key == "schedule" and isinstance(value, dict):
                # Only the keys the chosen schedule reads: the others are not in effect.
                for setting in schedule_keys(value.get("name", P.PARAMETERS_DEFAULTS["lr_schedule"])):
                    if setting in value:
                        params[f"training.schedule.{setting}"] = value[setting]
                continue
            params[f"{group}.{key}"] = value
    for key, value in spec.dataset_options.items():
        if key in PATH_OPTIONS:
            params[f"dataset.{key}"] = value
    params.update(resolved or {})
    return {key: format_value(value) for key, value in params.items()}


def resolved_yaml(spec: RunSpec) -> str:
    """The resolved config as YAML, every credential in it redacted."""
    return redact(OmegaConf.to_yaml(OmegaConf.create(dict(spec.config))))


def _missing_hint(key: str, dataset: str | None = None) -> str:
    if key == "dataset.path" and dataset in ("mnist", "fashion_mnist"):
        return f"dataset.path=data/{dataset}"
    examples = {"dataset.path": "dataset.path=data.csv", "dataset.target": "dataset.target=label"}
    return examples.get(key, f"{key}=...")
