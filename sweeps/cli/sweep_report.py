"""What ``ann-sweep`` and ``ann-sweep-status`` print: the start, the progress, the end, the status.

Plain lines built from the sweep's objects; the command lines print them (passwords hidden).
Cheap to import: no MLflow, Optuna or SQLAlchemy (``--help`` and a config error need none).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time

from tqdm import tqdm

from sweeps.cli.leaderboard import leaderboard_table, table_cell
from sweeps.config.sweep_settings import format_duration
from sweeps.core.names import refit_line
from sweeps.core.redaction import redact
from sweeps.core.storage import storage_kind
from sweeps.study.fit_view import counts_line, label_counts
from sweeps.tracking.links import run_url, ui_command, view_url
from sweeps.tracking.ui_views import fit_view_id, trials_view_id


def started_lines(prepared, info: dict) -> list[str]:
    """What ``ann-sweep`` prints once the study and the parent run are known."""
    settings = prepared.settings
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    lines = [f"ann-sweep: study {settings.study_name!r} in {settings.storage}: {settings.n_trials} trials on "
             f"{prepared.spec.dataset} ({prepared.task}),\n  "
             f"{' and '.join(f'{d} {m}' for m, d in zip(settings.metrics, settings.directions))}, "
             f"{settings.sampler} sampler, {settings.pruner} pruner, {workers}", *prepared.chosen]  # + what the data chose
    if info["resumed"]:
        lines.append(f"resuming: {info['finished_before']} trials done, {info['remaining']} to go")
    if info.get("space_change"):
        lines.append(f"search space changed (sweep.allow_space_change=true; recorded on the study and the parent run): "
                     f"{info['space_change']}")
    if info.get("first_worker"):
        last = info["first_worker"] + settings.workers - 1
        numbers = f"{info['first_worker']}" if last == info["first_worker"] else f"{info['first_worker']}-{last}"
        lines.append(f"joining the study as worker {numbers} (sampler seed {settings.seed}+worker)"
                     if settings.seed is not None else f"joining the study as worker {numbers}")
    if info["parent_run_id"]:
        lines.append(f"MLflow parent run {info['parent_run_id']} in experiment {prepared.tracking.experiment_name!r}:\n  "
                     f"{run_url(prepared.tracking.uri, info['experiment_id'], info['parent_run_id'])}")
    if info.get("deadline") is not None:
        cut = ("a trial still running then is pruned at the end of its epoch" if settings.budget is not None
               else "no trial starts after it")
        lines.append(f"time budget: {format_duration(settings.timeout)} ({cut}; "
                     f"sweep.n_trials={settings.n_trials} ends the sweep first if reached)")
    if info.get("enqueued"):
        lines.append(f"sweep.enqueue: {info['enqueued']} parameter set(s) to run first "
                     "(those already in the study are not queued again)")
    return lines


class ProgressPrinter:
    """A tqdm bar on a terminal (trials done / pruned / failed, best so far), else one line per trial."""

    def __init__(self, target: int, initial: int, metric: str, stream=None, deadline: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.metric = metric
        self.deadline = deadline  # time.time() after which no new trial starts (sweep.budget)
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        self.seen: set[int] = set()
        if self.tty:
            self.bar = tqdm(total=target, initial=initial, desc="trials", unit="trial", file=self.stream,
                            dynamic_ncols=True, bar_format="{desc}: {n_fmt}/{total_fmt} |{bar:24}| {elapsed}<{remaining}{postfix}")

    def __call__(self, progress) -> None:
        best = (f"best {self.metric}={table_cell(progress.best_value)} (t{progress.best_trial})"
                if progress.best_value is not None else "best -")
        postfix = f"pruned {progress.pruned} · failed {progress.failed} · {best}"
        if self.deadline is not None:
            left = f"{format_duration(self.deadline - time.time())} of budget left"
            postfix = f"{left} · {postfix}"
        trial = progress.last
        if self.bar is not None:
            self.bar.n = min(progress.finished, self.bar.total)
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.refresh()
            if trial is not None and trial.state.name == "FAIL":
                reason = trial.user_attrs.get("fail_reason") or "interrupted"
                self.bar.write(redact(f"trial {trial.number} failed: {reason}"), file=self.stream)
            return
        if trial is not None and trial.number not in self.seen:
            self.seen.add(trial.number)
            state = trial.state.name.lower()
            value = f" {self.metric}={table_cell(trial.values[0])}" if trial.values else ""
            why = trial.user_attrs.get("prune_reason") or trial.user_attrs.get("fail_reason") or ""
            if value:  # "... stopped it at epoch 6 (loss/val=1.821)": the value is on the line already
                why = re.sub(rf"\s*\({re.escape(self.metric)}=[^()]*\)$", "", why)
            why = f" ({why})" if why and state != "complete" else ""
            left = (f", {format_duration(self.deadline - time.time())} of budget left"
                    if self.deadline is not None else "")
            print(redact(f"[{progress.finished}/{progress.target}] trial {trial.number} {state}{value}{why}; "
                         f"pruned {progress.pruned}, failed {progress.failed}, {best}{left}"), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()




def trials_url(uri: str, experiment_id: str, parent_run_id: str) -> str:
    """The sweep's saved chart view (:mod:`sweeps.tracking.ui_views`): its trial runs listed flat, best
    objective first, the first charts overlaying training vs validation loss of the best ten."""
    return view_url(uri, experiment_id, trials_view_id(parent_run_id))


def outcome_lines(prepared, outcome, status_command: str) -> list[str]:
    """What ``ann-sweep`` prints at the end: counts, the leaderboard, the best trial, the model and the links."""
    settings = prepared.settings
    p = outcome.progress
    lines = [
        "",
        f"{p.finished}/{settings.n_trials} trials finished in {outcome.seconds:.0f} s: {p.complete} complete, "
        f"{p.pruned} pruned, {p.failed} failed; {outcome.epochs_total} epochs trained"
        + (f" (stopped: {outcome.stop_reason})" if outcome.stop_reason and outcome.stop_reason != "interrupted" else ""),
    ]
    counts = counts_line(label_counts(outcome.leaderboard))
    if counts:
        lines.append(f"fit: {counts}")
    for error in outcome.worker_errors:
        lines.append(f"warning: {error}")
    if outcome.parent_run_id and not outcome.finished_parent:
        # Deliberately lazy: the finisher's module loads SQLAlchemy, which --help never needs.
        from sweeps.study.finisher import finisher_label

        by = outcome.finished_by
        if p.finished < settings.n_trials:
            lines.append("the parent run is left to the other workers of this study (the one that ends last finishes it)")
        elif by.get("done"):
            lines.append(f"the parent run was finished by {finisher_label(by)} of this study (leaderboard, plots, champion)")
        else:
            lines.append(f"the parent run is being finished by {finisher_label(by)} of this study "
                         "(ann-sweep-status finishes it if that worker dies)")
    lines += ["", leaderboard_table(outcome.leaderboard, settings.metrics), ""]
    board = outcome.leaderboard
    done = board[board["state"] == "COMPLETE"] if board is not None and not board.empty else None
    if done is not None and not done.empty:
        best = done.iloc[0]
        values = ", ".join(f"{m}={table_cell(best[m])}" for m in settings.metrics)
        name = best["run_name"] if isinstance(best["run_name"], str) else f"trial {int(best['trial'])}"
        lines.append(f"best: {name}  {values}  (fit: {best['fit']})")
    if outcome.refit:
        lines.append(refit_line(outcome.refit, prepared.task))
    if outcome.registered:
        model, version = outcome.registered
        uri = f"models:/{model}@{settings.register_alias}"
        lines.append(f"model: {uri} (version {version})\n  load it with mlflow.pyfunc.load_model({uri!r})")
    lines += _link_lines(prepared, outcome, bool(counts))
    if storage_kind(settings.storage) in ("sqlite", "journal"):
        lines.append(dashboard_line(settings.storage))
    lines.append(f"trials and orphans: {status_command}")
    return lines


#: The extra that installs optuna-dashboard (pyproject.toml).
DASHBOARD_EXTRA = 'pip install "ann-sweeps[dashboard]"'


def dashboard_line(storage: str, installed: bool | None = None) -> str:
    """The command that opens the study in optuna-dashboard, and how to get it if it is missing."""
    if installed is None:
        installed = importlib.util.find_spec("optuna_dashboard") is not None
    line = f"Optuna dashboard: optuna-dashboard {redact(storage)}"
    return line if installed else f"{line}  (not installed: {DASHBOARD_EXTRA})"


def _link_lines(prepared, outcome, labelled: bool) -> list[str]:
    """The parent run, how to open a local store, the trials' chart view and the fit-label view."""
    if not outcome.parent_run_id:
        return []
    lines = []
    uri = prepared.tracking.uri
    lines.append("parent run (leaderboard; plots: fit_map.png, top_trials_curves.png, optuna.html):\n  "
                 + run_url(uri, outcome.experiment_id, outcome.parent_run_id))
    command = ui_command(uri)
    compare = trials_url(uri, outcome.experiment_id, outcome.parent_run_id)
    if command:
        lines.append(f"look at it: {command}")
    lines.append(f"compare the trials' curves, best first:\n  {compare}")
    if outcome.finished_parent and labelled:
        lines.append("one of each fit label side by side:\n  "
                     + view_url(uri, outcome.experiment_id, fit_view_id(outcome.parent_run_id)))
    return lines


