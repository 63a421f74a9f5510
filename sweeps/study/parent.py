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
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sweeps.config import sweep_settings
from sweeps.core import vocabulary as V
from sweeps.study import fit_plots
from sweeps.study import fit_view
from sweeps.study import optuna_study as S
from sweeps.study.leaderboard import leaderboard, quote, trial_runs
from sweeps.study.optuna_plots import optuna_plots_html, optuna_plots_html_of
from sweeps.study.registry import register_champion
from sweeps.tracking import client as tracking
from sweeps.tracking import ui_views
from sweeps.core.redaction import redact

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------- parent


def _candidates(client, experiment_id: str, study_name: str, storage: str) -> list:
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{V.TAG_ROLE}` = 'parent' and tags.`{V.TAG_STUDY}` = '{quote(study_name)}' "
                       f"and tags.`{V.TAG_STORAGE}` = '{quote(redact(storage))}'"),
        max_results=50,
    )
    return sorted(runs, key=lambda run: (run.info.start_time or 0, run.info.run_id))


def find_or_create_parent(
    client, experiment_id: str, study, settings: sweep_settings.SweepSettings, *, tags: Mapping[str, str] | None = None
) -> tuple[str, bool]:
    """The parent run id of ``study`` (see the module docstring); ``(run_id, created)``."""
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


# ---------------------------------------------------------------------- the run


@dataclass
class ParentRun:
    """The parent run of a sweep, written through an explicit client (no active run)."""

    client: Any
    run_id: str
    experiment_id: str
    settings: sweep_settings.SweepSettings
    task: str = "multiclass"
    #: The process's tracking session (its client is ``client``), shared with its trials.
    session: Any = None
    #: The trial runs read so far, by id, and those tagged as showcase: a refresh reads only
    #: the runs of trials finished since the last one, so its cost does not grow with the study.
    _runs: dict = field(default_factory=dict, repr=False)
    _showcased: set = field(default_factory=set, repr=False)
    #: The end plots were handed to the session's writer (:meth:`submit_end_plots`), and the
    #: leaderboard it made then, once it has also logged the fit figures.
    _end_plots_submitted: bool = field(default=False, repr=False)
    _end_board: Any = field(default=None, repr=False)

    def _trial_runs(self, study, full: bool) -> dict[str, Any]:
        """Every trial run (``full``), or the cached ones plus those of newly finished trials."""
        if full or not self._runs:
            self._runs = trial_runs(self.client, self.experiment_id, self.settings.study_name)
            self._showcased = {run_id for run_id, run in self._runs.items()
                               if run.data.tags.get(V.TAG_SHOWCASE) == "true"}
            return self._runs
        new = [trial.user_attrs.get(V.TRIAL_RUN_ID) for trial in study.get_trials(deepcopy=False)
               if trial.state.is_finished()]
        new = [run_id for run_id in new if run_id and run_id not in self._runs]
        for start in range(0, len(new), 100):
            ids = ", ".join(f"'{quote(run_id)}'" for run_id in new[start:start + 100])
            for run in self.client.search_runs([self.experiment_id], filter_string=f"attributes.run_id IN ({ids})",
                                               max_results=100):
                self._runs[run.info.run_id] = run
        return self._runs

    def refresh(self, study, full: bool = False):
        """Best value and params, trial counts, the description and the leaderboard CSV; returns the leaderboard.

        Reads the runs of the trials finished since the last refresh (``full``: every trial run again).
        """
        runs = self._trial_runs(study, full)
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
        for run_id in (chosen ^ self._showcased) & set(runs):
            try:
                if run_id in chosen:
                    self.client.set_tag(run_id, V.TAG_SHOWCASE, "true")
                    self._showcased.add(run_id)
                else:
                    self.client.delete_tag(run_id, V.TAG_SHOWCASE)
                    self._showcased.discard(run_id)
            except Exception as error:  # a deleted run, a server hiccup: the next refresh retries
                log.debug("showcase tag of run %s: %s", run_id, error)

    def submit_end_plots(self, study) -> None:
        """The parent's end plots made by the session's writer while this thread goes on (the
        sweep refits its champion meanwhile): ``plots/optuna.html``, then the final leaderboard
        and the fit figures, queued after the trials' tails; the helper process draws, the
        writer's thread reads and logs. :meth:`finish` then uses them (and makes whatever
        failed itself). Drain the writer before :meth:`finish`."""
        if self.session is None:
            return
        trials = [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]
        directions, writer = list(study.directions), self.session.writer
        writer.submit(self._log_optuna_plots,
                      lambda: writer.offloaded(optuna_plots_html_of, trials, directions, self.settings))
        writer.submit(self._end_board_and_fit_plots, study, trials, directions)
        self._end_plots_submitted = True

    def _end_board_and_fit_plots(self, study, trials, directions) -> None:
        """A writer job: the full refresh, then the fit figures drawn in the helper process."""
        board = self.refresh(study, full=True)
        rows = fit_view.representatives(board, self.settings.top_k)
        curves = {(run_id, metric): self._history(run_id, metric)
                  for run_id in board["run_id"].iloc[list(rows)] for metric in fit_plots.curve_metrics(self.task)}
        self._log_pngs(*self.session.writer.offloaded(
            fit_plots.fit_pngs_of, trials, directions, board, curves, rows, self.task))
        self._end_board = board

    def _log_optuna_plots(self, draw) -> None:
        """The page ``draw()`` returns as the run's ``plots/optuna.html`` (a failure is a warning)."""
        with tempfile.TemporaryDirectory(prefix="ann-sweep-") as tmp:
            html = Path(tmp) / "optuna.html"
            try:
                html.write_text(draw(), encoding="utf-8")
                self.client.log_artifact(self.run_id, str(html), "plots")
            except Exception as error:
                log.warning("the Optuna plots could not be made: %s", error)

    def finish(self, study, status: str = "FINISHED", refit=None) -> dict[str, Any]:
        """Refresh, write the plots and the curve overlay, register the champion (or its ``refit``), end the run."""
        outcome: dict[str, Any] = {"registered": None, "fit_views": {}}
        board = self._end_board
        if not self._end_plots_submitted:
            self._log_optuna_plots(lambda: optuna_plots_html(study, self.settings))
        if board is None:  # not made by the writer (or it failed there): here, now
            board = self.refresh(study, full=True)
            rows = fit_view.representatives(board, self.settings.top_k)
            self._log_pngs(*fit_plots.fit_pngs(study, board, self._history, rows, self.task))
        outcome["leaderboard"] = board
        try:
            outcome["fit_views"] = ui_views.ensure_fit_views(
                self.client, self.experiment_id, self.run_id, self.task, fit_view.label_counts(board))
        except Exception as error:
            log.warning("the fit views could not be written: %s", error)
        try:
            outcome["registered"], outcome["champion"] = register_champion(
                self.client, self.settings, board, interrupted=status != "FINISHED", refit=refit)
        except Exception as error:
            log.warning("the best model could not be registered: %s", error)
        if outcome["registered"]:
            name, version = outcome["registered"]
            tracking.set_tags(self.client, self.run_id, {
                V.TAG_BEST_MODEL: f"models:/{name}@{self.settings.register_alias}", V.TAG_BEST_MODEL_VERSION: version,
            })
        tracking.terminate(self.client, self.run_id, status)
        return outcome

    def _history(self, run_id: str, metric: str) -> list[tuple[int, float]]:
        """A trial run's ``(step, value)`` curve of ``metric`` (another worker's runs included)."""
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, metric))

    def _log_pngs(self, pngs: Mapping[str, bytes], errors: Mapping[str, str]) -> None:
        """Log the fit figures under ``plots/``; a figure that could not be drawn is a warning."""
        for name, error in errors.items():
            log.warning("plots/%s could not be drawn: %s", name, error)
        with tempfile.TemporaryDirectory(prefix="ann-sweep-") as tmp:
            for name, data in pngs.items():
                try:
                    (Path(tmp) / name).write_bytes(data)
                    self.client.log_artifact(self.run_id, str(Path(tmp) / name), "plots")
                except Exception as error:
                    log.warning("plots/%s could not be logged: %s", name, error)

    def reopen(self) -> None:
        """Mark a resumed sweep's parent RUNNING again."""
        self.client.update_run(self.run_id, status="RUNNING")
