"""One training run: a validated run spec -> data -> ``ann.MLP`` -> MLflow.

:func:`train` is what ``ann-train`` runs and what a sweep calls for every trial. It
validates everything it can before a run exists (config, data, tracking store), so a
user's mistake creates no run; once the run exists it always ends it: FINISHED,
FAILED (with the error as the ``error`` tag) or KILLED (Ctrl-C, SIGTERM, or a callback
that raised :class:`StopRun`).

A run knows nothing of sweeps. A caller that runs many (a sweep's worker) passes what
it already has: the spec (``dataclasses.replace`` of the searched fields), the prepared
data (loaded, split and standardised once per process), a tracking
:class:`~sweeps.tracking.session.Session` (one client, one background writer). Three
hooks let it take part: ``callbacks`` after every epoch (raise :class:`StopRun` to stop
the run with a status and tags), ``on_run(run_id, experiment_id)`` once the run exists,
and ``on_result(result)`` which returns a :class:`RunEnd` (status, tags, metrics) written
with the run's final batch.

What a tracked run records is described in :mod:`sweeps.training.tracked`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

import ann
from sweeps.config.run_spec import RunSpec, build_run_spec
from sweeps.core.names import describe_config
from sweeps.core.redaction import redact
from sweeps.training.data import PreparedData, build_model, prepare_data
from sweeps.training.fitting import SUMMARY, Callback, Recorder, RunEnd, StopRun, Terminated, fit, sigterm_raises

log = logging.getLogger(__name__)

__all__ = ["SUMMARY", "RunEnd", "StopRun", "Terminated", "default_run_name", "hydra_overrides", "train"]

def train(
    spec: RunSpec | Any,
    *,
    data: PreparedData | None = None,
    session=None,
    callbacks: Sequence[Callback] = (),
    parent_run_id: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    overrides: Sequence[str] | None = None,
    on_run: Callable[[str, str], None] | None = None,
    on_result: Callable[[dict[str, Any]], RunEnd | None] | None = None,
) -> dict[str, Any]:
    """Train one network as ``spec`` says and track it in MLflow.

    Args:
        spec: a :class:`~sweeps.config.run_spec.RunSpec`, or a composed config (validated here).
        data: the prepared data of ``spec`` (default: loaded and split here).
        session: the tracking session (default: one opened, and closed, for this run).
        callbacks: ``callback(epoch, logs)`` after each epoch, after the metrics were handed
            to MLflow; one may raise :class:`StopRun` (the run ends as it says, then it propagates).
        parent_run_id: make the run a nested child of this run.
        run_name: default ``tracking.run_name``, else what the run is.
        tags: extra run tags.
        overrides: logged as ``config/overrides.yaml`` (default: Hydra's, inside a Hydra app).
        on_run: called with ``(run_id, experiment_id)`` once the run exists.
        on_result: called with the result; its :class:`RunEnd` is the run's end (status, tags, metrics).

    Returns:
        ``run_id``, ``experiment_id``, ``model_uri`` (None untracked), ``fit``, ``fit_reason``,
        ``curves`` (per-epoch history), ``stop_reason`` (if it stopped early), every final
        metric by its MLflow name (``loss/test``, ``best/loss/val``, ``epochs_run``, ...);
        tracked: ``run_url``, ``experiment_url``, ``tracking_seconds`` / ``tracking_phases``.

    Raises:
        UserError: bad config, data or tracking store (no run was created); anything raised
            during training, once the run is marked FAILED or KILLED.
    """
    if not isinstance(spec, RunSpec):
        spec = build_run_spec(spec)
    if data is None:
        data = prepare_data(spec)
    model = build_model(spec, data)
    if not spec.tracking.enabled:
        return _train_untracked(spec, data, model, callbacks, on_result)
    from sweeps.training import tracked  # lazy: MLflow is imported only for a tracked run
    from sweeps.tracking.session import connect  # lazy: as above

    own_session = session is None
    if own_session:
        session = connect(spec.tracking)
    try:
        return tracked.train_tracked(
            tracked.RunRequest(spec, data, model, session, list(callbacks), parent_run_id,
                               run_name or spec.tracking.run_name or default_run_name(spec), dict(tags or {}),
                               list(hydra_overrides() if overrides is None else overrides), on_run, on_result))
    finally:
        if own_session:  # ann-train: the run's tail is written before the command returns
            with sigterm_raises():  # a SIGTERM while it is written: the exit drains it (atexit)
                session.close()


def default_run_name(spec: RunSpec) -> str:
    """The name of a run nobody named: ``moons relu 1x32 lr=1e-3 bs=32``."""
    return f"{spec.dataset} {describe_config(spec.config)}"


def hydra_overrides() -> list[str]:
    """The command-line overrides as typed (``${...}`` left unresolved), passwords in URIs hidden.

    Resolving them would write secrets that the user kept in the environment
    (``sweep.storage=${oc.env:OPTUNA_STORAGE}``) into logs and artifacts.
    """
    try:
        from hydra.core.hydra_config import HydraConfig  # lazy: only ann-train runs inside Hydra
        from omegaconf import OmegaConf  # lazy: as above

        if HydraConfig.initialized():
            typed = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
            return [redact(str(override)) for override in typed]
    except Exception:  # not inside a Hydra app
        pass
    return []


def _train_untracked(spec: RunSpec, data: PreparedData, model: ann.MLP, callbacks, on_result) -> dict[str, Any]:
    recorder = Recorder(None, spec.model_kwargs.get("epochs", 100))
    with sigterm_raises():
        fitted = fit(model, data, recorder, callbacks, spec.ensemble, spec.threads)
    if fitted.non_finite is not None:
        log.warning("%s", fitted.non_finite)
    log.info("fit: %s", fitted.diagnosis.summary, extra=SUMMARY)
    result = fitted.result(run_id=None, experiment_id=None, model_uri=None)
    if on_result is not None:
        on_result(result)
    return result
