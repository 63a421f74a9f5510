"""``ann-train``: train one network as configured by Hydra and track it in MLflow.

    ann-train                                   # moons, MLP [32], adam, SQLite ./mlflow.db
    ann-train dataset=digits model.hidden_layers=[64,32] optimizer=adam optimizer.lr=3e-3
    ann-train dataset=csv dataset.path=data.csv dataset.target=label
    ann-train tracking=server tracking.uri=http://127.0.0.1:5000
    ann-train --cfg job                         # print the composed config
    ann-train -m optimizer.lr=1e-3,1e-2         # Hydra multirun: one MLflow run each
    ann-train --replay RUN_ID                   # train a logged run again, check it reproduces

The configs are the package's ``conf`` directory (``sweeps/conf``, a link to the
repository's ``conf/``); ``--config-dir DIR`` adds a directory of your own configs.

Exit status: 0 on success, 2 for a user's mistake (one line on stderr, no run created,
or the run marked FAILED if it had started), 130 after Ctrl-C and 143 after SIGTERM
(the run is marked KILLED), 1 when the tracking store fails during the run (one line)
and for anything else (a bug: with its traceback).
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

import ann
from sweeps.cli.common import EXIT_USAGE, config_error_message, exit_stopped, fail, remove_job_output_dir
from sweeps.config import CONFIG_DIR
from sweeps.config.compose import TRAIN_CONFIG
from sweeps.core import vocabulary as V
from sweeps.core.errors import UserError, one_line
from sweeps.core.mlflow_env import quiet_mlflow
from sweeps.core.redaction import redact, redact_logging, redacted_printing, write_hydra_output
from sweeps.tracking.links import ui_command

PROG = "ann-train"


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    fail(PROG, message, status)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=TRAIN_CONFIG)
def _app(cfg: DictConfig) -> dict:
    # Deliberately lazy (start-up time): the run loads MLflow, only once Hydra has parsed the arguments.
    from mlflow.exceptions import MlflowException

    from sweeps.training.run import train

    _quiet_console()
    redact_logging()
    write_hydra_output(cfg)
    try:
        result = train(cfg)
    except (UserError, ann.AnnError) as error:
        remove_job_output_dir()
        _fail(str(error))
    except MlflowException as error:
        # The tracking store failed during the run (e.g. the server went away): one line,
        # exit 1; the run is marked FAILED if the store still answered.
        _fail(f"tracking failed during the run: {one_line(error, 400)}", status=1)
    _print_summary(result, cfg)
    return result


def _quiet_console() -> None:
    """The console shows each fact once: the log lines the summary repeats (the fit, the
    run's link) go to the job's log file only, and so do matplotlib's INFO lines."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(lambda record: not getattr(record, "summary", False))
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def _print_summary(result: dict, cfg: DictConfig) -> None:
    hint = f" [hint: {result['fit_hint']}]" if result.get("fit_hint") else ""
    lines = [f"fit: {result['fit']}: {result['fit_reason']}{hint}"]
    epochs = int(result.get("epochs_run", 0))
    best = int(result.get("best_epoch", 0))
    lines.append(f"epochs: {epochs}, best epoch: {best}")
    test = {key.split("/")[0]: value for key, value in result.items() if key.endswith("/test")}
    if test:
        lines.append("test: " + "  ".join(f"{name}={value:.4g}" for name, value in test.items()))
    if result.get(V.ENSEMBLE_MEMBERS, 1) > 1:
        first = "  ".join(f"{name}={result[V.ENSEMBLE_FIRST_PREFIX + name]:.4g}" for name in test
                          if V.ENSEMBLE_FIRST_PREFIX + name in result)
        lines.append(f"  ({int(result[V.ENSEMBLE_MEMBERS])} networks averaged; the first alone: {first})")
    if result.get("run_id"):
        lines.append(f"run: {result['run_id']}  {result['run_url']}")
        if result.get("model_uri"):
            lines.append(f"model: {result['model_uri']}")
        command = ui_command(str(cfg.tracking.uri))
        if command:
            lines.append(f"look at it: {command}  then open {result['experiment_url']}")
        else:
            lines.append(f"look at it: {result['experiment_url']}")
    print(redact("\n".join(lines)), flush=True)


def main(argv: list[str] | None = None) -> None:
    """The console script: Hydra's command line, with one-line errors and exit status 2."""
    if argv is not None:
        sys.argv = [PROG, *argv]
    if "--replay" in sys.argv[1:2]:  # ann-train --replay RUN_ID [key=value ...]: sweeps/cli/replay.py
        from sweeps.cli.replay import main as replay_main  # lazy: ann-replay's own start-up

        return replay_main(sys.argv[2:])
    debug = bool(os.environ.get("HYDRA_FULL_ERROR"))
    # Let configuration errors reach us as exceptions instead of Hydra's multi-line report.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    quiet_mlflow()
    # A server that goes away during a run: give up after seconds, not after the client's
    # default minutes of retries (7 retries, backoff factor 2, 120 s timeout). Yours win.
    for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
                        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")):
        os.environ.setdefault(name, value)
    from sweeps.training.run import Terminated  # lazy: start-up time (loads MLflow)

    try:
        with redacted_printing(sys.argv[1:]):  # --cfg job prints the overrides as typed
            _app()
    except (KeyboardInterrupt, Terminated) as error:
        exit_stopped(PROG, error)
    except Exception as error:
        message = config_error_message(error, PROG)
        if message is None or debug:
            raise
        _fail(message)


if __name__ == "__main__":
    main()

