"""``ann-sweep`` and ``ann-sweep-status``: Hydra command lines for sweeps.

    ann-sweep                                        # digits, 30 trials, TPE + median pruner
    ann-sweep sweep=moons sweep.n_trials=50
    ann-sweep sweep=digits dataset=breast_cancer sweep.workers=2
    ann-sweep sweep.params.lr.low=1e-4 sweep.params.lr.high=0.3
    ann-sweep --help                                 # the config groups and examples
    ann-sweep-status                                 # the default sweep's study: trials, orphans
    ann-sweep-status sweep.study_name=moons-mlp      # another study (same overrides as ann-sweep)
    ann-sweep-status --dry-run                       # what it would reconcile, changing nothing

Both compose the root config ``conf/ann_sweep.yaml`` (the groups of ``ann-train`` plus
``sweep``), so a status command takes the very overrides its sweep was started with.
``ann-sweep`` prints a progress bar (trials done / pruned / failed, best so far) on a
terminal -- one line per trial otherwise --, then the leaderboard, the champion model
and the commands that show the results.

Exit status: 0 when the sweep ran (trials that failed or were pruned included), 1 when it
stopped because more than ``sweep.max_failures`` trials failed, the tracking server did
not answer for ``sweep.outage_wait`` seconds or the Optuna storage for a minute (see
docs/explanation/distributed-faults.md), 2 for a mistake in the
command line or the config (one line on stderr, nothing started), 130 after Ctrl-C and
143 after SIGTERM. The first Ctrl-C / SIGTERM stops at the end of the running epoch (a
second one at once): the running trials are marked interrupted, their runs and the parent
run KILLED, and no database write is cut in half; the same command resumes the sweep.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
from typing import Any, Mapping, Sequence

import hydra
from omegaconf import DictConfig

from sweeps.cli.common import EXIT_USAGE, config_error_message, fail, remove_job_output_dir
from sweeps.config import CONFIG_DIR
from sweeps.config.compose import SWEEP_CONFIG
from sweeps.core.mlflow_env import quiet_mlflow
from sweeps.core.names import short_number
from sweeps.core.redaction import redact, redact_logging, redacted_printing, write_hydra_output
from sweeps.config.sweep_settings import format_duration

PROG = "ann-sweep"
STATUS_PROG = "ann-sweep-status"
EXIT_FAILED = 1
#: Rows of the leaderboard printed at the end of a sweep.
LEADERBOARD_ROWS = 10
#: MLflow's HTTP client settings for sweeps (see docs/explanation/heartbeats.md).
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

_prog = PROG


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    fail(_prog, message, status)


# ---------------------------------------------------------------------- formatting


def table_cell(value: Any) -> str:
    """A leaderboard or progress value as printed: ``""`` for none, integers without ``.0``, 4 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.4g}"
        return short_number(value)
    return str(value)


