"""The table of allowed values for every :class:`ann.MLP` argument.

One table serves three readers: the estimator validates its constructor and ``fit``
arguments against it, the training CLI validates a composed config against it before a
run starts, and the sweep layer checks that a search space stays inside it.

A spec is either an :class:`Interval` (numbers, with open or closed ends, optionally
integer-only) or a :class:`Choice` (a fixed set of values). ``check`` returns the value
(normalised where that is harmless, e.g. ``numpy.int64`` to ``int``) or raises
:class:`~ann.exceptions.InvalidParameterError` with a one-line message naming the
argument, the value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ann.exceptions import InvalidParameterError

HIDDEN_ACTIVATIONS = (
    "step", "sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "swish", "elu", "gelu", "linear",
)
OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "softmax", "step", "tanh")
LOSSES = ("mse", "half_squared_error", "mae", "binary_crossentropy", "categorical_crossentropy")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine", "one_cycle", "plateau")
INITS = ("auto", "small", "xavier", "he")
TASKS = ("auto", "regression", "binary", "multiclass")
DTYPES = ("float32", "float64")

#: Which arguments each optimizer reads (its learning rate and its own settings).
OPTIMIZER_SETTINGS = {
    "sgd": ("lr", "weight_decay"),
    "momentum": ("lr", "momentum", "weight_decay"),
    "nesterov": ("lr", "momentum", "weight_decay"),
    "adam": ("lr", "beta1", "beta2", "eps"),
    "adamw": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "rmsprop": ("lr", "rho", "eps"),
}
#: Which arguments each learning-rate schedule reads (see :mod:`ann.schedules`).
SCHEDULE_SETTINGS = {
    "constant": (),
    "step": ("step_size", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("warmup_epochs", "min_lr"),
    "one_cycle": ("pct_start", "div_factor", "final_div_factor"),
    "plateau": ("plateau_factor", "plateau_patience", "plateau_threshold", "min_lr"),
}

#: Which losses fit which task; the first one is the default.
LOSSES_FOR_TASK = {
    "regression": ("mse", "half_squared_error", "mae"),
    "binary": ("binary_crossentropy", "mse", "half_squared_error", "mae"),
    "multiclass": ("categorical_crossentropy", "mse", "half_squared_error"),
}
#: Which output activations fit which task; the first one is the default.
OUTPUT_ACTIVATIONS_FOR_TASK = {
    "regression": ("linear", "tanh", "sigmoid"),
    "binary": ("sigmoid", "step"),
    "multiclass": ("softmax",),
}

#: The widest layer the table admits (a guard against typos such as 1e9 units).
MAX_UNITS = 65_536


@dataclass(frozen=True)
class Interval:
    """A numeric range. ``None`` for an end means unbounded on that side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        return kind

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def check(self, name: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidParameterError(name, value, self.describe())
        if self.integer:
            if not float(value).is_integer():
                raise InvalidParameterError(name, value, self.describe())
            value = int(value)
        else:
            value = float(value)
        if not self.contains(value):
            raise InvalidParameterError(name, value, self.describe())
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    options: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(repr(option) for option in self.options)

    def check(self, name: str, value: Any) -> Any:
        # bool is an int in Python: never let True stand in for 1 or vice versa.
        for option in self.options:
            if value == option and (type(value) is bool) == (type(option) is bool):
                return option
        raise InvalidParameterError(name, value, self.describe())


BOOL = Choice((True, False))

#: Every scalar argument of :class:`ann.MLP` and what it accepts.
PARAMETERS: dict[str, Interval | Choice] = {
    "activation": Choice(HIDDEN_ACTIVATIONS),
    "output_activation": Choice((None,) + OUTPUT_ACTIVATIONS),
    "loss": Choice((None,) + LOSSES),
    "task": Choice(TASKS),
    "init": Choice(INITS),
    "init_scale": Interval(0.0, 1.0, low_open=True),
    "optimizer": Choice(OPTIMIZERS),
    "lr": Interval(0.0, None, low_open=True),
    "momentum": Interval(0.0, 1.0, high_open=True),
    "beta1": Interval(0.0, 1.0, high_open=True),
    "beta2": Interval(0.0, 1.0, high_open=True),
    "rho": Interval(0.0, 1.0, high_open=True),
    "eps": Interval(0.0, 1.0, low_open=True),
    "weight_decay": Interval(0.0, None),
    "clip_norm": Interval(0.0, None, low_open=True),
    "lr_schedule": Choice(SCHEDULES),
    "warmup_epochs": Interval(0, None, integer=True),
    "step_size": Interval(1, None, integer=True),
    "gamma": Interval(0.0, 1.0, low_open=True),
    "min_lr": Interval(0.0, None),
    "pct_start": Interval(0.0, 1.0, low_open=True, high_open=True),
    "div_factor": Interval(1.0, None),
    "final_div_factor": Interval(1.0, None),
    "plateau_factor": Interval(0.0, 1.0, low_open=True, high_open=True),
    "plateau_patience": Interval(0, None, integer=True),
    "plateau_threshold": Interval(0.0, 1.0, high_open=True),
    "batch_size": Interval(1, None, integer=True),
    "epochs": Interval(1, None, integer=True),
    "l2": Interval(0.0, None),
    "dropout": Interval(0.0, 1.0, high_open=True),
    "leaky_slope": Interval(0.0, 1.0, low_open=True, high_open=True),
    "rrelu_lower": Interval(0.0, 1.0),
    "rrelu_upper": Interval(0.0, 1.0),
    "elu_alpha": Interval(0.0, None, low_open=True),
    "early_stopping": BOOL,
    "patience": Interval(1, None, integer=True),
    "min_delta": Interval(0.0, None),
    "restore_best_weights": BOOL,
    "standardize": BOOL,
    "shuffle": BOOL,
    "dtype": Choice(DTYPES),
    "seed": Interval(0, 2**32 - 1, integer=True),
}

#: Arguments that also accept ``None`` (no seed: fresh entropy; no clip_norm: no clipping).
NULLABLE = ("seed", "clip_norm")

#: The spec of one hidden-layer width.
UNITS = Interval(1, MAX_UNITS, integer=True)


def check(name: str, value: Any) -> Any:
    """Validate one argument against :data:`PARAMETERS` and return it normalised."""
    if name == "hidden_layers":
        return check_hidden_layers(value)
    if name in NULLABLE and value is None:
        return None
    try:
        spec = PARAMETERS[name]
    except KeyError:
        raise InvalidParameterError(
            "parameter", name, "one of " + ", ".join(["hidden_layers", *PARAMETERS])
        ) from None
    return spec.check(name, value)


def check_hidden_layers(value: Any) -> tuple[int, ...]:
    """Validate a list of hidden-layer widths; an empty list is a perceptron."""
    allowed = f"a list of widths, each {UNITS.describe()} (empty for no hidden layer)"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        # OmegaConf ListConfig and numpy arrays are sequences too, via tolist/iteration.
        if hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping)):
            value = list(value)
        else:
            raise InvalidParameterError("hidden_layers", value, allowed)
    widths = []
    for index, width in enumerate(value):
        widths.append(UNITS.check(f"hidden_layers[{index}]", width))
    return tuple(widths)


