"""The database driver behind a SQLAlchemy URL, and what to do when it is not installed.

SQLAlchemy imports the driver a URL names (``postgresql+psycopg2://``; plain
``postgresql://`` means psycopg 3 to SQLAlchemy 2.1) only when it connects, and a
missing one surfaces as a ``ModuleNotFoundError`` deep in the chain of causes: this
module turns it into one line that names the driver and how to install it, instead of a
connection failure.
"""

from __future__ import annotations

import importlib.util

#: The extra that installs the PostgreSQL driver (psycopg2-binary; pyproject.toml).
POSTGRES_EXTRA = 'pip install "ann-sweeps[postgres]"'


def missing_driver(error: BaseException, url: str) -> str | None:
    """What to say when ``error`` (connecting to ``url``) is a driver that is not installed."""
    missing = _missing_module(error)
    if missing is None:
        return None
    scheme = url.partition("://")[0]
    if scheme.split("+")[0] != "postgresql":
        return f"the database driver {missing} ({scheme}://) is not installed: pip install {missing}"
    if missing != "psycopg2" and importlib.util.find_spec("psycopg2") is not None:
        return (f"the database driver {missing} ({scheme}://) is not installed; psycopg2 is: "
                f"write postgresql+psycopg2:// instead of {scheme}://")
    if missing == "psycopg2":
        return f"the database driver psycopg2 ({scheme}://) is not installed: {POSTGRES_EXTRA} installs it"
    return (f"the database driver {missing} ({scheme}://) is not installed: {POSTGRES_EXTRA} installs psycopg2, "
            f"then write postgresql+psycopg2:// instead of {scheme}://")


def _missing_module(error: BaseException | None) -> str | None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError):
            return (error.name or str(error)).split(".")[0]
        error = error.__cause__ or error.__context__
    return None

