"""The Optuna side of a sweep: settings, storage, sampler, pruner, and the study itself.

* :func:`parse_settings` checks the ``sweep`` config section (everything but ``params``,
  which :mod:`sweeps.config.space` parses) before any trial runs.
* :func:`open_storage` opens ``sweep.storage``: an SQLAlchemy URL (``sqlite:///optuna.db``,
  ``postgresql://user@host/db``, ``mysql://...``) or, for a value without ``://``, an
  Optuna journal file (``optuna.log``). The SQLite default is what ``optuna-dashboard
  sqlite:///optuna.db`` reads. Several processes may share an SQLite file (they wait up
  to :data:`SQLITE_BUSY_TIMEOUT` seconds for each other's writes) or a journal file
  (Optuna locks it); several machines share PostgreSQL.
* :func:`make_sampler` / :func:`make_pruner` build Optuna's objects from the settings.
  ``sweep.sampler`` / ``sweep.pruner`` hold ``name`` and that sampler's (pruner's) settings;
  settings that belong to another sampler (pruner) are ignored, so that switching with
  ``sweep.sampler.name=random`` needs nothing else, while a setting no sampler has is refused.
* :func:`create_or_resume` creates the study, or loads one of the same name and checks
  that it optimises the same metrics in the same directions (stored as the study's user
  attributes ``sweep.metrics`` / ``sweep.directions`` when it was created).

What counts toward ``n_trials`` (:func:`counts_toward_budget`): COMPLETE and PRUNED
trials, and FAILED ones that failed with a reason (the training raised). Trials that were
interrupted (Ctrl-C, SIGTERM), failed because their worker died (no heartbeat) or because
the tracking server did not answer (``retryable``), or are left RUNNING by a killed
process do not: they are re-run (see :func:`retry_trial`) or replaced, so that the study
ends with exactly ``n_trials`` counted trials (:mod:`sweeps.study.claims`).

Heartbeats (:func:`open_storage`): with an RDB storage (SQLite, PostgreSQL, MySQL) every
running trial writes a heartbeat every ``sweep.heartbeat_interval`` seconds; a RUNNING
trial whose heartbeat is older than ``sweep.grace_period`` is failed by the next worker
that looks (or by ``ann-sweep-status``) and re-run with the same values, up to
``sweep.max_retries`` times (Optuna's ``RetryHeartbeatStaleTrialCallback``, formerly
``RetryFailedTrialCallback``). A journal file has no heartbeats.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from sweeps.core import vocabulary as V
from sweeps.core.drivers import missing_driver
from sweeps.core.locks import database_lock
from sweeps.core.errors import ConfigError, UserError, one_line, root_cause
from sweeps.core.faults import is_busy, retry_on_faults
from sweeps.core.redaction import redact
from sweeps.core.storage import absolute_path, application_name, sqlite_path, storage_kind, with_driver

#: Seconds an SQLite writer waits for another process's lock before giving up.
SQLITE_BUSY_TIMEOUT = 120
#: Seconds a PostgreSQL session of a storage without heartbeats may sit idle inside a
#: transaction before the server ends it (with heartbeats: the grace period).
IDLE_IN_TRANSACTION_TIMEOUT = 60

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
    "grace_period", "max_retries", "outage_wait", "plotlyjs", "enqueue", "allow_space_change",
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
    max_failures = section.get("max_failures", 5)
    if max_failures is not None:
        max_failures = _integer(section, "max_failures", 0, default=5)
    seed = section.get("seed", 0)
    if seed is not None:
        seed = _integer(section, "seed", 0, default=0, high=2**31 - 1)
    refresh_every = _integer(section, "refresh_every", 1, default=5)
    top_k = _integer(section, "top_k", 1, default=8, high=50)
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

    sampler, sampler_options = _component(section.get("sampler", {"name": "tpe"}), "sampler", SAMPLERS)
    pruner, pruner_options = _component(section.get("pruner", {"name": "median"}), "pruner", PRUNERS)
    if len(metrics) > 1:
        if pruner != "none":
            raise ConfigError("sweep.pruner.name", pruner, "none for a multi-objective sweep (Optuna cannot prune those)")
        if sampler not in MULTI_OBJECTIVE_SAMPLERS:
            raise ConfigError("sweep.sampler.name", sampler, "a multi-objective sampler: one of " + ", ".join(MULTI_OBJECTIVE_SAMPLERS))
    elif sampler == "nsga2":
        raise ConfigError("sweep.sampler.name", sampler, "a single-objective sampler (tpe, random, grid, cmaes): nsga2 needs a list of metrics")

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

    return SweepSettings(
        study_name=study_name.strip(),
        storage=storage.strip(),
        metrics=tuple(metrics),
        directions=tuple(resolved),
        n_trials=n_trials,
        timeout=float(timeout) if timeout is not None else None,
        budget=budget,
        workers=workers,
        max_failures=max_failures,
        seed=seed,
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        pruner_options=pruner_options,
        refresh_every=refresh_every,
        top_k=top_k,
        register_name=register_name.strip() if register_name else None,
        register_alias=alias,
        heartbeat_interval=heartbeat,
        grace_period=grace,
        max_retries=max_retries,
        outage_wait=float(outage_wait),
        plotlyjs=plotlyjs,
        allow_space_change=_flag(section, "allow_space_change"),
    )


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
             required: bool = False, high: int | None = None) -> int:
    value = section.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and float(value).is_integer()
    if ok:
        value = int(value)
        ok = value >= low and (high is None or value <= high)
    if not ok:
        bound = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"sweep.{key}", value, bound)
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


# --------------------------------------------------------------------------- storage


def open_storage(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 max_retries: int | None = None):
    """Open (and create if needed) the Optuna storage at ``url``.

    With an RDB storage and ``heartbeat_interval``, running trials write heartbeats and a
    trial without one for ``grace_period`` seconds (default: twice the interval) is failed
    by the next worker that looks, then re-run with the same values up to ``max_retries``
    times (Optuna's ``RetryHeartbeatStaleTrialCallback``). A journal file keeps no
    heartbeats: the settings are ignored there.

    Several processes may open a fresh PostgreSQL or MySQL database at once: the first one
    creates Optuna's tables while the others wait on a database lock. Every call of the
    storage survives a lost connection (:mod:`sweeps.study.storage_faults`).

    Raises:
        UserError: ``sweep.storage=... cannot be opened: <why>`` (one line).
    """
    import optuna

    kind = storage_kind(url)

    def fail(problem: str) -> UserError:
        return UserError(f"sweep.storage={redact(url)!r} cannot be opened: {problem}")

    if kind == "journal":
        path = Path(absolute_path(url))
        if not path.parent.is_dir():
            raise fail(f"its folder {path.parent} does not exist")
        if path.is_dir():
            raise fail("it is a folder; give a journal file such as optuna.log, or a URL such as sqlite:///optuna.db")
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise fail("it is not writable")
        try:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as error:
            raise fail(one_line(root_cause(error), 240)) from None
    if kind not in ("sqlite", "postgresql", "mysql", "oracle", "mssql"):
        raise fail("expected sqlite:///file.db, postgresql://user@host/db, mysql://... or a journal file path such as optuna.log")
    engine_kwargs: dict[str, Any] = {}
    if kind == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            if not path.parent.exists():
                raise fail(f"the folder {path.parent} of the SQLite file does not exist")
            if path.exists() and path.is_dir():
                raise fail(f"{path} is a folder")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    elif kind in ("postgresql", "mysql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        if kind == "postgresql":  # who holds a connection, in pg_stat_activity
            engine_kwargs["connect_args"]["application_name"] = application_name()
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat_interval is not None:
        grace_period = int(grace_period) if grace_period is not None else 2 * int(heartbeat_interval)
        kwargs.update(heartbeat_interval=int(heartbeat_interval), grace_period=grace_period)
        if max_retries:
            kwargs["heartbeat_stale_trial_callback"] = retry_callback(max_retries)
    if kind == "postgresql":
        # A worker stopped (SIGSTOP, a frozen VM) inside one of Optuna's transactions keeps
        # its row locks, and every other worker that fails its stale trial waits on them.
        # The server ends such a session after the grace period (or a minute): its locks go
        # with it, and the stalled worker, on waking, finds its trial failed.
        idle = 1000 * (grace_period if heartbeat_interval is not None else IDLE_IN_TRANSACTION_TIMEOUT)
        engine_kwargs["connect_args"]["options"] = f"-c idle_in_transaction_session_timeout={idle}"
    from sweeps.study.storage_faults import RetryingRDBStorage

    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with database_lock(with_driver(url), "ann-sweep:create-tables"):
                    # A server with no free connection slot (or starting up) is waited for,
                    # like the lock above; anything else is said at once.
                    return retry_on_faults(lambda: RetryingRDBStorage(with_driver(url), shown_url=redact(url), **kwargs),
                                           redact(url), retryable=is_busy)
        except Exception as error:  # driver missing, refused, not a database, ...
            driver = missing_driver(error, url)
            if driver is not None:
                raise fail(driver) from None
            text = one_line(root_cause(error), 240)
            if attempt < 3 and any(m in text for m in ("already exists", "duplicate key", "UNIQUE constraint", "Duplicate entry")):
                import random
                import time

                time.sleep(0.2 + random.random())  # another process created the tables meanwhile
                continue
            raise fail(text) from None
    raise AssertionError("unreachable")


def open_sweep_storage(settings: "SweepSettings"):
    """:func:`open_storage` with the sweep's heartbeat, grace period and retry settings."""
    heartbeat = settings.heartbeat_interval if settings.heartbeats else None
    return open_storage(settings.storage, heartbeat, settings.grace_period, settings.max_retries)


def retry_callback(max_retries: int):
    """Optuna's callback that re-runs a failed trial with the same values (``max_retries`` times)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
        return cls(max_retry=max_retries)


def retry_trial(study, trial, max_retries: int) -> bool:
    """Queue a re-run of ``trial`` (same values, state WAITING); False when its retries are used up.

    The new trial carries Optuna's system attributes ``failed_trial`` (the first trial of
    the series) and ``retry_history`` (every trial of the series so far).
    """
    history = list(trial.system_attrs.get(V.TRIAL_RETRY_HISTORY, []))
    if max_retries <= 0 or len(history) + 1 > max_retries:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry_callback(max_retries)(study, trial)
    return True


def retried_from(trial) -> int | None:
    """The number of the trial that ``trial`` re-runs (the last of its retry history), or None."""
    history = trial.system_attrs.get(V.TRIAL_RETRY_HISTORY) or []
    return int(history[-1]) if history else None


# --------------------------------------------------------------------- sampler/pruner


def make_sampler(settings: SweepSettings, space=None, worker: int = 0):
    """The sampler, seeded with ``sweep.seed + worker`` (each worker draws different values)."""
    import optuna

    seed = None if settings.seed is None else settings.seed + worker
    options = dict(settings.sampler_options)
    name = settings.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # Trials running in other workers count as bad for the model until they end, so
            # parallel workers do not all sample the same point.
            options.setdefault("constant_liar", settings.workers > 1 or storage_kind(settings.storage) in ("postgresql", "mysql"))
            return optuna.samplers.TPESampler(seed=seed, **options)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            if space is None:
                raise ValueError("the grid sampler needs the search space")
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        if name == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise UserError("sweep.sampler.name='cmaes' needs the cmaes package: pip install cmaes") from None
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False, **options)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **options)
    raise AssertionError(name)


def make_pruner(settings: SweepSettings, epochs: int):
    """The pruner; hyperband's ``max_resource`` defaults to the number of epochs."""
    import optuna

    options = dict(settings.pruner_options)
    name = settings.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "hyperband":
        options.setdefault("max_resource", epochs)
        options.setdefault("min_resource", max(1, epochs // 9))
        return optuna.pruners.HyperbandPruner(**options)
    if name == "successive_halving":
        options.setdefault("min_resource", max(1, epochs // 10))
        return optuna.pruners.SuccessiveHalvingPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise AssertionError(name)


# ----------------------------------------------------------------------------- study


def create_or_resume(settings: SweepSettings, storage, sampler=None, pruner=None):
    """Create the study, or load the one of the same name (checking metrics and directions).

    Returns ``(study, resumed)``.

    Raises:
        UserError: the stored study optimises other metrics or directions.
    """
    import optuna

    def load():
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)
        check_resumable(study, settings)
        return study, True

    # Several workers may start at once: whoever creates the study first wins, the others
    # get DuplicatedStudyError from the storage's unique constraint and load it.
    if settings.study_name in set(optuna.study.get_all_study_names(storage)):
        return load()
    try:
        study = optuna.create_study(
            study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner,
            directions=list(settings.directions),
        )
    except optuna.exceptions.DuplicatedStudyError:  # created meanwhile by another process
        return load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(settings.metrics))
    study.set_user_attr(V.ATTR_METRICS, list(settings.metrics))
    study.set_user_attr(V.ATTR_DIRECTIONS, list(settings.directions))
    return study, False


def check_resumable(study, settings: SweepSettings) -> None:
    """Refuse to resume a study that optimises other metrics or in other directions."""
    stored_directions = [d.name.lower() for d in study.directions]
    if stored_directions != list(settings.directions):
        raise UserError(
            f"sweep.direction={_show(settings.directions)} does not match study {settings.study_name!r} in "
            f"sweep.storage={redact(settings.storage)!r}, which was created to {_show(stored_directions)}: "
            f"use the same direction, or a new sweep.study_name"
        )
    stored_metrics = study.user_attrs.get(V.ATTR_METRICS)
    if stored_metrics is not None and list(stored_metrics) != list(settings.metrics):
        raise UserError(
            f"sweep.metric={_show(settings.metrics)} does not match study {settings.study_name!r} in "
            f"sweep.storage={redact(settings.storage)!r}, which optimises {_show(stored_metrics)}: "
            f"use the same metric, or a new sweep.study_name"
        )


def _show(values: Sequence[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else "[" + ",".join(values) + "]"


def counts_toward_budget(trial) -> bool:
    """Whether a finished trial counts toward ``n_trials`` (see the module docstring)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    attrs = trial.user_attrs
    return trial.state == TrialState.FAIL and bool(attrs.get(V.TRIAL_FAIL_REASON)) and not attrs.get(V.TRIAL_RETRYABLE)


def finished_count(study) -> int:
    """Trials that count toward ``n_trials``."""
    return sum(1 for trial in study.get_trials(deepcopy=False) if counts_toward_budget(trial))


def state_counts(study) -> dict[str, int]:
    """Trials per state name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ...)."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def best_trials(study) -> list:
    """The best trial (single objective) or the Pareto front, [] if none completed."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:
            return []
    return list(study.best_trials)


def storage_of(study):
    """The storage behind ``study``: Optuna keeps it private, and this is the one place that reads it."""
    return study._storage


def stored_trial(trial):
    """The stored state of a live trial (a FrozenTrial), or None when the storage cannot say."""
    try:
        return storage_of(trial.study).get_trial(trial._trial_id)
    except Exception:
        return None
