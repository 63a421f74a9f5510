"""How the tests start the package's programs: through the interpreter that runs the tests.

:func:`run_in_read_only_folder` starts one in a working directory it cannot write to.

``/path/to/venv/bin/python -m pytest`` with the venv not activated has no console scripts
on ``PATH``; :func:`program` uses the script installed beside ``sys.executable`` (the
real console script, as a user runs it) and else ``sys.executable -m sweeps COMMAND``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: console script -> the ``python -m sweeps`` command that runs the same function.
COMMANDS = {"ann-train": "train", "ann-sweep": "sweep", "ann-sweep-status": "sweep-status", "ann-replay": "replay"}


def program(name: str) -> list[str]:
    """The argv prefix that runs console script ``name`` (``ann-train``, ``ann-sweep``, ...)."""
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "sweeps", COMMANDS[name]]


def run_in_read_only_folder(folder, argv):
    """Run ``argv`` with ``folder`` as its working directory, mounted read-only (a private
    mount namespace: a real ``Read-only file system`` error, whatever the user's rights)."""
    folder.mkdir()
    mount = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && cd "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*mount, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only folder here: {probe.stderr.strip()}")
    return subprocess.run([*mount, *argv], capture_output=True, text=True, timeout=300)
