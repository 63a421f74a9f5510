"""Run tags that let a user reproduce a run: seed, versions, git commit, command."""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from sweeps.core import vocabulary as V
from sweeps.core.redaction import redact

#: Distributions whose versions are recorded as ``versions.<name>`` tags.
PACKAGES = ("numpy", "pandas", "scikit-learn", "mlflow", "hydra-core", "omegaconf", "optuna", "matplotlib")


@lru_cache(maxsize=None)
def _versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: a sweep's every trial records the same versions."""
    versions = {"python": platform.python_version()}
    for name in ("ann-sweeps", *PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def package_versions() -> dict[str, str]:
    """``python`` and the versions of this project and :data:`PACKAGES` that are installed."""
    return dict(_versions())


@lru_cache(maxsize=None)
def git_state(path: str | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``path`` (this package by default).

    ``(None, None)`` when the code does not run from a checkout or git is missing. Only
    read-only git commands are used, with ``GIT_OPTIONAL_LOCKS=0`` so that asking never
    writes to the repository's index.
    """
    where = Path(path) if path else Path(__file__).resolve().parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, env=env
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip(), dirty


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (program name shortened to its basename), credentials redacted."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = os.path.basename(argv[0]) or argv[0]
    return redact(shlex.join(argv))


def reproducibility_tags(seed: int | None) -> dict[str, str]:
    """Tags: ``seed``, ``versions.<package>``, ``git.commit``/``git.dirty``, ``command``,
    and MLflow's own ``mlflow.source.*`` so the UI shows where the run came from."""
    tags = {"seed": str(seed), "command": command_line()}
    tags.update({f"versions.{name}": version for name, version in package_versions().items()})
    commit, dirty = git_state()
    if commit:
        tags[V.TAG_GIT_COMMIT] = commit
        tags[V.TAG_GIT_DIRTY] = "true" if dirty else "false"
        tags[V.TAG_SOURCE_COMMIT] = commit
    tags[V.TAG_SOURCE_NAME] = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    tags[V.TAG_SOURCE_TYPE] = "LOCAL"
    try:
        tags[V.TAG_USER] = getpass.getuser()
    except Exception:  # no user name in this environment
        pass
    return tags
