"""``ann-sweep`` and ``ann-sweep-status``: Hydra command lines for sweeps.

    ann-sweep                                        # digits, 40 trials, TPE + successive halving, refit
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
run KILLED, and no database write is cut in half; the same command resumes the sweep. During
the champion's refit it stops the refit (its run KILLED): the trial's own model is registered,
the parent run finished, and the exit status is 130 / 143 still.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import threading

import hydra
from omegaconf import DictConfig

import ann
from sweeps.cli.common import EXIT_USAGE, config_error_message, fail, remove_job_output_dir
from sweeps.cli.sweep_report import ProgressPrinter, outcome_lines, started_lines, status_lines
from sweeps.config import CONFIG_DIR
from sweeps.config.compose import SWEEP_CONFIG
from sweeps.config.run_spec import to_container
from sweeps.config.space import SETTINGS
from sweeps.config.sweep_settings import parse_settings
from sweeps.core.errors import UserError
from sweeps.core.mlflow_env import quiet_mlflow
from sweeps.core.redaction import redact, redact_logging, redacted_printing, write_hydra_output

PROG = "ann-sweep"
STATUS_PROG = "ann-sweep-status"
EXIT_FAILED = 1
#: MLflow's HTTP client settings for sweeps (see docs/explanation/heartbeats.md).
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

_prog = PROG


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    fail(_prog, message, status)


# ---------------------------------------------------------------------- ann-sweep


def _quiet_console() -> None:
    """Keep the terminal for the progress bar: the console shows warnings, the log file everything."""
    # Deliberately lazy (start-up time): MLflow configures its loggers when imported, so it is
    # imported here, just before they are changed, and only once Hydra has parsed the arguments.
    import mlflow  # noqa: F401
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
    # Deliberately lazy (here and in _status_app): the study, MLflow and Optuna load only once
    # Hydra has parsed the command line, so that --help and a config error answer at once.
    from sweeps.study.objective import TrackingOutage
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
    printer: dict[str, ProgressPrinter] = {}

    def started(info: dict) -> None:
        print(redact("\n".join(started_lines(prepared, info))), flush=True)
        printer["bar"] = ProgressPrinter(settings.n_trials, info["finished_before"], settings.metric,
                                         deadline=info.get("deadline"))

    def progress(state) -> None:
        if "bar" in printer:
            printer["bar"](state)

    try:
        outcome = run_sweep(prepared, progress=progress, started=started)
    except TrackingOutage as error:
        _fail(str(error), EXIT_FAILED)
    except (UserError, ann.AnnError) as error:
        remove_job_output_dir()
        _fail(str(error))
    except Exception as error:
        interrupt = _interrupt_behind(error)
        if interrupt is None:
            raise
        # A second Ctrl-C inside a library's clean-up code: raised as the interrupt it is, which
        # Hydra lets through (it reports an Exception as "Error executing job" before we can).
        raise interrupt from None
    finally:
        if "bar" in printer:
            printer["bar"].close()
    status = " ".join([STATUS_PROG, *[o for o in hydra_overrides() if not o.startswith("hydra")]])
    print(redact("\n".join(outcome_lines(prepared, outcome, status))), flush=True)
    if outcome.status == "FAILED":
        _fail(f"stopped after {outcome.failures} failed trials (more than sweep.max_failures={settings.max_failures}); "
              "the leaderboard above gives their reasons", EXIT_FAILED)
    if outcome.refit and outcome.refit.get("stopped"):  # a Ctrl-C / SIGTERM during the refit: it stopped
        signum = outcome.refit.get("signum")
        print(f"{PROG}: {'terminated' if signum == signal.SIGTERM else 'interrupted'} during the champion's refit "
              "(the sweep itself finished; the champion is the trial's own model)", file=sys.stderr, flush=True)
        raise SystemExit(143 if signum == signal.SIGTERM else 130)


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
    # Deliberately lazy (start-up time): the faults load Optuna and SQLAlchemy, the run MLflow.
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
    from sweeps.training.run import Terminated  # lazy: start-up time (loaded already when an error gets here)

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
    found = re.search(r"Could not override '(sweep\.params\.[A-Za-z_]+)'", str(error))
    if not found or "not in struct" not in str(error.__cause__ or error):
        return None
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
    # Deliberately lazy (start-up time): the objective and the run load MLflow and Optuna.
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
    quiet_mlflow()  # before graceful_signals() imports MLflow (its log level is read at import)
    with graceful_signals():
        _run(_app, PROG, argv)


# ---------------------------------------------------------------- ann-sweep-status


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=SWEEP_CONFIG)
def _status_app(cfg: DictConfig) -> None:
    from sweeps.study.status import study_status  # deliberately lazy: see _app

    try:
        config = to_container(cfg)
        settings = parse_settings(config.get("sweep") or {})
        tracking = config.get("tracking") or {}
        uri = tracking.get("uri") if tracking.get("enabled", True) else None
        report = study_status(settings, uri, tracking.get("experiment_name"), reconcile=not _status_options["dry_run"],
                              probe_timeout=float(tracking.get("probe_timeout", 5.0)))
    except (UserError, ann.AnnError) as error:
        _fail(str(error))
    print(redact("\n".join(status_lines(report, _status_options["dry_run"], STATUS_PROG))), flush=True)


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
