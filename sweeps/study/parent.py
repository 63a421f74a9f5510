"""The sweep's MLflow parent run and what it shows: best trial, leaderboard, plots, champion.

One parent run per study, in the experiment the trials go to; every trial is its child
(``mlflow.parentRunId``). :func:`find_or_create_parent` finds it in this order:

1. the study's user attribute ``mlflow.parent_run_id`` (set once the parent is known);
2. a live run of the experiment tagged ``sweep.role=parent``, ``sweep.study_name=<study>``
   and ``sweep.storage=<the storage URL, password hidden>`` (a study of the same name in
   another storage is another sweep), the earliest one if there are several;
3. a new run, created with those tags. Then the candidates are searched again and the
   earliest one (start time, then run id) wins; a process whose own new run lost deletes
   it and uses the winner.

:func:`sweeps.study.runner.run_sweep` calls it under the study's storage lock
(:mod:`sweeps.study.claims`), so processes that start at the same time -- on one machine or
several -- run the lookup one after the other and all get the run the first one made;
the re-search after creating is a second line of defence for callers without the lock.

What the parent records (refreshed by :meth:`ParentRun.refresh` every
``sweep.refresh_every`` finished trials -- or 10 % of the trials finished, when that is more:
see :func:`sweeps.study.runner.refresh_interval` -- and by :meth:`ParentRun.finish` at the end):

* metrics ``best/<metric>`` (step: finished trials, so its chart is the best-so-far
  curve), ``trials/complete``, ``trials/pruned``, ``trials/failed``, ``epochs/total``;
* tags ``best.trial``, ``best.run_id``, ``best.value``, ``best.param.<name>``,
  ``sweep.*`` (study, storage, metric, direction, sampler, pruner, n_trials);
* artifacts ``leaderboard/leaderboard.csv`` (every trial with state, value, params,
  epochs, fit tag and run id), at the end ``plots/optuna.html`` (optimization history,
  parameter importances, parallel coordinates, intermediate values -- the MLflow UI shows
  it) and ``plots/top_trials_curves.png`` (training and validation curves of the best
  trials, coloured by fit tag);
* the best trial's model registered as ``sweep.register.name`` (default: the study
  name) with the alias ``sweep.register.alias`` (``champion``)::

      mlflow.pyfunc.load_model("models:/<name>@champion")
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sweeps.core import vocabulary as V
from sweeps.study import fit_plots
from sweeps.study import fit_view
from sweeps.config import sweep_settings
from sweeps.study import storage as ST
from sweeps.study import optuna_study as S
from sweeps.tracking import ui_views
from sweeps.core.redaction import redact

log = logging.getLogger(__name__)

_STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "FAIL": 3, "WAITING": 4}


# ------------------------------------------------------------------------- parent


def _candidates(client, experiment_id: str, study_name: str, storage: str) -> list:
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{V.TAG_ROLE}` = 'parent' and tags.`{V.TAG_STUDY}` = '{_quote(study_name)}' "
                       f"and tags.`{V.TAG_STORAGE}` = '{_quote(redact(storage))}'"),
        max_results=50,
    )
    return sorted(runs, key=lambda run: (run.info.start_time or 0, run.info.run_id))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def find_or_create_parent(
    client, experiment_id: str, study, settings: sweep_settings.SweepSettings, *, tags: Mapping[str, str] | None = None
) -> tuple[str, bool]:
    """The parent run id of ``study`` (see the module docstring); ``(run_id, created)``."""
    from sweeps.tracking import client as tracking
    stored = study.user_attrs.get(V.ATTR_PARENT_RUN)
    if stored:
        try:
            run = client.get_run(stored)
            if run.info.lifecycle_stage == "active" and run.info.experiment_id == experiment_id:
                return stored, False
        except Exception:  # another tracking store, or deleted for good
            pass
    existing = _candidates(client, experiment_id, settings.study_name, settings.storage)
    if existing:
        run_id = existing[0].info.run_id
        study.set_user_attr(V.ATTR_PARENT_RUN, run_id)
        study.set_user_attr(V.ATTR_EXPERIMENT, experiment_id)
        return run_id, False
    run_tags = {V.TAG_ROLE: "parent", V.TAG_STUDY: settings.study_name, V.TAG_STORAGE: redact(settings.storage),
                **(tags or {})}
    run = tracking.create_run(client, experiment_id, run_name=f"sweep {settings.study_name}", tags=run_tags)
    mine = run.info.run_id
    winner = _candidates(client, experiment_id, settings.study_name, settings.storage)[0].info.run_id
    if winner != mine:  # another process created one at the same time and was first
        with contextlib.suppress(Exception):
            client.delete_run(mine)
    study.set_user_attr(V.ATTR_PARENT_RUN, winner)
    study.set_user_attr(V.ATTR_EXPERIMENT, experiment_id)
    return winner, winner == mine


def parent_tags(settings: sweep_settings.SweepSettings, space) -> dict[str, str]:
    tags = {
        V.TAG_STORAGE: redact(settings.storage),
        V.TAG_METRIC: ",".join(settings.metrics),
        V.TAG_DIRECTION: ",".join(settings.directions),
        "sweep.sampler": settings.sampler,
        "sweep.pruner": settings.pruner,
        "sweep.n_trials": str(settings.n_trials),
        V.TAG_WORKERS: str(settings.workers),
    }
    for name, text in space.describe().items():
        tags[f"sweep.space.{name}"] = text
    return tags


def parent_description(settings: sweep_settings.SweepSettings, counts: Mapping[str, int], finished: int, board) -> str:
    """The parent run's description on its MLflow page (markdown): the sweep, its progress,
    the best trial, and where to compare the trials' curves."""
    metric = settings.metrics[0]
    lines = [
        f"**Sweep `{settings.study_name}`**: {', '.join(f'{d} {m}' for m, d in zip(settings.metrics, settings.directions))}; "
        f"{settings.sampler} sampler, {settings.pruner} pruner.",
        f"{finished}/{settings.n_trials} trials finished: {counts.get('COMPLETE', 0)} complete, "
        f"{counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} failed.",
    ]
    counts_by_label = fit_view.counts_line(fit_view.label_counts(board))
    if counts_by_label:
        lines.append(f"Fit: {counts_by_label} (**Views** → *... by fit* puts one of each side by side; "
                     f"`plots/fit_map.png` shows where in the search space they are).")
    done = board[board["state"] == "COMPLETE"] if board is not None and not board.empty else None
    if done is not None and not done.empty:
        best = done.iloc[0]
        name = best["run_name"] if isinstance(best.get("run_name"), str) else f"trial {int(best['trial'])}"
        lines.append(f"Best: `{name}`, {metric}={float(best[metric]):.4g} (fit: {best['fit']}).")
    lines.append("Compare the trials' training and validation curves: **Views** → *Trials of ...*, "
                 "or expand this run in the runs table.")
    return "\n\n".join(lines)


