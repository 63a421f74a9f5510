"""How the tests start the package's programs: through the interpreter that runs the tests.

``/path/to/venv/bin/python -m pytest`` with the venv not activated has no console scripts
on ``PATH``; :func:`program` uses the script installed beside ``sys.executable`` (the
real console script, as a user runs it) and else ``sys.executable -m sweeps COMMAND``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: console script -> the ``python -m sweeps`` command that runs the same function.
COMMANDS = {"ann-train": "train", "ann-sweep": "sweep", "ann-sweep-status": "sweep-status", "ann-replay": "replay"}


def program(name: str) -> list[str]:
    """The argv prefix that runs console script ``name`` (``ann-train``, ``ann-sweep``, ...)."""
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "sweeps", COMMANDS[name]]
