"""ann.data.parsed_cache through ann.data.load_csv: a parsed CSV is read back while its file is unchanged."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from ann.data import load_csv, split_dataset
from ann.data import parsed_cache
from ann.data.parsed_cache import SETTLE_SECONDS
from ann.exceptions import InvalidParameterError
from sweeps.config.compose import compose
from sweeps.config.run_spec import build_run_spec


def _settled_csv(path: Path, rows: list[str]) -> Path:
    """A CSV file whose modification time lies well before the settling period."""
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    past = time.time() - 10 * SETTLE_SECONDS
    os.utime(path, (past, past))
    return path


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith(".")) if cache.exists() else []


def _options() -> dict:
    """The options ``load_csv(path, "label")`` keeps an entry under."""
    return {"target": "label", "features": None, "task": "auto", "missing": "impute", "categorical": "onehot",
            "max_categories": 32}


@pytest.fixture
def csv_file(tmp_path):
    return _settled_csv(tmp_path / "data.csv", ["1.5,2,x", "3,4.25,y", "5,6,x", "7,8,y"])


def test_a_second_load_reads_the_entry_not_the_file(tmp_path, csv_file):
    cache = tmp_path / "cache"
    first = load_csv(csv_file, "label")
    load_csv(csv_file, "label", cache_dir=cache)
    [entry] = _entries(cache)
    (entry / "X.npy").unlink()  # a new file: a mapped array of the old one stays as it was
    np.save(entry / "X.npy", first.X + 100)  # only a load that reads the entry sees this
    second = load_csv(csv_file, "label", cache_dir=cache)
    np.testing.assert_array_equal(second.X, first.X + 100)
    np.testing.assert_array_equal(second.y, first.y)
    assert (second.name, second.task, second.feature_names, second.class_names) == ("data", "binary", ["a", "b"], ["x", "y"])


def test_a_cached_load_equals_a_parse(tmp_path, csv_file):
    for options in ({}, {"features": ["b"]}, {"task": "multiclass"}):
        parsed = load_csv(csv_file, "label", **options)
        load_csv(csv_file, "label", cache_dir=tmp_path / "cache", **options)
        cached = load_csv(csv_file, "label", cache_dir=tmp_path / "cache", **options)
        np.testing.assert_array_equal(cached.X, parsed.X)
        np.testing.assert_array_equal(cached.y, parsed.y)
        assert cached.y.dtype == parsed.y.dtype and cached.X.dtype == parsed.X.dtype
        assert (cached.task, cached.feature_names, cached.class_names) == (parsed.task, parsed.feature_names, parsed.class_names)
    assert len(_entries(tmp_path / "cache")) == 1  # one entry per path: the last options used


def test_a_changed_file_is_parsed_again_and_replaces_its_entry(tmp_path, csv_file):
    cache = tmp_path / "cache"
    load_csv(csv_file, "label", cache_dir=cache)
    [old] = _entries(cache)
    _settled_csv(csv_file, ["9.5,2,x", "3,4.25,y", "5,6,x", "7,8,y"])  # same size, new content
    reloaded = load_csv(csv_file, "label", cache_dir=cache)
    assert reloaded.X[0, 0] == 9.5
    [new] = _entries(cache)
    assert new != old


def test_the_folder_keeps_under_its_byte_limit_by_evicting_the_least_recently_used(tmp_path, monkeypatch):
    assert parsed_cache.MAX_BYTES == 4 * 2**30  # the 4 GiB docs/how-to/own-csv.md states
    cache = tmp_path / "cache"
    files = [_settled_csv(tmp_path / f"d{i}.csv", [f"{i}.5,2,x", "3,4,y"]) for i in range(3)]
    load_csv(files[0], "label", cache_dir=cache)
    size = sum(f.stat().st_size for f in _entries(cache)[0].iterdir())
    monkeypatch.setattr(parsed_cache, "MAX_BYTES", 2 * size + size // 2)  # room for two entries
    [first] = _entries(cache)
    load_csv(files[1], "label", cache_dir=cache)
    [second] = set(_entries(cache)) - {first}
    os.utime(first, (time.time() - 120, time.time() - 120))  # d0's entry used before d1's
    os.utime(second, (time.time() - 60, time.time() - 60))
    load_csv(files[0], "label", cache_dir=cache)  # a hit: d0's entry is now the most recently used
    load_csv(files[2], "label", cache_dir=cache)  # a write over the limit evicts d1's
    assert len(_entries(cache)) == 2
    assert parsed_cache.read(cache, files[1], _options()) is None
    assert parsed_cache.read(cache, files[0], _options()) is not None
    assert parsed_cache.read(cache, files[2], _options()) is not None
    monkeypatch.setattr(parsed_cache, "MAX_BYTES", 1)  # smaller than any entry: the new one stays alone
    load_csv(files[1], "label", cache_dir=cache)
    assert len(_entries(cache)) == 1 and parsed_cache.read(cache, files[1], _options()) is not None


def test_a_file_modified_just_now_is_not_kept(tmp_path):
    path = tmp_path / "fresh.csv"
    path.write_text("a,label\n1,0\n2,1\n")
    dataset = load_csv(path, "label", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(dataset.X, [[1.0], [2.0]])
    assert _entries(tmp_path / "cache") == []


def test_a_damaged_entry_is_a_miss(tmp_path, csv_file):
    cache = tmp_path / "cache"
    load_csv(csv_file, "label", cache_dir=cache)
    parsed = load_csv(csv_file, "label")
    [entry] = _entries(cache)
    (entry / "X.npy").unlink()
    (entry / "X.npy").write_bytes(b"not an array")
    np.testing.assert_array_equal(load_csv(csv_file, "label", cache_dir=cache).X, parsed.X)


def test_an_unusable_cache_folder_only_costs_a_parse(tmp_path, csv_file):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    dataset = load_csv(csv_file, "label", cache_dir=blocked / "cache")
    assert dataset.X.shape == (4, 2)


def test_an_entry_is_readable_by_its_owner_only(tmp_path, csv_file):
    load_csv(csv_file, "label", cache_dir=tmp_path / "cache")
    [entry] = _entries(tmp_path / "cache")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o700


def test_loaded_rows_are_row_major_so_a_split_gathers_rows_fast(csv_file):
    dataset = load_csv(csv_file, "label")
    assert dataset.X.flags["C_CONTIGUOUS"]
    assert split_dataset(dataset, 0.25, 0.25).X_train.flags["C_CONTIGUOUS"]


def test_a_bad_cache_dir_is_an_invalid_parameter(csv_file):
    with pytest.raises(InvalidParameterError, match="cache_dir"):
        load_csv(csv_file, "label", cache_dir=3)


def test_the_csv_config_caches_in_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = build_run_spec(compose(["dataset=csv", "dataset.path=data.csv", "dataset.target=y"]))
    assert spec.dataset_options["cache_dir"] == f"{tmp_path}/ann-sweep/datasets"
    spec = build_run_spec(compose(["dataset=csv", "dataset.path=data.csv", "dataset.target=y", "dataset.cache_dir=null"]))
    assert spec.dataset_options["cache_dir"] is None


def test_a_cached_load_can_be_written_to_without_changing_the_entry(tmp_path, csv_file):
    cache = tmp_path / "cache"
    parsed = load_csv(csv_file, "label")
    for _ in range(2):  # the load that writes the entry, then one that reads it
        cached = load_csv(csv_file, "label", cache_dir=cache)
        cached.X /= 2  # copy-on-write: the caller's array only
        np.testing.assert_array_equal(load_csv(csv_file, "label", cache_dir=cache).X, parsed.X)