# -------------------------------------------------------------------- leaderboard


def trial_runs(client, experiment_id: str, study_name: str) -> dict[str, Any]:
    """The trial runs of a study by run id (all pages)."""
    runs: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{V.TAG_ROLE}` = 'trial' and tags.`{V.TAG_STUDY}` = '{_quote(study_name)}'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            runs[run.info.run_id] = run
        token = page.token
        if not token:
            return runs


def leaderboard(study, settings: sweep_settings.SweepSettings, runs: Mapping[str, Any] | None = None):
    """Every trial as a row of a :class:`pandas.DataFrame`, best first.

    Columns: ``rank``, ``trial``, ``state``, the metric(s) (``loss/val``, ...), the
    trial's params, ``epochs``, ``pruned_at_epoch``, ``fit``, ``reason`` (why it was
    pruned or failed, else the fit reason), ``run_id``, ``run_name``, ``run_status``,
    ``seconds``. Ordered COMPLETE (best value first), PRUNED (best first), RUNNING, FAIL.
    """
    import pandas as pd

    runs = dict(runs or {})
    by_uid = {run.data.tags.get(V.TAG_TRIAL_UID): run for run in runs.values() if run.data.tags.get(V.TAG_TRIAL_UID)}
    param_names: list[str] = []
    rows = []
    trials = study.get_trials(deepcopy=False)
    retried_as = {}
    for trial in trials:
        origin = ST.retried_from(trial)
        if origin is not None:
            retried_as[origin] = trial.number
    for trial in trials:
        attrs = trial.user_attrs
        run = runs.get(attrs.get(V.TRIAL_RUN_ID) or "") or by_uid.get(attrs.get(V.TRIAL_UID) or "")
        tags = run.data.tags if run is not None else {}
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
        values = trial.values or [None] * len(settings.metrics)
        for metric, value in zip(settings.metrics, values):
            row[metric] = value
        for name, value in trial.params.items():
            if name not in param_names:
                param_names.append(name)
            row[name] = value
        row["epochs"] = attrs.get(V.TRIAL_EPOCHS)
        row["pruned_at_epoch"] = attrs.get(V.TRIAL_PRUNED_AT)
        row["fit"] = (tags.get(V.TAG_FIT) or attrs.get(V.TRIAL_FIT)
                      or (V.PRUNED if trial.state.name == "PRUNED" else None))
        row["fit_hint"] = tags.get(V.TAG_FIT_HINT)
        row["reason"] = (
            attrs.get(V.TRIAL_PRUNE_REASON) or attrs.get(V.TRIAL_FAIL_REASON)
            or ("interrupted" if attrs.get(V.TRIAL_INTERRUPTED) else None) or tags.get(V.TAG_FIT_REASON)
        )
        if trial.state.name == "FAIL" and not row["reason"]:
            row["reason"] = "no heartbeat: its worker died or stalled"
        if trial.number in retried_as and trial.state.name == "FAIL":
            row["reason"] = f"{row['reason']}; re-run as trial {retried_as[trial.number]}"
        origin = ST.retried_from(trial)
        if origin is not None:
            row["reason"] = f"re-run of trial {origin}" + (f": {row['reason']}" if row["reason"] else "")
        row["run_id"] = run.info.run_id if run is not None else attrs.get(V.TRIAL_RUN_ID)
        row["run_name"] = run.info.run_name if run is not None else None
        row["run_status"] = run.info.status if run is not None else None
        row["model_uri"] = attrs.get(V.TRIAL_MODEL_URI)
        duration = trial.duration
        row["seconds"] = round(duration.total_seconds(), 2) if duration is not None else None
        rows.append(row)
    param_names.sort(key=_param_order)
    columns = ["trial", "state", *settings.metrics, *param_names, "epochs", "pruned_at_epoch", "fit", "fit_hint", "reason",
               "run_id", "run_name", "run_status", "model_uri", "seconds"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        frame.insert(0, "rank", pd.Series(dtype="int64"))
        return frame
    first, direction = settings.metrics[0], settings.directions[0]
    order = frame["state"].map(lambda s: _STATE_ORDER.get(s, 9))
    value = pd.to_numeric(frame[first], errors="coerce")
    key = value if direction == "minimize" else -value
    frame = frame.assign(_order=order, _key=key.fillna(math.inf)).sort_values(["_order", "_key", "trial"])
    frame = frame.drop(columns=["_order", "_key"]).reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


# -------------------------------------------------------------------------- plots


def _param_order(name: str) -> tuple:
    """n_layers, units_l1, units_l2, ..., then the other settings in the order of sweeps.config.space.SETTINGS."""
    from sweeps.config.space import SETTINGS

    order = list(SETTINGS)
    if name.startswith("units_l") and name[7:].isdigit():
        return (order.index("units"), int(name[7:]))
    return (order.index(name) if name in order else len(order), 0)


def optuna_plots_html(study, settings: sweep_settings.SweepSettings, title: str | None = None) -> str:
    """Optuna's plots of the study in one self-contained HTML page (plotly).

    Optimization history, parameter importances, parallel coordinates and intermediate
    values (a single metric), or the Pareto front (several). A plot that cannot be drawn
    yet (too few trials) is replaced by a line saying why. Losses that span more than a
    decade get a log axis.

    With ``sweep.plotlyjs=embed`` the page carries plotly.js itself, gzip-compressed and
    unpacked by the browser (``DecompressionStream``): it works offline, in the MLflow UI's
    artifact viewer or opened as a file, at about 2 MB per sweep instead of plotly.js's
    4.8 MB; ``cdn`` loads plotly.js from its CDN (a page of a few hundred kB).
    """
    import optuna
    import optuna.visualization as vis

    multi = settings.multi_objective
    target = (lambda t: t.values[0]) if multi else None
    target_name = settings.metrics[0]
    sections: list[tuple[str, Any]] = [
        ("Optimization history", lambda: vis.plot_optimization_history(study, target=target, target_name=target_name)),
        ("Parameter importances", lambda: vis.plot_param_importances(study, target=target, target_name=target_name)),
        ("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study, target=target, target_name=target_name)),
    ]
    if multi:
        sections.append(("Pareto front", lambda: vis.plot_pareto_front(study, target_names=list(settings.metrics))))
    else:
        sections.append(("Intermediate values (per epoch)", lambda: vis.plot_intermediate_values(study)))
    parts, figures = [], []
    for index, (heading, make) in enumerate(sections):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = make()
            figure.update_layout(height=480, margin=dict(l=60, r=30, t=60, b=50))
            if heading in ("Optimization history", "Intermediate values (per epoch)") and _spans_decades(figure):
                figure.update_yaxes(type="log")
            figures.append((f"plot{index}", figure.to_json()))
            body = f"<div id='plot{index}' class='plot'></div>"
        except Exception as error:  # e.g. importances need two completed trials
            body = f"<p class='note'>Not drawn: {_escape(' '.join(str(error).split())[:300])}</p>"
        parts.append(f"<section><h2>{_escape(heading)}</h2>{body}</section>")
    draw = "".join(
        f"draw({json.dumps(div)}, {figure_json});" for div, figure_json in figures
    )
    counts = S.state_counts(study)
    summary = ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
    heading = _escape(title or f"Study {settings.study_name}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{heading}</title>{_plotly_loader(settings.plotlyjs)}"
        "<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px;color:#222}"
        "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 4px}.plot{height:480px}"
        ".meta{color:#555;font-size:13px}.note{color:#777;font-style:italic}</style></head><body>"
        f"<h1>{heading}</h1><div class='meta'>{_escape(', '.join(settings.metrics))} "
        f"({_escape(', '.join(settings.directions))}) &middot; {settings.sampler} sampler &middot; "
        f"{settings.pruner} pruner &middot; {_escape(summary)} &middot; optuna {optuna.__version__}</div>"
        + "".join(parts)
        + "<script>function draw(id, fig) { Plotly.newPlot(id, fig.data, fig.layout, "
          "{responsive: true, displaylogo: false}); }"
        + f"plotlyReady.then(function () {{ {draw} }}).catch(function (e) {{"
          "document.body.insertAdjacentHTML('afterbegin', '<p class=note>The plots need plotly.js: ' + e + '</p>'); });"
          "</script></body></html>"
    )


def _plotly_loader(mode: str) -> str:
    """A script that defines the promise ``plotlyReady`` (resolved once ``Plotly`` exists)."""
    if mode == "cdn":
        src = f"https://cdn.plot.ly/plotly-{_plotlyjs_version()}.min.js"
        return (
            "<script>var plotlyReady = new Promise(function (ok, fail) {"
            f"var s = document.createElement('script'); s.src = {json.dumps(src)};"
            "s.onload = ok; s.onerror = function () { fail('could not load ' + s.src); };"
            "document.head.appendChild(s); });</script>"
        )
    import base64
    import gzip

    import plotly.offline

    packed = base64.b64encode(gzip.compress(plotly.offline.get_plotlyjs().encode("utf-8"), 9)).decode("ascii")
    return (
        f"<script>var plotlyPacked = \"{packed}\";"
        "var plotlyReady = (async function () {"
        "var bytes = Uint8Array.from(atob(plotlyPacked), function (c) { return c.charCodeAt(0); });"
        "var text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();"
        "var s = document.createElement('script'); s.text = text; document.head.appendChild(s);"
        "if (typeof Plotly === 'undefined') { throw new Error('plotly.js did not load'); } })();</script>"
    )


def _spans_decades(figure) -> bool:
    values = []
    for trace in figure.data:
        ys = getattr(trace, "y", None)
        if ys is not None:
            values += [float(v) for v in ys if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    positive = [v for v in values if v > 0]
    return bool(positive) and len(positive) == len(values) and max(positive) / min(positive) > 10


def _plotlyjs_version() -> str:
    try:
        from plotly.offline._plotlyjs_version import __plotlyjs_version__

        return __plotlyjs_version__
    except Exception:
        return "latest"


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


# ------------------------------------------------------------------------ registry




def register_best(client, settings: sweep_settings.SweepSettings, board) -> tuple[str, str] | None:
    """Register the best completed trial's model and point the alias at it.

    Returns ``(name, version)``, or None when no completed trial has a model. A best
    trial already behind the alias is not registered again.
    """
    from mlflow.exceptions import MlflowException

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
    with contextlib.suppress(MlflowException):
        current = client.get_model_version_by_alias(name, alias)
        if current.run_id == best["run_id"]:
            return name, str(current.version)
    model_uri = str(best["model_uri"])
    model_id = model_uri.split("models:/", 1)[1] if model_uri.startswith("models:/") else None
    metric = settings.metrics[0]
    # The registry resolves a models:/ source through MLflow's global tracking URI, which
    # may be another store: give it the logged model's own artifact location instead.
    source = client.get_logged_model(model_id).artifact_location if model_id else model_uri
    run_name = best["run_name"] if isinstance(best["run_name"], str) else f"trial {int(best['trial'])}"
    version = client.create_model_version(
        name, source=source, run_id=best["run_id"], model_id=model_id,
        tags={V.TAG_STUDY: settings.study_name, V.TAG_TRIAL: str(int(best["trial"])),
              metric: f"{float(best[metric]):.6g}", "fit": str(best["fit"]), V.TAG_VERSION_RUN_NAME: run_name},
        description=f"{run_name}: trial {int(best['trial'])} of study {settings.study_name!r}, "
                    f"{metric}={float(best[metric]):.6g}",
    )
    client.set_registered_model_alias(name, alias, version.version)
    return name, str(version.version)


def register_champion(client, settings: sweep_settings.SweepSettings, board, *, interrupted: bool) -> tuple[tuple[str, str] | None, str]:
    """:func:`register_best`, except that a sweep that did not finish (Ctrl-C, SIGTERM, the
    failure budget) moves the alias only to a model better than the one behind it, and
    registers nothing when there is none. Returns ``((name, version) or None, what was done)``."""
    alias = settings.register_alias
    if not interrupted:
        registered = register_best(client, settings, board)
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


# ---------------------------------------------------------------------- the run


@dataclass
class ParentRun:
    """The parent run of a sweep, written through an explicit client (no active run)."""

    client: Any
    run_id: str
    experiment_id: str
    settings: sweep_settings.SweepSettings
    task: str = "multiclass"

    def refresh(self, study):
        """Best value and params, trial counts, the description and the leaderboard CSV; returns the leaderboard."""
        from sweeps.tracking import client as tracking

        runs = trial_runs(self.client, self.experiment_id, self.settings.study_name)
        board = leaderboard(study, self.settings, runs)
        counts = S.state_counts(study)
        finished = S.finished_count(study)
        metrics = {
            "trials/complete": counts.get("COMPLETE", 0),
            "trials/pruned": counts.get("PRUNED", 0),
            "trials/failed": counts.get("FAIL", 0),
            "epochs/total": float(board["epochs"].fillna(0).sum()) if not board.empty else 0.0,
            **{V.fit_count_metric(label): float(n) for label, n in fit_view.label_counts(board).items()},
        }
        tags: dict[str, str] = {}
        best = S.best_trials(study)
        if best:
            trial = best[0] if not self.settings.multi_objective else min(
                best, key=lambda t: t.values[0] if self.settings.directions[0] == "minimize" else -t.values[0]
            )
            for metric, value in zip(self.settings.metrics, trial.values):
                metrics[V.best_metric(metric)] = value
            tags.update({
                V.TAG_BEST_TRIAL: str(trial.number),
                V.TAG_BEST_VALUE: ", ".join(f"{v:.6g}" for v in trial.values),
                V.TAG_BEST_RUN_ID: str(trial.user_attrs.get(V.TRIAL_RUN_ID, "")),
            })
            for name, value in trial.params.items():
                tags[V.TAG_BEST_PARAM_PREFIX + name] = str(value)
            if self.settings.multi_objective:
                metrics["pareto/size"] = len(best)
        tags[V.TAG_NOTE] = parent_description(self.settings, counts, finished, board)
        tracking.log_metrics(self.client, self.run_id, {k: float(v) for k, v in metrics.items()}, step=finished)
        if tags:
            tracking.set_tags(self.client, self.run_id, tags)
        with tempfile.TemporaryDirectory(prefix="ann-sweep-") as tmp:
            path = Path(tmp) / "leaderboard.csv"
            board.to_csv(path, index=False)
            self.client.log_artifact(self.run_id, str(path), "leaderboard")
        self._mark_showcase(board, runs)
        return board

    def _mark_showcase(self, board, runs: Mapping[str, Any]) -> None:
        """Tag the trials the "by fit" view shows (:func:`sweeps.study.fit_view.representatives`);
        untag those no longer chosen. Only changes are written."""
        chosen = {board["run_id"].iloc[i] for i in fit_view.representatives(board, self.settings.top_k)}
        for run_id, run in runs.items():
            marked = run.data.tags.get(V.TAG_SHOWCASE) == "true"
            try:
                if run_id in chosen and not marked:
                    self.client.set_tag(run_id, V.TAG_SHOWCASE, "true")
                elif marked and run_id not in chosen:
                    self.client.delete_tag(run_id, V.TAG_SHOWCASE)
            except Exception as error:  # a deleted run, a server hiccup: the next refresh retries
                log.debug("showcase tag of run %s: %s", run_id, error)

    def finish(self, study, status: str = "FINISHED") -> dict[str, Any]:
        """Refresh, write the plots and the curve overlay, register the champion, end the run."""
        from sweeps.tracking import client as tracking
        outcome: dict[str, Any] = {"registered": None, "fit_views": {}}
        board = self.refresh(study)
        outcome["leaderboard"] = board
        with tempfile.TemporaryDirectory(prefix="ann-sweep-") as tmp:
            html = Path(tmp) / "optuna.html"
            try:
                html.write_text(optuna_plots_html(study, self.settings), encoding="utf-8")
                self.client.log_artifact(self.run_id, str(html), "plots")
            except Exception as error:
                log.warning("the Optuna plots could not be made: %s", error)
            for name, draw in (("top_trials_curves.png", lambda: self._curves(board)),
                               ("fit_map.png", lambda: fit_plots.fit_map_figure(study, board))):
                try:
                    figure = draw()
                    if figure is not None:
                        png = Path(tmp) / name
                        figure.savefig(png, format="png")
                        self.client.log_artifact(self.run_id, str(png), "plots")
                except Exception as error:
                    log.warning("plots/%s could not be drawn: %s", name, error)
        try:
            outcome["fit_views"] = ui_views.ensure_fit_views(
                self.client, self.experiment_id, self.run_id, self.task, fit_view.label_counts(board))
        except Exception as error:
            log.warning("the fit views could not be written: %s", error)
        try:
            outcome["registered"], outcome["champion"] = register_champion(
                self.client, self.settings, board, interrupted=status != "FINISHED")
        except Exception as error:
            log.warning("the best model could not be registered: %s", error)
        if outcome["registered"]:
            name, version = outcome["registered"]
            tracking.set_tags(self.client, self.run_id, {
                V.TAG_BEST_MODEL: f"models:/{name}@{self.settings.register_alias}", V.TAG_BEST_MODEL_VERSION: version,
            })
        tracking.terminate(self.client, self.run_id, status)
        return outcome

    def _curves(self, board):
        """The curve overlay: the best trial of each fit label, then the best overall."""
        def histories(run_id: str, metric: str) -> list[tuple[int, float]]:
            return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, metric))

        rows = fit_view.representatives(board, self.settings.top_k)
        return fit_plots.curves_figure(histories, board, rows, self.task)

    def reopen(self) -> None:
        """Mark a resumed sweep's parent RUNNING again."""
        self.client.update_run(self.run_id, status="RUNNING")
