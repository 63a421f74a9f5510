"""A new MLflow SQLite store starts as a copy of an empty, migrated one.

MLflow creates a new SQLite tracking database by running every Alembic migration since its
first schema: about 1.4 s of CPU on the 2-core development machine, in every new folder a
run or a sweep starts in, before its first epoch. For one MLflow version the result is the
same file every time but for one row: the ``Default`` experiment (id 0), whose artifact
location MLflow derives from where the store is opened. So :func:`seed` keeps one migrated
store without any experiment in the user's cache folder
(``$XDG_CACHE_HOME/ann-sweep``, else ``~/.cache/ann-sweep``), named by the MLflow version and
its migrations, and a new store is a copy of it; MLflow adds its ``Default`` experiment as it
opens the copy, as it does for a store it migrated itself. The first new store a machine
makes with an MLflow version builds that template (the migrations' usual cost, once).

Nothing here is needed for correctness: when the cache folder cannot be written or holds
something else, MLflow creates the store itself, as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
from pathlib import Path

import mlflow
import sqlalchemy
from mlflow.exceptions import MlflowException

from sweeps.core.storage import sqlite_path

log = logging.getLogger(__name__)

_MIGRATIONS = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"


def cache_folder() -> Path:
    """Where the template lives: ``$XDG_CACHE_HOME/ann-sweep``, else ``~/.cache/ann-sweep``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ann-sweep"


def template_path() -> Path:
    """The template's file, named by the MLflow version and a digest of its migrations' names."""
    names = sorted(p.name for p in _MIGRATIONS.glob("*.py")) if _MIGRATIONS.is_dir() else []
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    return cache_folder() / f"mlflow-{mlflow.__version__}-{digest}.db"


def seed(uri: str) -> bool:
    """Create the SQLite store of ``uri`` as a copy of the template, if the file does not exist yet.

    Returns True when this call created the file; False when it exists already, ``uri`` is not a
    SQLite file, or the template could not be made or copied (MLflow then creates the store).
    Safe when several processes seed the same store at once: one copy wins, whole.
    """
    path = sqlite_path(uri) if uri.startswith("sqlite:") else None
    if path is None or path.exists():
        return False
    try:
        template = _template()
        return _copy_new(template, path)
    except (OSError, sqlite3.Error, sqlalchemy.exc.SQLAlchemyError, MlflowException) as error:
        log.debug("MLflow creates the store %s itself: %s", path, error)
        return False


def _template() -> Path:
    """The template, built first if this MLflow version has none yet."""
    target = template_path()
    if target.exists() and _is_template(target):
        return target
    # Lazy: MLflow's SQL store (SQLAlchemy's models, 0.3-0.5 s to import) only when a template is
    # built, not in every process that imports the tracking client, for a server too.
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch_name(target)
    try:
        SqlAlchemyStore(f"sqlite:///{scratch}", str(target.parent / "unused-artifacts"))._dispose_engine()
        with sqlite3.connect(scratch) as connection:
            connection.execute("DELETE FROM experiments")
        connection.close()
        os.replace(scratch, target)  # whole or not at all, whoever builds it last
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


def _is_template(path: Path) -> bool:
    """A migrated MLflow store without experiments (not a file that took the template's name)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            experiments = connection.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
        connection.close()
    except sqlite3.Error:
        return False
    return revision is not None and experiments == 0


def _copy_new(template: Path, path: Path) -> bool:
    """Copy ``template`` to ``path`` unless ``path`` appears meanwhile: the copy is made beside it
    (with the permissions the user's umask gives a new file, as MLflow's own) and linked into
    place, so that nobody opens a half-copied file."""
    scratch = _scratch_name(path)
    try:
        with open(template, "rb") as source, open(scratch, "xb") as copy:
            shutil.copyfileobj(source, copy)
        os.link(scratch, path)
        return True
    except FileExistsError:
        return False
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


def _scratch_name(path: Path) -> str:
    """A hidden file name beside ``path`` that no other process picks."""
    return str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
