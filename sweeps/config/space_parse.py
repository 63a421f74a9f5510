"""The search space read from ``sweep.params`` (:func:`parse_space`), and compared with the space a
study was created with when it is resumed (:func:`check_space_unchanged`).

Every entry is checked before any trial runs: known names, ``low < high``, ``log`` with
``low > 0``, and bounds (or choices) inside the engine's table of allowed values
(:mod:`ann.params`). Problems are :class:`~sweeps.core.errors.ConfigError` naming the key as it
is written on the command line (``sweep.params.lr.low``). The space itself, and how a trial
draws from it, is :mod:`sweeps.config.space`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
from typing import Any, Mapping

import ann
from ann import params as P
from sweeps.config.space import MAX_LAYERS, PATHS, SETTINGS, Dimension, SearchSpace, Setting
from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError, UserError

_ENTRY_KEYS = ("type", "low", "high", "log", "step", "choices", "per_layer")
_TYPES = ("int", "float", "categorical")




def space_difference(stored: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """``["lr: float [0.0001, 0.3] log -> float [0.01, 0.3] log", "dropout: added ...", ...]``."""
    changes = []
    for name in [*stored, *(n for n in current if n not in stored)]:
        if name not in current:
            changes.append(f"{name}: {stored[name]} removed")
        elif name not in stored:
            changes.append(f"{name}: added {current[name]}")
        elif stored[name] != current[name]:
            changes.append(f"{name}: {stored[name]} -> {current[name]}")
    return changes


def check_space_unchanged(study, space: "SearchSpace", allow_change: bool) -> str | None:
    """Refuse to resume ``study`` with another search space, unless ``allow_change``.

    A new study (or one from before spaces were recorded) records ``space``. Returns the
    accepted change as one line (None: unchanged), which the study also keeps in
    :data:`sweeps.core.vocabulary.ATTR_SPACE_CHANGES`.

    Raises:
        UserError: the space differs and ``allow_change`` is false.
    """
    current = space.describe()
    stored = study.user_attrs.get(V.ATTR_SPACE)
    if stored is None:
        study.set_user_attr(V.ATTR_SPACE, current)
        return None
    changes = space_difference(stored, current)
    if not changes:
        return None
    change = "; ".join(changes)
    if not allow_change:
        raise UserError(f"sweep.params differ from the search space of study {study.study_name!r} ({change}): "
                        "resume with the same sweep.params, choose a new sweep.study_name, or accept the change "
                        "with sweep.allow_space_change=true")
    history = list(study.user_attrs.get(V.ATTR_SPACE_CHANGES) or [])
    history.append({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "trials_before": len(study.get_trials(deepcopy=False)), "change": change})
    study.set_user_attr(V.ATTR_SPACE_CHANGES, history)
    study.set_user_attr(V.ATTR_SPACE, current)
    return change


def parse_space(section: Mapping[str, Any] | None, prefix: str = "sweep.params") -> SearchSpace:
    """Parse and check ``sweep.params``.

    Raises:
        ConfigError: an unknown setting or entry key, an empty or inverted range, ``log``
            with ``low <= 0``, or a bound or choice the engine does not allow.
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(prefix, section, "a mapping of searched settings: " + ", ".join(SETTINGS))
    dimensions: dict[str, Dimension] = {}
    for path, entry, key in _leaves(section, prefix):
        name, setting = _setting_of(path, entry, key)
        if entry is None:
            continue
        if name in dimensions:
            raise ConfigError(key, entry, f"one entry per setting ({name} is searched twice)")
        dimensions[name] = _parse_dimension(name, entry, key, setting)
    if not dimensions:
        raise ConfigError(prefix, dict(section), "at least one searched setting (" + ", ".join(SETTINGS) + ")")
    return SearchSpace(dimensions)


def _leaves(section: Mapping[str, Any], prefix: str, path: str = ""):
    """``(config path or setting name, entry, command-line key)`` of every entry, nested or dotted."""
    for name, entry in section.items():
        name = str(name)
        full, key = (f"{path}.{name}" if path else name), f"{prefix}.{name}"
        is_group = any(p.startswith(full + ".") for p in PATHS)
        if is_group and isinstance(entry, Mapping) and any(k not in _ENTRY_KEYS for k in entry):
            own = {k: v for k, v in entry.items() if k in _ENTRY_KEYS}
            if own:
                yield full, own, key
            yield from _leaves({k: v for k, v in entry.items() if k not in _ENTRY_KEYS}, key, full)
        else:
            yield full, entry, key


def _setting_of(path: str, entry: Any, key: str) -> tuple[str, Setting]:
    """The name (an Optuna parameter name) and setting of a leaf of ``sweep.params``."""
    if path in SETTINGS:
        return path, SETTINGS[path]
    allowed = ("a searched setting: one of " + ", ".join(SETTINGS)
               + ", or a config path such as optimizer.beta1, model.init, training.schedule.warmup_epochs")
    if "." not in path:
        raise ConfigError(key, entry, allowed + " (or remove it)")
    for name, setting in SETTINGS.items():
        if setting.key == path and name not in ("n_layers", "units"):
            return name, setting
    if path == "model.hidden_layers":
        raise ConfigError(key, entry, "n_layers and units (the widths of model.hidden_layers are searched by those)")
    engine = PATHS.get(path)
    if engine is None:
        raise ConfigError(key, entry, "a config path of model, optimizer, training or training.schedule: one of "
                          + ", ".join(p for p in PATHS if p != "model.hidden_layers"))
    spec = P.PARAMETERS[engine]
    kind = "categorical" if isinstance(spec, P.Choice) else "int" if spec.integer else "float"
    return path, Setting(path, kind, engine, path)


