"""The search space of a sweep: parsed from YAML, checked against the engine, sampled by Optuna.

A space is the ``sweep.params`` section of the sweep config (``conf/sweep/*.yaml``).
Each entry names one searched setting and its distribution; ``null`` leaves the setting
at its value in the training config (not searched)::

    params:
      n_layers:   {low: 1, high: 3}                 # int range
      units:      {low: 16, high: 256, log: true}   # one width per layer, conditional on n_layers
      activation: {choices: [relu, tanh, elu]}      # categorical
      lr:         {low: 1.0e-4, high: 0.1, log: true}
      batch_size: {choices: [16, 32, 64, 128]}      # categorical, or {low: 16, high: 256, log: true}
      optimizer:  null                              # {choices: [adam, sgd, momentum]}
      l2:         null                              # {low: 1.0e-6, high: 1.0e-2, log: true}
      dropout:    null                              # {low: 0.0, high: 0.5}
      epochs:     null                              # {low: 10, high: 60}

Any other key of the training config is searched by its config path, as in Hydra's
Optuna sweeper: ``optimizer.beta1``, ``model.init``, ``training.schedule.warmup_epochs``
(written nested or with dots; Optuna names the parameter by its path)::

    params:
      optimizer: {choices: [adam, adamw]}
      optimizer.weight_decay: {low: 1.0e-5, high: 0.1, log: true}   # only when adamw is drawn
      training.schedule.name: {choices: [constant, cosine]}
      training.schedule.warmup_epochs: {low: 0, high: 10}          # only when cosine is drawn
      model: {init: {choices: [he, xavier]}}                       # nested spelling

A path is conditional on what reads it: an ``optimizer.<setting>`` is drawn only in
trials whose optimizer has that setting, a ``training.schedule.<setting>`` only in
trials whose schedule reads it. A path that is also a named setting (``optimizer.lr``)
is that setting.

Keys of an entry: ``low``/``high`` (inclusive), ``log`` (sample on a log scale; needs
``low > 0``), ``step`` (a grid spacing, not with ``log``) or ``choices`` (a list), and
``type`` (``int``, ``float``, ``categorical``; inferred when left out). ``units`` also
takes ``per_layer`` (default true: each hidden layer gets its own width, Optuna
parameters ``units_l1``, ``units_l2``, ... that exist only when the trial has that many
layers; false: one width ``units`` for every layer).

:func:`sweeps.config.space_parse.parse_space` checks every entry before any trial runs: known names, ``low < high``,
``log`` with ``low > 0``, and bounds (or choices) inside the engine's table of allowed
values (:mod:`ann.params`). Problems are :class:`~sweeps.core.errors.ConfigError` naming the
key as it is written on the command line (``sweep.params.lr.low``).

:meth:`SearchSpace.suggest` draws a trial's values from an :class:`optuna.trial.BaseTrial`
(a live ``Trial`` or a ``FixedTrial``); :meth:`SearchSpace.overrides` turns them into
config keys (``model.hidden_layers``, ``optimizer.lr``, ...).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

from ann import params as P
from sweeps.config.run_spec import MODEL_KEYS, OPTIMIZER_KEYS, SCHEDULE_KEYS, TRAINING_KEYS
from sweeps.core.errors import ConfigError

#: The largest number of hidden layers a space may ask for.
MAX_LAYERS = 16


@dataclass(frozen=True)
class Setting:
    """A setting a sweep can search: where it goes in the config and what the engine allows."""

    key: str                 # the config key it sets (``optimizer.lr``), or a derived one
    kind: str                # "int", "float" or "categorical": what a range of it means
    engine: str | None       # its name in ann.params (bounds and choices), None: own rule
    doc: str


#: The settings a space may search, by the name used in ``sweep.params`` and by Optuna.
SETTINGS: dict[str, Setting] = {
    "n_layers": Setting("model.hidden_layers", "int", None, "number of hidden layers"),
    "units": Setting("model.hidden_layers", "int", None, "width of each hidden layer"),
    "activation": Setting("model.activation", "categorical", "activation", "hidden activation"),
    "lr": Setting("optimizer.lr", "float", "lr", "learning rate"),
    "batch_size": Setting("training.batch_size", "int", "batch_size", "mini-batch size"),
    "optimizer": Setting("optimizer.name", "categorical", "optimizer", "the optimizer (its config group)"),
    "l2": Setting("training.l2", "float", "l2", "L2 weight decay"),
    "dropout": Setting("model.dropout", "float", "dropout", "dropout probability"),
    "epochs": Setting("training.epochs", "int", "epochs", "number of epochs"),
}
#: Config path -> engine argument, for every key a space may search by its path.
PATHS: dict[str, str] = {
    **{f"model.{key}": engine for key, engine in MODEL_KEYS.items()},
    **{f"optimizer.{key}": engine for key, engine in OPTIMIZER_KEYS.items()},
    **{f"training.{key}": engine for key, engine in TRAINING_KEYS.items()},
    **{f"training.schedule.{key}": engine for key, engine in SCHEDULE_KEYS.items()},
}
_SCHEDULE_NAME = "training.schedule.name"


@dataclass(frozen=True)
class Dimension:
    """One searched setting and its distribution (``choices`` for a categorical one)."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    per_layer: bool = True
    key: str | None = None   # the config key it sets (None: the named setting's)

    def suggest(self, trial, name: str | None = None) -> Any:
        """Draw a value from ``trial`` under Optuna parameter ``name`` (default: own name)."""
        name = name or self.name
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.step is not None:
            return trial.suggest_float(name, self.low, self.high, step=self.step)
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def grid(self, key: str) -> list:
        """Every value of the dimension, for the grid sampler (a float range needs ``step``)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ConfigError(key, {"low": self.low, "high": self.high}, "choices or a step for sampler 'grid' (a float range has no grid)")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [self.low + i * self.step for i in range(count)]

    def entry(self) -> dict[str, Any]:
        """The dimension as it is written in ``sweep.params``."""
        if self.type == "categorical":
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, **({"log": True} if self.log else {})}

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the dimension's values."""
        if self.type == "categorical":
            return any(value == c and type(value) is type(c) or (_number(value) and _number(c) and value == c)
                       for c in self.choices)
        if not _number(value) or not self.low <= value <= self.high:
            return False
        if self.type == "int" and not float(value).is_integer():
            return False
        if self.step is not None:
            steps = (value - self.low) / self.step
            return abs(steps - round(steps)) < 1e-9
        return True

    def describe(self) -> str:
        if self.type == "categorical":
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        scale = " log" if self.log else ""
        step = f" step {self.step:g}" if self.step else ""
        return f"{self.type} [{self.low:g}, {self.high:g}]{scale}{step}"


