"""A trial's config and run spec, derived from the sweep's validated base.

:func:`prepare <sweeps.study.runner.prepare>` validated the base config and the search
space once. A trial changes only the searched keys: :func:`trial_config` writes them into
a copy of the base config (what the run logs), and :func:`trial_spec` puts them into a copy
of the base :class:`~sweeps.config.run_spec.RunSpec` with :func:`dataclasses.replace`,
without validating the whole config again. A change the base spec cannot simply take over
(another optimizer, a schedule setting, a data set option) is validated in full.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf

from ann import params as P
from sweeps.config import CONFIG_DIR
from sweeps.config.run_spec import MODEL_KEYS, OPTIMIZER_KEYS, TRAINING_KEYS, RunSpec, build_run_spec, format_value
from sweeps.config.space import SearchSpace
from sweeps.core.names import describe_config

#: Config keys a trial may change in place: ``model.activation`` -> the engine's ``activation``, ...
ENGINE_ARGUMENTS = {
    **{f"model.{key}": engine for key, engine in MODEL_KEYS.items()},
    **{f"optimizer.{key}": engine for key, engine in OPTIMIZER_KEYS.items() if key != "name"},
    **{f"training.{key}": engine for key, engine in TRAINING_KEYS.items()},
}


def load_group_option(group: str, option: str) -> dict[str, Any]:
    """The plain contents of ``conf/<group>/<option>.yaml`` (a group option without defaults)."""
    path = CONFIG_DIR / group / f"{option}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def apply_changes(base: Mapping[str, Any], changes: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """The config ``changes`` (``{"optimizer.lr": 3e-3, ...}``) make from ``base``, and their overrides.

    Choosing an optimizer other than the base one replaces the ``optimizer`` group by that
    option's file (``conf/optimizer/<name>.yaml``), then the trial's ``lr`` (if searched) is set in it.
    """
    cfg = copy.deepcopy(dict(base))
    overrides = []
    for key, value in changes.items():
        if key == "optimizer.name":
            if value != cfg["optimizer"].get("name"):
                cfg["optimizer"] = load_group_option("optimizer", value)
            overrides.append(f"optimizer={value}")
            continue
        *parents, name = key.split(".")
        node = cfg
        for part in parents:  # training.schedule.warmup_epochs: a key inside nested groups
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[name] = value
        overrides.append(f"{key}={_override_value(value)}")
    return cfg, overrides


def trial_config(base: Mapping[str, Any], space: SearchSpace, values: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """The training config of a trial (its drawn ``values``) and the overrides that make it from ``base``."""
    base_layers = tuple(base["model"].get("hidden_layers") or ())
    return apply_changes(base, space.overrides(values, base_layers))


def trial_spec(base: RunSpec, cfg: dict[str, Any], changes: Mapping[str, Any]) -> RunSpec:
    """The run spec of the trial config ``cfg``: ``base`` with the searched engine arguments replaced.

    The searched values were checked against the engine when the space was parsed; each is
    only normalised here (``[64, 32]`` -> ``(64, 32)``). Any other change: the whole config is validated.
    """
    kwargs = dict(base.model_kwargs)
    for key, value in changes.items():
        if key == "optimizer.name" and value == kwargs.get("optimizer"):
            continue
        engine = ENGINE_ARGUMENTS.get(key)
        if engine is None:
            return build_run_spec(cfg)
        kwargs[engine] = P.check(engine, value)
    return dataclasses.replace(base, model_kwargs=kwargs, config=cfg,
                               split_seed=kwargs.get("seed", 0) or 0)


def _override_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return format_value(value)


def run_name(number: int, cfg: Mapping[str, Any], searched: Sequence[str] = ()) -> str:
    """What a trial is, in a few words: ``t007 relu 2x64 lr=3e-3 bs=64`` (+ other searched settings)."""
    return f"t{number:03d} {describe_config(cfg, searched)}"
