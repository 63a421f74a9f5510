"""What the command lines share: one line and an exit status for a mistake, and nothing
half-written (Hydra's output folder of a job that never ran is removed).

* :func:`fail`: ``<prog>: error: <one line>`` on stderr (passwords hidden), then the exit status;
* :func:`config_error_message`: Hydra's and OmegaConf's composition errors in one line, with
  "did you mean ...?" for a misspelt key or option;
* :func:`remove_job_output_dir`: the output folder of a job that stopped before it ran.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

import ann
from sweeps.config.compose import TRAIN_CONFIG
from sweeps.config.suggestions import closest, suggest_key
from sweeps.core.errors import UserError, first_line
from sweeps.core.redaction import redact

#: Exit status of a mistake in the command line or the config.
EXIT_USAGE = 2
#: A folder the program cannot write to (a read-only, full or foreign one): the user's situation, not a bug.
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def fail(prog: str, message: str, status: int = EXIT_USAGE) -> None:
    """Print ``<prog>: error: <message>`` (one line, passwords hidden) and exit with ``status``."""
    print(redact(f"{prog}: error: {' '.join(str(message).split())}"), file=sys.stderr)
    raise SystemExit(status)


def exit_stopped(prog: str, error: BaseException, what: str = "the run") -> None:
    """After Ctrl-C (exit 130) or SIGTERM (143): one line saying ``what`` is marked KILLED."""
    terminated = not isinstance(error, KeyboardInterrupt)
    print(f"{prog}: {'terminated' if terminated else 'interrupted'} ({what}, if any, is marked KILLED)", file=sys.stderr)
    raise SystemExit(143 if terminated else 130) from None


def remove_job_output_dir() -> None:
    """Remove the output folder Hydra made for a job that never ran (nothing half-written).

    Only a folder that holds nothing but Hydra's own ``.hydra/`` and the job's log is removed.
    """
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


def unwritable_message(error: OSError) -> str:
    """``cannot write 'outputs' in /data: Read-only file system; ...`` (Hydra's output folder,
    a SQLite file, ...)."""
    where = f" '{error.filename}'" if error.filename else ""
    return (f"cannot write{where} in {os.getcwd()}: {error.strerror or error}; run from a folder you can write to, "
            "or put Hydra's output folder elsewhere with hydra.run.dir=<folder>")


def config_error_message(error: BaseException, prog: str, config_name: str = TRAIN_CONFIG) -> str | None:
    """One line for Hydra/OmegaConf composition errors; None for anything else.

    A key or group option that is a misspelling of a known one gets "did you mean ...?"
    (``config_name``: the root config whose keys count; ``prog``: the command named in the hint).
    """
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
        return first_line(error)
    if isinstance(error, OverrideParseException):
        return f"cannot parse the command line: {first_line(error)}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        text = first_line(error)
        key = re.search(r"Could not override '([^']+)'", str(error))
        if key and "not in struct" in str(error.__cause__ or error):
            name = key.group(1)
            near = suggest_key(name, config_name)
            if near is not None:
                return f"{name} is not allowed: did you mean `{near}`? (`{prog} --cfg job` shows every key)"
            group = name.rsplit(".", 1)[0] if "." in name else "the root config"
            return f"{name} is not allowed: expected a key of {group} (see `{prog} --cfg job`; to add a new key write +{name}=...)"
        cause = error.__cause__
        if cause is not None and str(cause).strip():
            text += ": " + first_line(cause)
        return text
    return None
