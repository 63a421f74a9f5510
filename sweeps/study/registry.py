"""The sweep's champion: the best trial's model registered, its alias moved only to a better model."""

from __future__ import annotations

import contextlib
import json

from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from sweeps.study.refit import REFIT_NOTE, champion_model
from sweeps.config import sweep_settings
from sweeps.core import vocabulary as V


def register_best(client, settings: sweep_settings.SweepSettings, board, refit=None) -> tuple[str, str] | None:
    """Register the best completed trial's model (``refit``: its retrain, :mod:`sweeps.study.refit`), point the alias at it.

    Returns ``(name, version)``, or None when no completed trial has a model. A best
    trial already behind the alias is not registered again.
    """

    done = board[(board["state"] == "COMPLETE") & board["model_uri"].notna()]
    if done.empty:
        return None
    best = done.iloc[0]
    name = settings.register_name or settings.study_name
    alias = settings.register_alias
    try:
        client.create_registered_model(name, description=f"Best model of the sweep (Optuna study {settings.study_name!r}).")
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    run_id, model_uri, run_name, refitted = champion_model(best, refit)
    with contextlib.suppress(MlflowException):
        current = client.get_model_version_by_alias(name, alias)
        if current.run_id == run_id:
            return name, str(current.version)
    model_id = model_uri.split("models:/", 1)[1] if model_uri.startswith("models:/") else None
    metric = settings.metrics[0]
    # The registry resolves a models:/ source through MLflow's global tracking URI, which
    # may be another store: give it the logged model's own artifact location instead.
    source = client.get_logged_model(model_id).artifact_location if model_id else model_uri
    version = client.create_model_version(
        name, source=source, run_id=run_id, model_id=model_id,
        tags={V.TAG_STUDY: settings.study_name, V.TAG_TRIAL: str(int(best["trial"])),
              metric: f"{float(best[metric]):.6g}", "fit": str(best["fit"]), V.TAG_VERSION_RUN_NAME: run_name,
              **({V.TAG_VERSION_REFIT: "true"} if refitted else {})},
        description=f"{run_name}: trial {int(best['trial'])} of study {settings.study_name!r}, "
                    f"{metric}={float(best[metric]):.6g}" + (f" {REFIT_NOTE}" if refitted else ""),
    )
    if model_id:
        link_model_version(client, model_id, name, str(version.version))
    client.set_registered_model_alias(name, alias, version.version)
    return name, str(version.version)


def link_model_version(client, model_id: str, name: str, version: str) -> None:
    """Name the version on its logged model (its ``mlflow.modelVersions`` tag), as
    ``mlflow.register_model`` and a tracking server do, so that the UI's model page shows it
    registered; a client on a local store creating a version does not."""
    entry = {"name": name, "version": version}
    versions = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    if entry not in versions:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*versions, entry])})


def register_champion(client, settings: sweep_settings.SweepSettings, board, *, interrupted: bool,
                      refit=None) -> tuple[tuple[str, str] | None, str]:
    """:func:`register_best`, except that a sweep that did not finish (Ctrl-C, SIGTERM, the
    failure budget) moves the alias only to a model better than the one behind it, and
    registers nothing when there is none. Returns ``((name, version) or None, what was done)``."""
    alias = settings.register_alias
    if not interrupted:
        registered = register_best(client, settings, board, refit)
        return registered, (f"@{alias} is version {registered[1]}" if registered else f"@{alias} not set: no complete trial has a model")
    done = board[(board["state"] == "COMPLETE") & board["model_uri"].notna()] if not board.empty else board
    if done.empty:
        return registered_champion(client, settings), f"@{alias} not moved: the sweep did not finish and has no complete trial with a model"
    metric, direction = settings.metrics[0], settings.directions[0]
    best = float(done.iloc[0][metric])
    current = registered_champion(client, settings)
    if current is None:
        return None, (f"@{alias} not set: the sweep did not finish (its best so far, {metric}={best:.6g}, is "
                      "registered when the resumed sweep finishes)")
    version = client.get_model_version(current[0], current[1])
    try:
        held = float(version.tags.get(metric))
    except (TypeError, ValueError):
        return current, f"@{alias} not moved: version {current[1]} records no {metric} to compare with"
    better = best < held if direction == "minimize" else best > held
    if not better:
        return current, (f"@{alias} kept on version {current[1]} ({metric}={held:.6g}): the unfinished sweep's best, "
                         f"{metric}={best:.6g}, is not better")
    registered = register_best(client, settings, board)
    return registered, (f"@{alias} moved from version {current[1]} ({metric}={held:.6g}) to version {registered[1]} "
                        f"({metric}={best:.6g}, better) although the sweep did not finish")


def registered_champion(client, settings: sweep_settings.SweepSettings) -> tuple[str, str] | None:
    """``(name, version)`` behind the sweep's alias, None if there is none (yet)."""
    name = settings.register_name or settings.study_name
    try:
        version = client.get_model_version_by_alias(name, settings.register_alias)
    except Exception:
        return None
    return name, str(version.version)