def leaderboard_table(board, metrics: Sequence[str], limit: int | None = LEADERBOARD_ROWS,
                      full_run_ids: bool = False, width: int | None = None, reasons: bool = False) -> str:
    """The leaderboard as a plain-text table (the first ``limit`` rows) that fits ``width``
    characters (default: the terminal's width).

    One column per searched setting, with the layer widths in one ``units`` column
    (``201-52``), then ``epochs`` and the ``fit`` label (``*``: still improving when it
    stopped, train longer). With ``reasons`` (``ann-sweep-status``) a last ``reason`` column
    says why a trial was pruned or failed, cut to fit. Too wide a table drops ``run_id``,
    then ``epochs``.
    """
    if board is None or board.empty:
        return "(no trials)"
    if width is None:
        width = shutil.get_terminal_size((160, 40)).columns
    rows = board.head(limit) if limit else board
    fixed = {"rank", "trial", "state", *metrics, "epochs", "pruned_at_epoch", "fit", "fit_hint", "reason", "run_id",
             "run_name", "run_status", "model_uri", "seconds", "n_layers"}
    unit_columns = [c for c in board.columns if c.startswith("units_l") and c[7:].isdigit()]
    params = [c for c in board.columns if c not in fixed and c not in unit_columns]
    cells: dict[str, list[str]] = {"rank": [], "trial": [], "state": []}
    for column in metrics:
        cells[column] = [table_cell(v) for v in rows[column]]
    if unit_columns:
        cells["units"] = ["-".join(table_cell(v) for v in row if table_cell(v)) for row in rows[unit_columns].values]
    for column in params:
        cells[column] = [table_cell(v) for v in rows[column]]
    cells["rank"] = [table_cell(v) for v in rows["rank"]]
    cells["trial"] = [table_cell(v) for v in rows["trial"]]
    cells["state"] = [table_cell(v) for v in rows["state"]]
    cells["epochs"] = [table_cell(v) for v in rows["epochs"]]
    hints = rows["fit_hint"] if "fit_hint" in rows else [None] * len(rows)
    cells["fit"] = [table_cell(fit) + ("*" if isinstance(hint, str) and hint else "")
                    for fit, hint in zip(rows["fit"], hints)]
    cells["run_id"] = [v if full_run_ids or not isinstance(v, str) else v[:8] for v in rows["run_id"].map(table_cell)]
    order = ["rank", "trial", "state", *metrics, *(["units"] if unit_columns else []), *params, "epochs", "fit", "run_id"]
    if reasons:
        cells["reason"] = [table_cell(v) for v in rows["reason"]]
        order.append("reason")
    for optional in ("run_id", "epochs"):
        if _table_width(cells, order) <= width or reasons:
            break
        order.remove(optional)
    text_columns = {"state", "fit", "run_id", "reason", "units", *params}
    widths = {c: max(len(c), *(len(v) for v in cells[c])) for c in order}
    if reasons:
        room = max(24, width - sum(widths[c] + 2 for c in order[:-1]) - 1)
        cells["reason"] = [v if len(v) <= room else v[: room - 1] + "…" for v in cells["reason"]]
        widths["reason"] = max(len("reason"), *(len(v) for v in cells["reason"]))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(widths[c]) if c in text_columns and not _numeric(v) else v.rjust(widths[c])
                         for c, v in zip(order, values)).rstrip()

    lines = [line(order), "  ".join("-" * widths[c] for c in order)]
    lines += [line([cells[c][i] for c in order]) for i in range(len(rows))]
    if any(cell.endswith("*") for cell in cells["fit"]):
        lines.append("* still improving when it stopped: train longer")
    more = len(board) - len(rows)
    if more > 0:
        lines.append(f"... and {more} more (the parent run's leaderboard/leaderboard.csv has them all)")
    return "\n".join(lines)


