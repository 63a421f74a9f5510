"""The ``sweep`` config section, checked once before any trial runs (:func:`parse_settings`).

Everything but ``params``, which :mod:`sweeps.config.space` parses: the study's name and
storage, the metrics and directions, how many trials for how long, the sampler and the pruner
(``sweep.sampler`` / ``sweep.pruner`` hold ``name`` and that sampler's settings; settings of
another sampler are ignored, so that ``sweep.sampler.name=random`` needs nothing else, while a
setting no sampler has is refused), heartbeats and re-runs, the champion's registration, cross-validated trials (``cv_folds``),
the champion's refit as an ensemble (``ensemble``).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sweeps.config.run_spec import MAX_ENSEMBLE
from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError
from sweeps.core.storage import storage_kind

#: Metrics a sweep can optimise: MLflow name -> (engine key in the epoch logs or None
#: for a metric known only at the end, natural direction, tasks it exists for).
METRICS: dict[str, tuple[str | None, str, tuple[str, ...]]] = {
    V.LOSS_VAL: ("val_loss", "minimize", ("binary", "multiclass", "regression")),
    "accuracy/val": ("val_accuracy", "maximize", ("binary", "multiclass")),
    "mae/val": ("val_mae", "minimize", ("regression",)),
    "rmse/val": ("val_rmse", "minimize", ("regression",)),
    "r2/val": ("val_r2", "maximize", ("regression",)),
    V.N_PARAMETERS: (None, "minimize", ("binary", "multiclass", "regression")),
    V.FIT_SECONDS: (None, "minimize", ("binary", "multiclass", "regression")),
}
DIRECTIONS = ("minimize", "maximize")

#: Sampler name -> {setting: kind}; kinds: "int>=0", "int>=1", "int>=2", "bool", "float>0".
SAMPLERS: dict[str, dict[str, str]] = {
    "tpe": {"n_startup_trials": "int>=0", "multivariate": "bool", "constant_liar": "bool", "group": "bool"},
    "random": {},
    "grid": {},
    "cmaes": {"n_startup_trials": "int>=0", "sigma0": "float>0", "popsize": "int>=2", "with_margin": "bool"},
    "nsga2": {"population_size": "int>=2", "crossover_prob": "prob", "swapping_prob": "prob"},
}
#: Pruner name -> {setting: kind}.
PRUNERS: dict[str, dict[str, str]] = {
    "median": {"n_startup_trials": "int>=0", "n_warmup_steps": "int>=0", "interval_steps": "int>=1"},
    "hyperband": {"min_resource": "int>=1", "max_resource": "int>=1", "reduction_factor": "int>=2"},
    "successive_halving": {"min_resource": "int>=1", "reduction_factor": "int>=2", "min_early_stopping_rate": "int>=0"},
    "none": {},
}
MULTI_OBJECTIVE_SAMPLERS = ("nsga2", "random", "grid", "tpe")


@dataclass(frozen=True)
class SweepSettings:
    """The checked ``sweep`` section (without ``params``)."""

    study_name: str
    storage: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    n_trials: int
    timeout: float | None = None    # seconds after which no new trial starts (sweep.budget or sweep.timeout)
    budget: float | None = None     # sweep.budget in seconds: also prunes the trials still running then
    workers: int = 1
    max_failures: int | None = 5
    seed: int | None = 0
    sampler: str = "tpe"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    pruner: str = "median"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    refresh_every: int = 5
    top_k: int = 8
    register_name: str | None = None
    register_alias: str = "champion"
    heartbeat_interval: int | None = None
    grace_period: int | None = None
    max_retries: int = 2
    outage_wait: float = 120.0
    plotlyjs: str = "embed"
    allow_space_change: bool = False  # resume a study whose search space differs (recorded on the parent run)
    refit: bool = False               # retrain the champion on training + validation rows (sweeps.study.refit)
    cv_folds: int | None = None       # k-fold cross-validated trials (sweeps.study.cv_folds); None: one validation split
    ensemble: int = 1                 # networks the champion's refit trains and averages (ann.Ensemble)

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    @property
    def metric(self) -> str:
        """The first (or only) metric: the one reported per epoch and pruned on."""
        return self.metrics[0]

    @property
    def epoch_key(self) -> str | None:
        """The key of the first metric in the per-epoch logs (None: known only at the end)."""
        return METRICS[self.metric][0]

    @property
    def prunes(self) -> bool:
        return self.pruner != "none"

    @property
    def heartbeats(self) -> bool:
        """Whether running trials write heartbeats (an RDB storage and an interval)."""
        return self.heartbeat_interval is not None and storage_kind(self.storage) != "journal"

    @property
    def grace_seconds(self) -> int | None:
        """Seconds without a heartbeat after which a RUNNING trial is failed (None: no heartbeats)."""
        if not self.heartbeats:
            return None
        return self.grace_period if self.grace_period is not None else 2 * int(self.heartbeat_interval)


# ----------------------------------------------------------------------------- parse

_KNOWN_KEYS = (
    "study_name", "storage", "metric", "direction", "n_trials", "budget", "timeout", "workers", "max_failures",
    "seed", "sampler", "pruner", "params", "refresh_every", "top_k", "register", "heartbeat_interval",
    "grace_period", "max_retries", "outage_wait", "plotlyjs", "enqueue", "allow_space_change", "refit", "epochs",
    "cv_folds", "ensemble",
)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(key: str, value: Any) -> float:
    """``90``, ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2.5h"`` -> seconds (> 0); else a ConfigError."""
    allowed = "a duration such as 90s, 10m, 1h30m or 2.5h (or a number of seconds > 0), or null for none"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (found := _DURATION.fullmatch(value.strip().lower())) and any(found.groups()):
        hours, minutes, secs = (float(group or 0) for group in found.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    else:
        raise ConfigError(key, value, allowed)
    if not 0 < seconds < math.inf:
        raise ConfigError(key, value, allowed)
    return seconds


def format_duration(seconds: float) -> str:
    """``605`` -> ``10:05``, ``3725`` -> ``1:02:05``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_settings(section: Mapping[str, Any]) -> SweepSettings:
    """Check the ``sweep`` section; every problem is a :class:`ConfigError` naming its key."""
    if not isinstance(section, Mapping):
        raise ConfigError("sweep", section, "a config group: choose one with sweep=<option>")
    for key in section:
        if key not in _KNOWN_KEYS:
            raise ConfigError(f"sweep.{key}", section[key], "a key of sweep: one of " + ", ".join(_KNOWN_KEYS))
    study_name = section.get("study_name")
    if not isinstance(study_name, str) or not study_name.strip():
        raise ConfigError("sweep.study_name", study_name, "a non-empty name")
    storage = section.get("storage")
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError("sweep.storage", storage, "a storage URL such as sqlite:///optuna.db, or a journal file such as optuna.log")
    metrics = _metrics(section)
    cv_folds = _cv_folds(section, metrics)
    ensemble = _ensemble(section, cv_folds, metrics)
    return SweepSettings(
        study_name=study_name.strip(), storage=storage.strip(), metrics=tuple(metrics),
        directions=_directions(section, metrics), **_limits(section), **_faults(section),
        **_components(section, metrics), **_register(section),
        allow_space_change=_flag(section, "allow_space_change"),
        refit=_flag(section, "refit") or cv_folds is not None or ensemble > 1, cv_folds=cv_folds, ensemble=ensemble,
    )


#: The most folds ``sweep.cv_folds`` takes (leave-one-out is not what it is for).
MAX_CV_FOLDS = 20


def _cv_folds(section: Mapping[str, Any], metrics: Sequence[str]) -> int | None:
    """``sweep.cv_folds``: null or 1 (one split: None), or 2..20 folds, for one metric only; ``auto`` is None until
    resolved from the data (:func:`sweeps.study.data_scaled.auto_cv_folds`). Such a sweep always refits its
    champion (``refit`` is forced on: its trials' models were each trained on a part of the rows only)."""
    value = section.get("cv_folds")
    if value is None or value == "auto" or (value == 1 and not isinstance(value, bool)):
        return None
    folds = _integer(section, "cv_folds", 2, high=MAX_CV_FOLDS, allowed=f"an integer in [2, {MAX_CV_FOLDS}] "
                     "(folds of the training + validation rows), auto (from the rows), or null / 1 for one "
                     "validation split")
    if len(metrics) > 1:
        raise ConfigError("sweep.cv_folds", folds, "null for a sweep of several metrics (cross-validated trials "
                          "are refitted on all rows, and such a sweep has no single champion to refit)")
    return folds


def _ensemble(section: Mapping[str, Any], cv_folds: int | None, metrics: Sequence[str]) -> int:
    """``sweep.ensemble``: 1-20 networks (more force ``refit``; one metric only); ``auto``: a cross-validated trial's, else 1."""
    if section.get("ensemble") == "auto":
        return cv_folds or 1
    ensemble = _integer(section, "ensemble", 1, default=1, high=MAX_ENSEMBLE, allowed=f"an integer in [1, {MAX_ENSEMBLE}] "
                        "(networks the champion's refit averages), or auto (the folds of a cross-validated sweep, else 1)")
    if ensemble > 1 and len(metrics) > 1:
        raise ConfigError("sweep.ensemble", ensemble, "1 for a sweep of several metrics (it has no single champion to refit)")
    return ensemble


def _metrics(section: Mapping[str, Any]) -> list[str]:
    metrics = _as_list(section.get("metric", V.LOSS_VAL))
    if not metrics:
        raise ConfigError("sweep.metric", section.get("metric"), "a metric name or a list of them")
    for index, metric in enumerate(metrics):
        if metric not in METRICS:
            key = "sweep.metric" if len(metrics) == 1 else f"sweep.metric[{index}]"
            raise ConfigError(key, metric, "one of " + ", ".join(METRICS))
    if len(set(metrics)) != len(metrics):
        raise ConfigError("sweep.metric", metrics, "a list without repeated metrics")
    if METRICS[metrics[0]][0] is None and len(metrics) == 1:
        raise ConfigError("sweep.metric", metrics[0], "a validation metric (" + ", ".join(k for k, v in METRICS.items() if v[0]) + ") or a list starting with one")
    if METRICS[metrics[0]][0] is None:
        raise ConfigError("sweep.metric[0]", metrics[0], "a validation metric: the first metric is the one reported every epoch")
    return metrics


def _directions(section: Mapping[str, Any], metrics: Sequence[str]) -> tuple[str, ...]:
    raw_direction = section.get("direction", "auto")
    directions = _as_list(raw_direction)
    if len(directions) == 1 and len(metrics) > 1:
        directions = directions * len(metrics)
    if len(directions) != len(metrics):
        raise ConfigError("sweep.direction", raw_direction, f"one direction per metric ({len(metrics)}: {', '.join(metrics)}), or auto")
    resolved = []
    for metric, direction in zip(metrics, directions):
        if direction in (None, "auto"):
            direction = METRICS[metric][1]
        if direction not in DIRECTIONS:
            raise ConfigError("sweep.direction", raw_direction, "minimize, maximize or auto (a list for several metrics)")
        resolved.append(direction)
    return tuple(resolved)


def _limits(section: Mapping[str, Any]) -> dict[str, Any]:
    """How many trials, for how long, on how many workers, how many failures, the seed, the refresh."""
    n_trials = _integer(section, "n_trials", 1, required=True)
    timeout = section.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout < math.inf):
        raise ConfigError("sweep.timeout", timeout, "a number of seconds > 0, or null for no time limit")
    budget = section.get("budget")
    if budget is not None:
        if timeout is not None:
            raise ConfigError("sweep.budget", budget, f"null when sweep.timeout={timeout:g} is set (one time limit: keep sweep.budget)")
        budget = timeout = parse_duration("sweep.budget", budget)
    workers = _integer(section, "workers", 1, default=1, high=256)
    max_failures = None if section.get("max_failures", 5) is None else _integer(section, "max_failures", 0, default=5)
    seed = None if section.get("seed", 0) is None else _integer(section, "seed", 0, default=0, high=2**31 - 1)
    return {"n_trials": n_trials, "timeout": float(timeout) if timeout is not None else None, "budget": budget,
            "workers": workers, "max_failures": max_failures, "seed": seed,
            "refresh_every": _integer(section, "refresh_every", 1, default=5),
            "top_k": _integer(section, "top_k", 1, default=8, high=50)}


def _faults(section: Mapping[str, Any]) -> dict[str, Any]:
    """Heartbeats, the grace period, re-runs, how long to wait for a tracking server; the plots' script."""
    heartbeat = section.get("heartbeat_interval")
    if heartbeat is not None:
        heartbeat = _integer(section, "heartbeat_interval", 1, default=None)
    grace = section.get("grace_period")
    if grace is not None:
        grace = _integer(section, "grace_period", 1, default=None)
        if heartbeat is not None and grace <= heartbeat:
            raise ConfigError("sweep.grace_period", grace, f"more seconds than sweep.heartbeat_interval={heartbeat} "
                              "(a live trial writes one heartbeat per interval), or null for twice the interval")
    max_retries = _integer(section, "max_retries", 0, default=2, high=100)
    outage_wait = section.get("outage_wait", 120)
    if isinstance(outage_wait, bool) or not isinstance(outage_wait, numbers.Real) or not 0 <= outage_wait < math.inf:
        raise ConfigError("sweep.outage_wait", outage_wait, "a number of seconds >= 0")
    plotlyjs = section.get("plotlyjs", "embed")
    if plotlyjs not in ("embed", "cdn"):
        raise ConfigError("sweep.plotlyjs", plotlyjs, "embed (the plots work offline, ~2 MB) or cdn (small, needs the internet to show)")
    return {"heartbeat_interval": heartbeat, "grace_period": grace, "max_retries": max_retries,
            "outage_wait": float(outage_wait), "plotlyjs": plotlyjs}


def _components(section: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, Any]:
    """The sampler and the pruner, each with its settings."""
    sampler, sampler_options = _component(section.get("sampler", {"name": "tpe"}), "sampler", SAMPLERS)
    pruner, pruner_options = _component(section.get("pruner", {"name": "median"}), "pruner", PRUNERS)
    if len(metrics) > 1:
        if pruner != "none":
            raise ConfigError("sweep.pruner.name", pruner, "none for a multi-objective sweep (Optuna cannot prune those)")
        if sampler not in MULTI_OBJECTIVE_SAMPLERS:
            raise ConfigError("sweep.sampler.name", sampler, "a multi-objective sampler: one of " + ", ".join(MULTI_OBJECTIVE_SAMPLERS))
    elif sampler == "nsga2":
        raise ConfigError("sweep.sampler.name", sampler, "a single-objective sampler (tpe, random, grid, cmaes): nsga2 needs a list of metrics")
    return {"sampler": sampler, "sampler_options": sampler_options, "pruner": pruner, "pruner_options": pruner_options}


def _register(section: Mapping[str, Any]) -> dict[str, Any]:
    """Where the champion model is registered: ``sweep.register.name`` and ``.alias``."""
    register = section.get("register") or {}
    if not isinstance(register, Mapping):
        raise ConfigError("sweep.register", register, "a mapping {name: ..., alias: ...}")
    for key in register:
        if key not in ("name", "alias"):
            raise ConfigError(f"sweep.register.{key}", register[key], "a key of sweep.register: name or alias")
    register_name = register.get("name")
    if register_name is not None and (not isinstance(register_name, str) or not register_name.strip()):
        raise ConfigError("sweep.register.name", register_name, "a registered model name, or null for the study name")
    alias = register.get("alias", "champion")
    if not isinstance(alias, str) or not alias.strip() or not alias.replace("_", "").replace("-", "").isalnum() or alias[0].isdigit():
        raise ConfigError("sweep.register.alias", alias, "an alias of letters, digits, - and _ (not starting with a digit), e.g. champion")
    return {"register_name": register_name.strip() if register_name else None, "register_alias": alias}


def _flag(section: Mapping[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"sweep.{key}", value, "true or false")
    return value


def check_metrics_for_task(settings: SweepSettings, task: str, has_validation: bool) -> None:
    """Refuse a metric the task does not have, or a validation metric without validation data."""
    for index, metric in enumerate(settings.metrics):
        key = "sweep.metric" if len(settings.metrics) == 1 else f"sweep.metric[{index}]"
        tasks = METRICS[metric][2]
        if task not in tasks:
            fitting = [m for m, (_, _, t) in METRICS.items() if task in t]
            raise ConfigError(key, metric, f"a metric of a {task} task: one of " + ", ".join(fitting))
        if metric.endswith("/val") and not has_validation:
            raise ConfigError(key, metric, "a metric that exists: there is no validation data (set training.val_size > 0)")


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping)):
        return list(value)
    return [value]


