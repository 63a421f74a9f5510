"""A new MLflow SQLite store is a copy of a migrated empty one (sweeps.tracking.store_template).

Real MLflow stores in temporary folders; the template's cache folder is a temporary one too.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeps.tracking import client as tracking
from sweeps.tracking import session
from sweeps.tracking import store_template


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


def _tables(path) -> dict[str, list]:
    """Each table's and index's columns (not the SQL text: MLflow writes the values of a CHECK
    constraint in the order of a Python set, which differs from one process to the next)."""
    with sqlite3.connect(path) as connection:
        names = connection.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
        shapes = {name: connection.execute(f'PRAGMA {"table" if kind == "table" else "index"}_info("{name}")').fetchall()
                  for kind, name in names}
    connection.close()
    return shapes


def _revision(path) -> str:
    with sqlite3.connect(path) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return revision


def test_a_new_store_is_the_template_with_a_default_experiment_of_its_own(tmp_path, cache, monkeypatch):
    mlflow_made = tmp_path / "mlflow-made.db"
    MlflowClient(tracking_uri=f"sqlite:///{mlflow_made}").search_experiments()
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        uri = f"sqlite:///{folder / 'mlflow.db'}"

        assert store_template.seed(uri) is True
        assert store_template.template_path().parent == cache / "ann-sweep"
        assert _tables(folder / "mlflow.db") == _tables(mlflow_made)
        assert _revision(folder / "mlflow.db") == _revision(mlflow_made)
        default = MlflowClient(tracking_uri=uri).get_experiment("0")
        assert default.name == "Default"
        assert default.artifact_location == str(folder / "mlruns" / "0")
        if name == "a":
            built = store_template.template_path().stat().st_mtime_ns
    assert store_template.template_path().stat().st_mtime_ns == built  # built once, then reused


def test_opening_a_new_store_seeds_it_and_the_probe_writes_nothing(tmp_path, cache):
    path = tmp_path / "mlflow.db"
    tracking.probe(f"sqlite:///{path}")
    assert not path.exists()  # bad input found after the probe leaves nothing behind
    client = session._client(f"sqlite:///{path}")
    assert path.exists() and store_template.template_path().exists()
    assert client.get_experiment("0").artifact_location == str(Path.cwd() / "mlruns" / "0")
    client.create_experiment("kept")
    before = path.read_bytes()
    assert store_template.seed(f"sqlite:///{path}") is False
    session._client(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert [e.name for e in client.search_experiments()] == ["kept", "Default"]


def test_without_a_usable_cache_mlflow_creates_the_store_itself(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert store_template.seed(uri) is False
    assert not (tmp_path / "mlflow.db").exists()
    assert session._client(uri).get_experiment("0").name == "Default"  # opened: MLflow migrated it


def test_a_file_that_took_the_templates_name_is_rebuilt(tmp_path, cache):
    template = store_template.template_path()
    template.parent.mkdir(parents=True)
    template.write_text("not a database")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert store_template.seed(uri) is True
    assert MlflowClient(tracking_uri=uri).get_experiment("0").name == "Default"


def test_stores_seeded_at_once_get_one_whole_copy(tmp_path, cache):
    store_template.seed(f"sqlite:///{tmp_path / 'warm.db'}")  # the template exists: the race is the copy
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    results, start = [], threading.Barrier(4)

    def seed():
        start.wait()
        results.append(store_template.seed(uri))

    threads = [threading.Thread(target=seed) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "shared.db", "warm.db"]  # no scratch file left
    assert MlflowClient(tracking_uri=uri).get_experiment("0").name == "Default"