def _table_width(cells: Mapping[str, Sequence[str]], order: Sequence[str]) -> int:
    return sum(max(len(c), *(len(v) for v in cells[c])) + 2 for c in order) - 2


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


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
            from tqdm import tqdm

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
            why = f" ({why})" if why and state != "complete" else ""
            left = (f", {format_duration(self.deadline - time.time())} of budget left"
                    if self.deadline is not None else "")
            print(redact(f"[{progress.finished}/{progress.target}] trial {trial.number} {state}{value}{why}; "
                         f"pruned {progress.pruned}, failed {progress.failed}, {best}{left}"), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------- ann-sweep


def _quiet_console() -> None:
    """Keep the terminal for the progress bar: the console shows warnings, the log file everything."""
    import mlflow  # noqa: F401 - configures its loggers on import: do it before changing them
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(logging.ERROR)  # failed trials are reported by us, in one line
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow's own lines follow MLFLOW_LOGGING_LEVEL (sweeps.core.mlflow_env.quiet_mlflow: WARNING unless set).


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=SWEEP_CONFIG)
def _app(cfg: DictConfig) -> None:
    import ann
    from sweeps.core.errors import UserError
    from sweeps.study.runner import prepare, run_sweep
    from sweeps.training.run import hydra_overrides

    _quiet_console()
    redact_logging()
    write_hydra_output(cfg)
    try:
        prepared = prepare(cfg, hydra_overrides())
    except (UserError, ann.AnnError) as error:
        remove_job_output_dir()
        _fail(str(error))
    settings = prepared.settings
    dataset = prepared.spec.dataset
    printer: dict[str, ProgressPrinter] = {}

    def started(info: dict) -> None:
        print(redact(
            f"{PROG}: study {settings.study_name!r} in {settings.storage}: {settings.n_trials} trials on "
            f"{dataset} ({prepared.task}),\n  {' and '.join(f'{d} {m}' for m, d in zip(settings.metrics, settings.directions))}, "
            f"{settings.sampler} sampler, {settings.pruner} pruner, {settings.workers} worker{'s' if settings.workers > 1 else ''}"),
            flush=True,
        )
        if info["resumed"]:
            print(f"resuming: {info['finished_before']} trials done, {info['remaining']} to go", flush=True)
        if info.get("space_change"):
            print(f"search space changed (sweep.allow_space_change=true; recorded on the study and the parent run): "
                  f"{info['space_change']}", flush=True)
        if info.get("first_worker"):
            last = info["first_worker"] + settings.workers - 1
            numbers = f"{info['first_worker']}" if last == info["first_worker"] else f"{info['first_worker']}-{last}"
            print(f"joining the study as worker {numbers} (sampler seed {settings.seed}+worker)"
                  if settings.seed is not None else f"joining the study as worker {numbers}", flush=True)
        if info["parent_run_id"]:
            from sweeps.tracking.links import run_url

            print(redact(f"MLflow parent run {info['parent_run_id']} in experiment {prepared.tracking.experiment_name!r}:\n  "
                         f"{run_url(prepared.tracking.uri, info['experiment_id'], info['parent_run_id'])}"), flush=True)
        if info.get("deadline") is not None:
            cut = ("a trial still running then is pruned at the end of its epoch" if settings.budget is not None
                   else "no trial starts after it")
            print(f"time budget: {format_duration(settings.timeout)} ({cut}; "
                  f"sweep.n_trials={settings.n_trials} ends the sweep first if reached)", flush=True)
        if info.get("enqueued"):
            print(f"sweep.enqueue: {info['enqueued']} parameter set(s) queued to run first "
                  "(those already in the study are not queued again)", flush=True)
        printer["bar"] = ProgressPrinter(settings.n_trials, info["finished_before"], settings.metric,
                                         deadline=info.get("deadline"))

    def progress(state) -> None:
        if "bar" in printer:
            printer["bar"](state)

    from sweeps.study.objective import TrackingOutage

    try:
        outcome = run_sweep(prepared, progress=progress, started=started)
    except TrackingOutage as error:
        if "bar" in printer:
            printer["bar"].close()
        _fail(str(error), EXIT_FAILED)
    except (UserError, ann.AnnError) as error:
        if "bar" in printer:
            printer["bar"].close()
        remove_job_output_dir()
        _fail(str(error))
    finally:
        if "bar" in printer:
            printer["bar"].close()
    _print_outcome(prepared, outcome)
    if outcome.status == "FAILED":
        _fail(f"stopped after {outcome.failures} failed trials (more than sweep.max_failures={settings.max_failures}); "
              "the leaderboard above gives their reasons", EXIT_FAILED)


def trials_url(uri: str, experiment_id: str, parent_run_id: str) -> str:
    """The sweep's saved chart view (:mod:`sweeps.tracking.ui_views`): its trial runs listed flat, best
    objective first, the first charts overlaying training vs validation loss of the best ten."""
    from sweeps.tracking.links import view_url
    from sweeps.tracking.ui_views import trials_view_id

    return view_url(uri, experiment_id, trials_view_id(parent_run_id))


