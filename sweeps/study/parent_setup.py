"""The sweep's MLflow parent run as a sweep starts it: found or created once per study, then described.

:func:`open_parent` finds or creates the parent run under the study's lock (one parent per study,
whoever starts first), tags it, logs the searched space as params (:func:`searched_params`) and
the sweep's config, and writes the trials' chart view so that the link printed at the start works.
The parent run itself (its leaderboard, refreshes and end) is :class:`sweeps.study.parent.ParentRun`.
"""

from __future__ import annotations

import contextlib
import re

from omegaconf import OmegaConf

from sweeps.config.run_spec import run_params
from sweeps.config.space import SETTINGS
from sweeps.core import vocabulary as V
from sweeps.study.claims import Coordinator
from sweeps.study.prepared import PreparedSweep
from sweeps.study.parent import ParentRun, find_or_create_parent, parent_tags
from sweeps.tracking import client as tracking
from sweeps.tracking import ui_views
from sweeps.tracking.reproducibility import reproducibility_tags
from sweeps.tracking.session import connect


def open_parent(prepared: PreparedSweep, study, coordinator: Coordinator, space_change: str | None) -> ParentRun:
    """The study's MLflow parent run, found or created under the study's lock; described; its view written."""
    settings = prepared.settings
    session = connect(prepared.spec.tracking, offload=True)  # this process's one client, shared with its trials
    client, experiment_id = session.client, session.experiment_id
    with coordinator.lock:  # one parent per study, whoever starts first
        run_id, created = find_or_create_parent(client, experiment_id, study, settings, tags=_reproducibility(prepared))
        parent = ParentRun(client, run_id, experiment_id, settings, prepared.task, session=session)
        if not created and coordinator.census().counted < settings.n_trials:
            parent.reopen()
    _describe_parent(parent, prepared, created)
    if space_change:
        tracking.set_tags(client, run_id, {V.TAG_SPACE_CHANGE: space_change})
    # The trials' chart view exists from the start, so the link printed now works.
    ui_views.ensure_run_view_quietly(client, experiment_id, prepared.task, run_id)
    return parent


def _reproducibility(prepared: PreparedSweep) -> dict[str, str]:

    return {**reproducibility_tags(prepared.spec.model_kwargs.get("seed")), "dataset": prepared.spec.dataset,
            "task": prepared.task}


def searched_params(space) -> dict[str, str]:
    """The parent run's params for the settings the sweep searches: each config key shows its
    distribution, not the base config's value (``model.activation={relu, tanh}``,
    ``model.hidden_layers=n_layers int [1, 3]; units int [16, 128] log``)."""

    by_key: dict[str, list[str]] = {}
    for name, dim in space.dimensions.items():
        key = dim.key or SETTINGS[name].key  # a dimension named by its config path has its key
        by_key.setdefault(key, []).append(name)
    params = {}
    for key, names in by_key.items():
        if len(names) == 1 and (key == names[0] or key.endswith("." + names[0])):
            params[key] = space.dimensions[names[0]].describe()
        else:
            params[key] = "; ".join(f"{name} {space.dimensions[name].describe()}" for name in names)
    return params


def _describe_parent(parent, prepared: PreparedSweep, created: bool) -> None:
    """Tags, params (a new parent only: params cannot change) and the config of the sweep."""


    tracking.set_tags(parent.client, parent.run_id, parent_tags(prepared.settings, prepared.space))
    if created:
        params, searched = run_params(prepared.spec), searched_params(prepared.space)
        if "model.hidden_layers" in searched:  # the base's layer count and widths are not the sweep's
            params = {k: v for k, v in params.items() if not re.fullmatch(r"model\.(n_hidden_layers|layer_\d+_units)", k)}
        params.update(searched)
        for name, dim in prepared.space.dimensions.items():
            params[f"sweep.space.{name}"] = dim.describe()
        with contextlib.suppress(Exception):
            tracking.log_params(parent.client, parent.run_id, params)
    tracking.log_text(parent.client, parent.run_id, OmegaConf.to_yaml(OmegaConf.create(dict(prepared.config))),
                      "sweep/config.yaml")
    tracking.log_text(parent.client, parent.run_id,
                      OmegaConf.to_yaml(OmegaConf.create(list(prepared.overrides))) if prepared.overrides else "[]\n",
                      "sweep/overrides.yaml")