def _parse_dimension(name: str, entry: Any, key: str, setting: Setting) -> Dimension:
    if isinstance(entry, (list, tuple)):
        entry = {"choices": list(entry)}
    if not isinstance(entry, Mapping):
        raise ConfigError(key, entry, "a distribution such as {low: 1, high: 3}, {low: 1e-4, high: 0.1, log: true} or {choices: [a, b]}")
    for entry_key in entry:
        if entry_key not in _ENTRY_KEYS or (entry_key == "per_layer" and name != "units"):
            allowed = [k for k in _ENTRY_KEYS if k != "per_layer" or name == "units"]
            raise ConfigError(f"{key}.{entry_key}", entry[entry_key], "a key of a distribution: one of " + ", ".join(allowed))
    kind = entry.get("type")
    if kind is not None and kind not in _TYPES:
        raise ConfigError(f"{key}.type", kind, "one of " + ", ".join(_TYPES))
    has_choices = entry.get("choices") is not None
    if setting.kind == "categorical" and not has_choices:
        raise ConfigError(key, dict(entry), f"choices for {name} ({setting.doc}): e.g. {{choices: [...]}}")
    if kind is None:
        kind = "categorical" if has_choices else setting.kind
    if kind == "categorical" or has_choices:
        if kind != "categorical":
            raise ConfigError(f"{key}.type", kind, "'categorical' with choices")
        dim = _categorical(name, entry, key, setting)
    else:
        if kind == "float" and setting.kind == "int":
            raise ConfigError(f"{key}.type", kind, f"'int' or 'categorical' ({setting.doc} is a whole number)")
        dim = _range(name, kind, entry, key, setting)
    if name not in SETTINGS:
        dim = dataclasses.replace(dim, key=setting.key)
    return dim


def _categorical(name: str, entry: Mapping[str, Any], key: str, setting: Setting) -> Dimension:
    for extra in ("low", "high", "log", "step"):
        if entry.get(extra) not in (None, False):
            raise ConfigError(f"{key}.{extra}", entry[extra], "nothing next to choices (a categorical setting has no range)")
    choices = entry.get("choices")
    if isinstance(choices, (str, bytes)) or not isinstance(choices, (list, tuple)) or not choices:
        raise ConfigError(f"{key}.choices", choices, "a non-empty list")
    checked = []
    for index, choice in enumerate(choices):
        checked.append(_check_value(name, choice, f"{key}.choices[{index}]", setting))
    if len(set(map(repr, checked))) != len(checked):
        raise ConfigError(f"{key}.choices", list(choices), "a list without repeated values")
    return Dimension(name, "categorical", choices=tuple(checked), per_layer=bool(entry.get("per_layer", True)))


def _range(name: str, kind: str, entry: Mapping[str, Any], key: str, setting: Setting) -> Dimension:
    low, high = entry.get("low"), entry.get("high")
    for bound_key, bound in (("low", low), ("high", high)):
        if bound is None:
            raise ConfigError(f"{key}.{bound_key}", bound, "a number (a range needs low and high; or give choices)")
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not math.isfinite(bound):
            raise ConfigError(f"{key}.{bound_key}", bound, "a finite number")
        if kind == "int" and not float(bound).is_integer():
            raise ConfigError(f"{key}.{bound_key}", bound, "an integer")
    if not low < high:
        raise ConfigError(f"{key}.low", low, f"a number below high={_num(high)} (an empty or inverted range)")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log", log, "true or false")
    if log and low <= 0:
        raise ConfigError(f"{key}.low", low, "a number > 0 with log: true (a log scale cannot reach 0)")
    step = entry.get("step")
    if step is not None:
        if log:
            raise ConfigError(f"{key}.step", step, "null with log: true (Optuna cannot step on a log scale)")
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not step > 0 or (kind == "int" and not float(step).is_integer()):
            raise ConfigError(f"{key}.step", step, "a positive " + ("integer" if kind == "int" else "number"))
        if step > high - low:
            raise ConfigError(f"{key}.step", step, f"at most high - low = {_num(high - low)}")
    low_checked = _check_value(name, low, f"{key}.low", setting)
    high_checked = _check_value(name, high, f"{key}.high", setting)
    if kind == "int":
        low_checked, high_checked = int(low_checked), int(high_checked)
        step = int(step) if step is not None else None
    else:
        low_checked, high_checked = float(low_checked), float(high_checked)
        step = float(step) if step is not None else None
    per_layer = entry.get("per_layer", True)
    if not isinstance(per_layer, bool):
        raise ConfigError(f"{key}.per_layer", per_layer, "true or false")
    return Dimension(name, kind, low_checked, high_checked, log, step, per_layer=per_layer)


def _check_value(name: str, value: Any, key: str, setting: Setting) -> Any:
    """One bound or choice, checked against what the engine allows for the setting."""
    if name == "n_layers":
        spec = P.Interval(0, MAX_LAYERS, integer=True)
        try:
            return spec.check(name, value)
        except ann.InvalidParameterError:
            raise ConfigError(key, value, f"{spec.describe()} (hidden layers)") from None
    engine = "units" if name == "units" else setting.engine
    try:
        if engine == "units":
            return P.UNITS.check(name, value)
        return P.check(engine, value)
    except ann.InvalidParameterError as error:
        raise ConfigError(key, value, error.allowed) from None


def _num(value: float) -> str:
    return f"{value:g}"