def check_all(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a mapping of arguments, including the rules that tie several together."""
    checked = {name: check(name, value) for name, value in params.items()}
    lower = checked.get("rrelu_lower", PARAMETERS_DEFAULTS["rrelu_lower"])
    upper = checked.get("rrelu_upper", PARAMETERS_DEFAULTS["rrelu_upper"])
    if lower > upper:
        raise InvalidParameterError(
            "rrelu_lower", lower, f"a slope <= rrelu_upper={upper:g}"
        )
    _check_optimizer_settings(checked)
    _check_schedule_settings(checked)
    return checked


def _setting(checked: Mapping[str, Any], name: str) -> Any:
    return checked.get(name, PARAMETERS_DEFAULTS[name])


def _check_optimizer_settings(checked: Mapping[str, Any]) -> None:
    optimizer, lr = _setting(checked, "optimizer"), _setting(checked, "lr")
    decay = _setting(checked, "weight_decay")
    if decay and "weight_decay" not in OPTIMIZER_SETTINGS[optimizer]:
        readers = [name for name, settings in OPTIMIZER_SETTINGS.items() if "weight_decay" in settings]
        raise InvalidParameterError(
            "weight_decay", decay,
            f"0 with optimizer {optimizer!r} (decoupled weight decay is for "
            + ", ".join(readers) + "; l2 adds it to the gradient instead)",
        )
    if lr * decay >= 1.0:
        raise InvalidParameterError(
            "weight_decay", decay, f"a decay with lr * weight_decay < 1 (lr={lr:g})"
        )


def _check_schedule_settings(checked: Mapping[str, Any]) -> None:
    schedule = _setting(checked, "lr_schedule")
    reads = SCHEDULE_SETTINGS[schedule]
    lr, epochs = _setting(checked, "lr"), _setting(checked, "epochs")
    warmup = _setting(checked, "warmup_epochs")
    if "warmup_epochs" in reads and warmup >= epochs:
        raise InvalidParameterError(
            "warmup_epochs", warmup, f"an integer in [0, {epochs}) (fewer than epochs={epochs})"
        )
    min_lr = _setting(checked, "min_lr")
    if "min_lr" in reads and min_lr > lr:
        raise InvalidParameterError("min_lr", min_lr, f"a rate in [0, lr={lr:g}]")


def check_task_fit(task: str, loss: str | None, output_activation: str | None) -> None:
    """Refuse a loss or an output activation that does not fit the task."""
    if loss is not None and loss not in LOSSES_FOR_TASK[task]:
        raise InvalidParameterError(
            "loss", loss, f"a loss for a {task} task: one of " + ", ".join(LOSSES_FOR_TASK[task])
        )
    if output_activation is not None and output_activation not in OUTPUT_ACTIVATIONS_FOR_TASK[task]:
        raise InvalidParameterError(
            "output_activation",
            output_activation,
            f"an output activation for a {task} task: one of "
            + ", ".join(OUTPUT_ACTIVATIONS_FOR_TASK[task]),
        )
    if loss == "binary_crossentropy" and output_activation not in (None, "sigmoid"):
        raise InvalidParameterError(
            "output_activation", output_activation, "'sigmoid' with binary_crossentropy"
        )


#: The defaults of :class:`ann.MLP`, in one place for the estimator and the configs.
PARAMETERS_DEFAULTS: dict[str, Any] = {
    "hidden_layers": (32,),
    "activation": "relu",
    "output_activation": None,
    "loss": None,
    "task": "auto",
    "init": "auto",
    "init_scale": 0.01,
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "rho": 0.9,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "clip_norm": None,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "step_size": 10,
    "gamma": 0.5,
    "min_lr": 0.0,
    "pct_start": 0.3,
    "div_factor": 25.0,
    "final_div_factor": 1e4,
    "plateau_factor": 0.1,
    "plateau_patience": 5,
    "plateau_threshold": 1e-4,
    "batch_size": 32,
    "epochs": 100,
    "l2": 0.0,
    "dropout": 0.0,
    "leaky_slope": 0.01,
    "rrelu_lower": 1.0 / 8.0,
    "rrelu_upper": 1.0 / 3.0,
    "elu_alpha": 1.0,
    "early_stopping": False,
    "patience": 10,
    "min_delta": 0.0,
    "restore_best_weights": True,
    "standardize": True,
    "shuffle": True,
    "dtype": "float32",
    "seed": 0,
}