def status_lines(report, dry_run: bool, prog: str = "ann-sweep-status") -> list[str]:
    """What ``ann-sweep-status`` prints: the counts, the leaderboard with reasons, orphans, what it reconciled."""
    c = report.counts
    lines = [
        f"study {report.study_name!r} in {report.storage}: "
        + ", ".join(f"{d} {m}" for m, d in zip(report.metrics, report.directions)),
        f"{report.finished} finished (counting toward sweep.n_trials): {c.get('COMPLETE', 0)} complete, "
        f"{c.get('PRUNED', 0)} pruned, {c.get('FAIL', 0)} failed, {c.get('RUNNING', 0)} running",
    ]
    if report.parent_run_id:
        lines.append(f"MLflow parent run: {report.parent_run_id} (experiment {report.experiment_id})")
    others = [name for name in report.studies if name != report.study_name]
    if others:
        lines.append("other studies in this storage: " + ", ".join(others))
    lines += ["", leaderboard_table(report.leaderboard, report.metrics, limit=None, full_run_ids=True, reasons=True), ""]
    if report.orphans:
        lines.append(f"orphans ({len(report.orphans)}):")
        lines += [f"  {line}" for line in report.orphans]
    else:
        lines.append("orphans: none")
    if report.reconciled:
        lines.append(f"{'would reconcile' if dry_run else 'reconciled'} ({len(report.reconciled)}):")
        lines += [f"  {line}" for line in report.reconciled]
        if dry_run:
            lines.append(f"  (--dry-run: nothing was changed; run {prog} without it to apply)")
    return lines
