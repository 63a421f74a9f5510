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

import errno
import os
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweeps.config import CONFIG_DIR
from sweeps.core.mlflow_env import quiet_mlflow
from sweeps.core.redaction import redact, redact_logging, redacted_printing, write_hydra_output

PROG = "ann-train"
EXIT_USAGE = 2
#: A folder the program cannot write to (a read-only, full or foreign one): the user's situation, not a bug.
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    print(redact(f"{PROG}: error: {' '.join(str(message).split())}"), file=sys.stderr)
    raise SystemExit(status)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> dict:
    from mlflow.exceptions import MlflowException

    import ann
    from sweeps.core.errors import UserError
    from sweeps.training.run import train

    _quiet_console()
    redact_logging()
    write_hydra_output(cfg)
    try:
        result = train(cfg)
    except (UserError, ann.AnnError) as error:
        _remove_job_output_dir()
        _fail(str(error))
    except MlflowException as error:
        # The tracking store failed during the run (e.g. the server went away): one line,
        # exit 1; the run is marked FAILED if the store still answered.
        message = " ".join(str(error).split())
        _fail(f"tracking failed during the run: {message[:400]}", status=1)
    _print_summary(result, cfg)
    return result


def _quiet_console() -> None:
    """The console shows each fact once: the log lines the summary repeats (the fit, the
    run's link) go to the job's log file only, and so do matplotlib's INFO lines."""
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(lambda record: not getattr(record, "summary", False))
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def _remove_job_output_dir() -> None:
    """Remove the output folder Hydra made for a job that never ran (nothing half-written).

    Only a folder that holds nothing but Hydra's own ``.hydra/`` and the job's log is removed.
    """
    import shutil

    from hydra.core.hydra_config import HydraConfig

    try:
        hydra_cfg = HydraConfig.get()
        directory = Path(hydra_cfg.runtime.output_dir)
        own = {".hydra", f"{hydra_cfg.job.name}.log"}
    except Exception:  # not inside a Hydra job
        return
    if directory.is_dir() and directory.resolve() != Path.cwd().resolve():
        if {entry.name for entry in directory.iterdir()} <= own:
            shutil.rmtree(directory, ignore_errors=True)
            cwd = Path.cwd().resolve()
            for parent in directory.resolve().parents:  # outputs/<date>/, outputs/ when empty
                if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
                    break
                parent.rmdir()


def _print_summary(result: dict, cfg: DictConfig) -> None:
    hint = f" [hint: {result['fit_hint']}]" if result.get("fit_hint") else ""
    lines = [f"fit: {result['fit']}: {result['fit_reason']}{hint}"]
    epochs = int(result.get("epochs_run", 0))
    best = int(result.get("best_epoch", 0))
    lines.append(f"epochs: {epochs}, best epoch: {best}")
    test = {key.split("/")[0]: value for key, value in result.items() if key.endswith("/test")}
    if test:
        lines.append("test: " + "  ".join(f"{name}={value:.4g}" for name, value in test.items()))
    if result.get("run_id"):
        lines.append(f"run: {result['run_id']}  {result['run_url']}")
        if result.get("model_uri"):
            lines.append(f"model: {result['model_uri']}")
        from sweeps.tracking.links import ui_command

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
        from sweeps.cli.replay import main as replay_main

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
    from sweeps.training.run import Terminated

    try:
        with redacted_printing(sys.argv[1:]):  # --cfg job prints the overrides as typed
            _app()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (the run, if any, is marked KILLED)", file=sys.stderr)
        raise SystemExit(130) from None
    except Terminated:
        print(f"{PROG}: terminated (the run, if any, is marked KILLED)", file=sys.stderr)
        raise SystemExit(143) from None
    except Exception as error:
        message = _config_error_message(error)
        if message is None or debug:
            raise
        _fail(message)


def unwritable_message(error: OSError) -> str:
    """``cannot write 'outputs' in /data: Read-only file system; ...`` (Hydra's output folder,
    a SQLite file, ...)."""
    where = f" '{error.filename}'" if error.filename else ""
    return (f"cannot write{where} in {os.getcwd()}: {error.strerror or error}; run from a folder you can write to, "
            "or put Hydra's output folder elsewhere with hydra.run.dir=<folder>")


def _config_error_message(error: BaseException, config_name: str = "config") -> str | None:
    """One line for Hydra/OmegaConf composition errors; None for anything else.

    A key or group option that is a misspelling of a known one gets "did you mean ...?"
    (``config_name``: the root config whose keys count, ``config`` or ``ann_sweep``).
    """
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    import ann
    from sweeps.core.errors import UserError
    from sweeps.config.suggestions import closest, suggest_key

    if isinstance(error, OSError) and error.errno in UNWRITABLE:
        return unwritable_message(error)
    if isinstance(error, (UserError, ann.AnnError)):
        return str(error)
    if isinstance(error, MissingConfigException):
        found = re.search(r"Could not find '([^']+)/([^'/]+)'", str(error))
        if found and error.options:
            group, option = found.groups()
            near = closest(option, error.options)
            options = ", ".join(sorted(error.options))
            if near:
                return f"{group}={option} is not allowed: did you mean `{group}={near}`? (expected one of {options})"
            return f"{group}={option} is not allowed: expected one of {options}"
        return _first_lines(error)
    if isinstance(error, OverrideParseException):
        return f"cannot parse the command line: {_first_lines(error)}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        text = _first_lines(error)
        key = re.search(r"Could not override '([^']+)'", str(error))
        if key and "not in struct" in str(error.__cause__ or error):
            name = key.group(1)
            near = suggest_key(name, config_name)
            if near is not None:
                return f"{name} is not allowed: did you mean `{near}`? (`{PROG} --cfg job` shows every key)"
            group = name.rsplit(".", 1)[0] if "." in name else "the root config"
            return f"{name} is not allowed: expected a key of {group} (see `{PROG} --cfg job`; to add a new key write +{name}=...)"
        cause = error.__cause__
        if cause is not None and str(cause).strip():
            text += ": " + _first_lines(cause)
        return text
    return None


def _first_lines(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


if __name__ == "__main__":
    main()