@dataclass(frozen=True)
class SearchSpace:
    """The parsed ``sweep.params``: the searched dimensions, in declaration order."""

    dimensions: dict[str, Dimension] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.dimensions

    @property
    def max_layers(self) -> int | None:
        n_layers = self.dimensions.get("n_layers")
        if n_layers is None:
            return None
        return int(n_layers.high) if n_layers.type == "int" else max(int(c) for c in n_layers.choices)

    def suggest(self, trial, base_layers: tuple[int, ...] = (32,),
                base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The trial's values by Optuna parameter name (``units_l1``, ``units_l2``, ... per layer).

        ``base_layers`` is the training config's ``model.hidden_layers``: the layer count
        when ``n_layers`` is not searched, the widths when ``units`` is not. ``base`` is
        the training config: its optimizer and schedule decide which conditional paths
        a trial draws when those are not searched.
        """
        values: dict[str, Any] = {}
        for name, dim in sorted(self.dimensions.items(), key=lambda item: _draw_order(item[1])):
            if name == "units":
                continue
            if dim.key is not None and not _read_by_trial(dim.key, values, base):
                continue
            values[name] = dim.suggest(trial)
            if name == "n_layers":
                n_layers = int(values[name])
                units = self.dimensions.get("units")
                if units is None:
                    continue
                if units.per_layer:
                    for index in range(1, n_layers + 1):
                        values[f"units_l{index}"] = units.suggest(trial, f"units_l{index}")
                elif n_layers:
                    values["units"] = units.suggest(trial)
        if "units" in self.dimensions and "n_layers" not in self.dimensions:
            units = self.dimensions["units"]
            if units.per_layer:
                for index in range(1, len(base_layers) + 1):
                    values[f"units_l{index}"] = units.suggest(trial, f"units_l{index}")
            elif base_layers:
                values["units"] = units.suggest(trial)
        return values

    def hidden_layers(self, values: Mapping[str, Any], base_layers: tuple[int, ...] = (32,)) -> list[int] | None:
        """The widths the values describe (None: the trial leaves ``model.hidden_layers`` alone)."""
        if "n_layers" not in values and not any(k == "units" or k.startswith("units_l") for k in values):
            return None
        n_layers = int(values.get("n_layers", len(base_layers)))
        default = base_layers[0] if base_layers else 32
        widths = []
        for index in range(1, n_layers + 1):
            width = values.get(f"units_l{index}", values.get("units"))
            if width is None:
                width = base_layers[index - 1] if index <= len(base_layers) else default
            widths.append(int(width))
        return widths

    def overrides(self, values: Mapping[str, Any], base_layers: tuple[int, ...] = (32,)) -> dict[str, Any]:
        """The config keys a trial's values set: ``{"model.hidden_layers": [64, 32], "optimizer.lr": 3e-3, ...}``.

        ``optimizer.name`` comes first: choosing an optimizer replaces the whole
        ``optimizer`` group, and ``optimizer.lr`` is set after it.
        """
        result: dict[str, Any] = {}
        if "optimizer" in values:
            result["optimizer.name"] = values["optimizer"]
        widths = self.hidden_layers(values, base_layers)
        if widths is not None:
            result["model.hidden_layers"] = widths
        for name, value in values.items():
            if name in ("n_layers", "units", "optimizer") or name.startswith("units_l"):
                continue
            dim = self.dimensions.get(name)
            key = dim.key if dim is not None and dim.key is not None else SETTINGS[name].key
            result[key] = _plain(value)
        return result

    def check_conditions(self, base: Mapping[str, Any]) -> None:
        """Refuse a searched path that no trial would draw (no candidate optimizer or schedule reads it)."""
        for name, dim in self.dimensions.items():
            if dim.key is None:
                continue
            group, _, setting = dim.key.partition(".")
            if group == "optimizer":
                names = self._candidates("optimizer", (base.get("optimizer") or {}).get("name"))
                engine = PATHS[dim.key]
                if not any(engine in P.OPTIMIZER_SETTINGS.get(n, ()) for n in names):
                    raise ConfigError(f"sweep.params.{name}", dim.entry(),
                                      f"a setting of an optimizer the sweep uses ({', '.join(map(str, names))}): "
                                      f"{engine} is read by " + ", ".join(o for o, s in P.OPTIMIZER_SETTINGS.items() if engine in s))
            elif dim.key.startswith("training.schedule.") and dim.key != _SCHEDULE_NAME:
                schedule = ((base.get("training") or {}).get("schedule") or {}).get("name", "constant")
                names = self._candidates(_SCHEDULE_NAME, schedule)
                engine = PATHS[dim.key]
                if not any(engine in P.SCHEDULE_SETTINGS.get(n, ()) for n in names):
                    raise ConfigError(f"sweep.params.{name}", dim.entry(),
                                      f"a setting of a schedule the sweep uses ({', '.join(map(str, names))}): "
                                      f"{setting.split('.', 1)[1]} is read by "
                                      + ", ".join(n for n, s in P.SCHEDULE_SETTINGS.items() if engine in s))

    def _candidates(self, name: str, base_value: Any) -> tuple:
        dim = self.dimensions.get(name)
        return dim.choices if dim is not None and dim.type == "categorical" else (base_value,)

    def check_enqueued(self, values: Any, key: str) -> dict[str, Any]:
        """One ``sweep.enqueue`` entry: Optuna parameter names of this space and values inside it.

        ``units`` with per-layer widths is a shorthand for the same width in every layer.
        """
        if not isinstance(values, Mapping) or not values:
            raise ConfigError(key, values, "a mapping of searched parameters, e.g. {n_layers: 2, units_l1: 128, lr: 0.003}")
        values = dict(values)
        units = self.dimensions.get("units")
        if "units" in values and units is not None and units.per_layer:
            width = values.pop("units")
            layers = values.get("n_layers", self.max_layers or 1)
            for index in range(1, int(layers) + 1):
                values.setdefault(f"units_l{index}", width)
        allowed = self.parameter_names()
        checked = {}
        for name, value in values.items():
            dim_name = "units" if name.startswith("units_l") and name[7:].isdigit() else name
            if name not in allowed:
                raise ConfigError(f"{key}.{name}", value, "a parameter of the search space: one of " + ", ".join(allowed))
            dim = self.dimensions[dim_name]
            if not dim.contains(value):
                raise ConfigError(f"{key}.{name}", value, f"a value of sweep.params.{dim_name}: {dim.describe()}")
            checked[name] = _plain(value)
        return checked

    def parameter_names(self) -> list[str]:
        """Every Optuna parameter name a trial of this space may have."""
        names = []
        for name, dim in self.dimensions.items():
            if name == "units" and dim.per_layer:
                layers = self.max_layers if self.max_layers is not None else 1
                names += [f"units_l{index}" for index in range(1, max(1, layers) + 1)]
            else:
                names.append(name)
        return names

    def grid(self) -> dict[str, list]:
        """The search space as the grid sampler wants it (per-layer widths up to the most layers)."""
        grid: dict[str, list] = {}
        for name, dim in self.dimensions.items():
            key = f"sweep.params.{name}"
            if name == "units" and dim.per_layer:
                layers = self.max_layers if self.max_layers is not None else 1
                for index in range(1, max(1, layers) + 1):
                    grid[f"units_l{index}"] = dim.grid(key)
            else:
                grid[name] = dim.grid(key)
        return grid

    def describe(self) -> dict[str, str]:
        """One line per dimension, for logs and the parent run's tags."""
        return {name: dim.describe() for name, dim in self.dimensions.items()}


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _draw_order(dim: Dimension) -> int:
    """Named settings first (the optimizer among them), then the schedule's name, then other paths."""
    if dim.key is None:
        return 0
    return 1 if dim.key == _SCHEDULE_NAME else 2


def _read_by_trial(key: str, values: Mapping[str, Any], base: Mapping[str, Any] | None) -> bool:
    """Whether the trial's optimizer or schedule reads the path ``key`` (other paths: always)."""
    if base is None:
        return True
    if key.startswith("optimizer.") and key != "optimizer.name":
        name = values.get("optimizer", (base.get("optimizer") or {}).get("name"))
        return PATHS[key] in P.OPTIMIZER_SETTINGS.get(name, ())
    if key.startswith("training.schedule.") and key != _SCHEDULE_NAME:
        schedule = ((base.get("training") or {}).get("schedule") or {}).get("name", "constant")
        name = values.get(_SCHEDULE_NAME, schedule)
        return PATHS[key] in P.SCHEDULE_SETTINGS.get(name, ())
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value
