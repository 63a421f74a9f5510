"""``python -m sweeps COMMAND [ARG ...]``: the console scripts without them on ``PATH``.

    python -m sweeps train dataset=digits        # ann-train
    python -m sweeps sweep sweep=quick           # ann-sweep
    python -m sweeps sweep-status                # ann-sweep-status
    python -m sweeps replay RUN_ID               # ann-replay

Useful when the package is installed in an environment that is not activated
(``/path/to/venv/bin/python -m sweeps train``); the tests start the programs this way.
"""

from __future__ import annotations

import sys

#: command -> (console script, "module:function"), as in pyproject.toml's [project.scripts].
COMMANDS = {
    "train": ("ann-train", "sweeps.cli.train:main"),
    "sweep": ("ann-sweep", "sweeps.cli.sweep:main"),
    "sweep-status": ("ann-sweep-status", "sweeps.cli.sweep:status_main"),
    "replay": ("ann-replay", "sweeps.cli.replay:main"),
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        given = repr(args[0]) if args else "nothing"
        print(f"python -m sweeps: error: command={given} is not allowed: expected one of "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(2)
    script, target = COMMANDS[args[0]]
    module, function = target.split(":")
    sys.argv = [script, *args[1:]]
    getattr(__import__(module, fromlist=[function]), function)()


if __name__ == "__main__":
    main()