def _print_outcome(prepared, outcome) -> None:
    # Imported here, not at the top: they pull in NumPy, which --help and a config error never need.
    from sweeps.study.fit_view import counts_line, label_counts
    from sweeps.tracking.links import view_url
    from sweeps.tracking.ui_views import fit_view_id

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
    if outcome.registered:
        model, version = outcome.registered
        uri = f"models:/{model}@{settings.register_alias}"
        lines.append(f"model: {uri} (version {version})\n  load it with mlflow.pyfunc.load_model({uri!r})")
    if outcome.parent_run_id:
        from sweeps.tracking.links import run_url, ui_command

        uri = prepared.tracking.uri
        lines.append("parent run (leaderboard; plots: fit_map.png, top_trials_curves.png, optuna.html):\n  "
                     + run_url(uri, outcome.experiment_id, outcome.parent_run_id))
        command = ui_command(uri)
        compare = trials_url(uri, outcome.experiment_id, outcome.parent_run_id)
        if command:
            lines.append(f"look at it: {command}")
        lines.append(f"compare the trials' curves, best first:\n  {compare}")
        if outcome.finished_parent and counts:
            lines.append("one of each fit label side by side:\n  "
                         + view_url(uri, outcome.experiment_id, fit_view_id(outcome.parent_run_id)))
    from sweeps.core.storage import storage_kind

    if storage_kind(settings.storage) in ("sqlite", "journal"):
        lines.append(dashboard_line(settings.storage))
    status = [STATUS_PROG, *[o for o in _hydra_task_overrides() if not o.startswith("hydra")]]
    lines.append(f"trials and orphans: {' '.join(status)}")
    print(redact("\n".join(lines)), flush=True)


#: The extra that installs optuna-dashboard (pyproject.toml).
DASHBOARD_EXTRA = 'pip install "ann-sweeps[dashboard]"'


def dashboard_line(storage: str, installed: bool | None = None) -> str:
    """The command that opens the study in optuna-dashboard, and how to get it if it is missing."""
    import importlib.util

    if installed is None:
        installed = importlib.util.find_spec("optuna_dashboard") is not None
    line = f"Optuna dashboard: optuna-dashboard {redact(storage)}"
    return line if installed else f"{line}  (not installed: {DASHBOARD_EXTRA})"


def _hydra_task_overrides() -> list[str]:
    from sweeps.training.run import hydra_overrides

    return hydra_overrides()


def _run(app, prog: str, argv: list[str] | None) -> None:
    global _prog
    _prog = prog
    if argv is not None:
        sys.argv = [prog, *argv]
    previous = os.environ.get("HYDRA_FULL_ERROR")
    debug = bool(previous)
    # Let configuration errors reach us as exceptions instead of Hydra's multi-line report.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    quiet_mlflow()
    # A tracking server that goes away for a while (a restart): every request is retried
    # for about a minute (0 + 2 + 4 + 8 + 16 + 32 s of back-off) before a trial gives up
    # on it; the metrics of a running trial wait in its queue meanwhile. Yours win.
    if prog == PROG:
        for name, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(name, value)
    try:
        with redacted_printing(sys.argv[1:]):  # --cfg job prints the overrides as typed
            _run_app(app, prog, debug)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def _run_app(app, prog: str, debug: bool) -> None:
    from sweeps.core.faults import StorageOutage
    from sweeps.training.run import Terminated

    try:
        app()
    except (KeyboardInterrupt, Terminated) as error:
        _exit_interrupted(prog, error, error)
    except StorageOutage as error:  # retried for a minute first (sweeps.core.faults)
        print(redact(f"{prog}: error: {error}"), file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    except Exception as error:
        signal_error = _interrupt_behind(error)
        if signal_error is not None:  # a second Ctrl-C landed inside a library's clean-up code
            _exit_interrupted(prog, error, signal_error)
        message = _space_override_message(error) or config_error_message(error, prog, SWEEP_CONFIG)
        if message is None or debug:
            raise
        _fail(message)


def _interrupt_behind(error: BaseException) -> BaseException | None:
    """The KeyboardInterrupt / Terminated that ``error`` was raised while handling, if any
    (Optuna's trial loop turns an interrupt in its ``finally`` into an UnboundLocalError)."""
    from sweeps.training.run import Terminated

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (KeyboardInterrupt, Terminated)):
            return error
        error = error.__cause__ or error.__context__
    return None


