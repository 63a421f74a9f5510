"""Where a store lives: the kind of a storage URL, its driver, its file, a connection's name.

Optuna storages and MLflow stores are named by URLs (``sqlite:///optuna.db``,
``postgresql://host/db``) or, for an Optuna journal, by a file path: :func:`storage_kind`
tells them apart, :func:`with_driver` picks the installed PostgreSQL driver, :func:`sqlite_path`
and :func:`absolute_path` find the file on disk.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path


def storage_kind(url: str) -> str:
    """``"journal"`` for a file path, else the URL's scheme (``sqlite``, ``postgresql``, ...)."""
    if "://" not in url:
        return "journal"
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def absolute_path(value: str | os.PathLike) -> str:
    """``value`` with ``~`` expanded, relative to the directory ``ann-train`` was started in."""
    path = Path(os.path.expanduser(str(value)))
    if path.is_absolute():
        return str(path)
    try:
        from hydra.utils import get_original_cwd  # lazy: the bottom layer loads Hydra only inside a job

        base = Path(get_original_cwd())
    except (ImportError, ValueError):
        base = Path.cwd()
    return str(base / path)


def with_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed (SQLAlchemy 2.1 defaults to psycopg 3)."""
    if not url.startswith("postgresql://"):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def application_name(role: str = "storage") -> str:
    """The ``application_name`` of this process's PostgreSQL connections: ``ann-sweep <role> <host> <pid>``."""
    return f"ann-sweep {role} {socket.gethostname()[:32]} {os.getpid()}"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI (None: in memory)."""
    rest = uri.split(":", 1)[1]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)