def _integer(section: Mapping[str, Any], key: str, low: int, *, default: int | None = None,
             required: bool = False, high: int | None = None, allowed: str | None = None) -> int:
    value = section.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and float(value).is_integer()
    if ok:
        value = int(value)
        ok = value >= low and (high is None or value <= high)
    if not ok:
        bound = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"sweep.{key}", value, allowed or bound)
    return value


def _component(section: Any, what: str, table: Mapping[str, Mapping[str, str]]) -> tuple[str, dict[str, Any]]:
    if isinstance(section, str):
        section = {"name": section}
    if not isinstance(section, Mapping):
        raise ConfigError(f"sweep.{what}", section, f"a mapping {{name: ...}} with the {what}'s settings")
    name = section.get("name")
    if name not in table:
        raise ConfigError(f"sweep.{what}.name", name, "one of " + ", ".join(table))
    options = {}
    known = {key for kinds in table.values() for key in kinds}
    for key, value in section.items():
        if key == "name":
            continue
        kinds = table[name]
        if key not in kinds:
            if key in known:  # a setting of another one: switching with sweep.<what>.name=... keeps it
                continue
            allowed = ", ".join(kinds) or "none"
            raise ConfigError(f"sweep.{what}.{key}", value, f"a setting of {what} {name!r}: one of {allowed}")
        if value is None:
            continue
        options[key] = _check_kind(f"sweep.{what}.{key}", value, kinds[key])
    return name, options


def _check_kind(key: str, value: Any, kind: str) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return value
    if kind.startswith("int>="):
        low = int(kind[5:])
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer() or value < low:
            raise ConfigError(key, value, f"an integer >= {low}")
        return int(value)
    if kind == "float>0":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
            raise ConfigError(key, value, "a number > 0")
        return float(value)
    if kind == "prob":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
            raise ConfigError(key, value, "a number in [0, 1]")
        return float(value)
    raise AssertionError(kind)