def _exit_interrupted(prog: str, error: BaseException, signal_error: BaseException) -> None:
    """One line (what happened to the trials, the runs and the champion), then 130 / 143."""
    terminated = not isinstance(signal_error, KeyboardInterrupt)
    champion = getattr(error, "champion", None)
    print(redact(f"{prog}: {'terminated' if terminated else 'interrupted'} (the running trials are marked interrupted, "
                 f"the parent run KILLED{'; ' + champion if champion else ''}); run the same command again to resume"),
          file=sys.stderr, flush=True)
    raise SystemExit(143 if terminated else 130) from None


def _space_override_message(error: BaseException) -> str | None:
    """A search-space entry given a new shape (``sweep.params.lr={choices:[...]}``) cannot be merged."""
    import re

    found = re.search(r"Could not override '(sweep\.params\.[A-Za-z_]+)'", str(error))
    if not found or "not in struct" not in str(error.__cause__ or error):
        return None
    from sweeps.config.space import SETTINGS

    key = found.group(1)
    if key.count(".") != 2 or key.rsplit(".", 1)[1] not in SETTINGS:
        return None
    return (f"{key} cannot take that shape by merging: replace the whole entry with "
            f"'~{key}' '+{key}={{choices: [...]}}' (or {{low: ..., high: ...}}), or set its keys one by one "
            f"({key}.low=..., {key}.high=...)")


@contextlib.contextmanager
def graceful_signals():
    """The first Ctrl-C / SIGTERM asks the sweep to stop at the end of the running epoch
    (:data:`sweeps.study.objective.STOP`); a second one stops at once."""
    import signal
    import threading

    from sweeps.study.objective import STOP
    from sweeps.training.run import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    stops = {"count": 0}

    def handler(signum, frame):
        stops["count"] += 1
        if stops["count"] > 2:  # a third one while the second's clean-up runs: leave now
            print(f"\n{_prog}: stopped at once (trials left RUNNING are failed and re-run once their heartbeat "
                  "is stale; ann-sweep-status reconciles their runs)", file=sys.stderr, flush=True)
            os._exit(143 if signum == signal.SIGTERM else 130)
        if STOP.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)
        STOP.request(signum)
        print(f"\n{_prog}: stopping at the end of this epoch (again to stop at once)", file=sys.stderr, flush=True)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    STOP.clear()
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()


def main(argv: list[str] | None = None) -> None:
    """The ``ann-sweep`` console script."""
    with graceful_signals():
        _run(_app, PROG, argv)


# ---------------------------------------------------------------- ann-sweep-status


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=SWEEP_CONFIG)
def _status_app(cfg: DictConfig) -> None:
    import ann
    from sweeps.config.run_spec import to_container
    from sweeps.core.errors import UserError
    from sweeps.study.status import study_status
    from sweeps.config.sweep_settings import parse_settings

    try:
        config = to_container(cfg)
        settings = parse_settings(config.get("sweep") or {})
        tracking = config.get("tracking") or {}
        uri = tracking.get("uri") if tracking.get("enabled", True) else None
        report = study_status(settings, uri, tracking.get("experiment_name"), reconcile=not _status_options["dry_run"],
                              probe_timeout=float(tracking.get("probe_timeout", 5.0)))
    except (UserError, ann.AnnError) as error:
        _fail(str(error))
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
        lines.append(f"{'would reconcile' if _status_options['dry_run'] else 'reconciled'} ({len(report.reconciled)}):")
        lines += [f"  {line}" for line in report.reconciled]
        if _status_options["dry_run"]:
            lines.append(f"  (--dry-run: nothing was changed; run {STATUS_PROG} without it to apply)")
    print(redact("\n".join(lines)), flush=True)


#: Options of ann-sweep-status that are not Hydra overrides.
_status_options = {"dry_run": False}


def status_main(argv: list[str] | None = None) -> None:
    """The ``ann-sweep-status`` console script (writes no Hydra output folder).

    ``--dry-run`` reports what would be reconciled (stale trials failed, orphan runs
    KILLED) without changing anything.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _status_options["dry_run"] = "--dry-run" in args
    args = [a for a in args if a != "--dry-run"]
    quiet = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    if not any(a in ("--help", "-h", "--hydra-help", "--info") or a.startswith("--cfg") for a in args):
        args += quiet
    _run(_status_app, STATUS_PROG, args)


if __name__ == "__main__":
    main()
