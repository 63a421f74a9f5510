"""Parsed CSV files kept as NumPy arrays, so that the next load of an unchanged file skips the parse.

Parsing a CSV is the slow part of loading one: 3 s of two cores for 60,000 x 784 numbers,
where reading the same rows back from ``.npy`` files takes a tenth of that. So
:func:`ann.data.load_csv` with a ``cache_dir`` keeps what it parsed there, one entry per CSV
file, and reads that entry back for as long as the file is unchanged:

* an entry is found by the file's absolute path and holds the state it was parsed from
  (size, modification and change times, inode) and the loader's options (target, features,
  task, and how columns are encoded); a different state or option is a miss, and writing
  the new entry removes the file's older one, so a folder holds at most one entry per CSV
  path and options;
* a file modified in the last :data:`SETTLE_SECONDS` is parsed but not kept: a rewrite
  within one tick of the file system's clock would not change its times (git's "racily
  clean" problem);
* an entry is written in a scratch folder and renamed into place, so concurrent loaders
  never read half an entry, and it is readable by its owner only (a CSV may be private);
* an entry's features are mapped into memory copy-on-write rather than read, also by the load
  that has just written it: a fresh copy of them costs as much again in page faults as the
  reading (loading, splitting and standardising that file took 1.8-3.5 s read, 0.3 s mapped,
  on the 2-core development machine), and processes that load the same file share its pages;
  an entry's files are never rewritten in place (a new state is a new folder), so a mapping
  stays valid while the process lives;
* the folder is kept under :data:`MAX_BYTES`: after a write, the entries used least recently
  (a hit marks its entry used) are removed until the rest fit, never the one just written;
* nothing here is needed for correctness: an unwritable folder, a damaged entry or any
  other failure is a miss, and the file is parsed as without a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ann.data.base import Dataset
from ann.data.encoding import TableEncoding

log = logging.getLogger(__name__)

FORMAT = 3
"""Bumped whenever what an entry holds, or how the loader parses, changes."""

MAX_BYTES = 4 << 30
"""The folder's entries are kept under this many bytes (4 GiB: ten files of 60,000 x 784 float64 features)."""

SETTLE_SECONDS = 2.0
"""A file modified more recently than this is not cached (its times may not show a rewrite yet)."""


def _path_key(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]


def _state_key(path: Path, options: dict) -> tuple[str, float]:
    """A digest of the file's state and the loader's options, and the file's modification time."""
    stat = path.stat()
    state = [FORMAT, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev, options]
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16], stat.st_mtime


def read(cache_dir: str | os.PathLike, path: Path, options: dict) -> Dataset | None:
    """The data set parsed from ``path`` with these ``options``, if an entry for its current state exists."""
    try:
        entry = Path(cache_dir) / f"{_path_key(path)}-{_state_key(path, options)[0]}"
        if not entry.is_dir():
            return None
        meta = json.loads((entry / "meta.json").read_text())
        os.utime(entry)  # used now: evicted after the entries used before it
        # Mapped copy-on-write, not read: the rows come from the page cache as they are used
        # (shared by every process that loads the file), and the array stays writable.
        X = np.asarray(np.load(entry / "X.npy", mmap_mode="c"))
        y = np.load(entry / "y.npy")
        encoding = TableEncoding.from_dict(meta["encoding"]) if meta["encoding"] else None
        return Dataset(path.stem, X, y, meta["task"], meta["feature_names"], class_names=meta["class_names"],
                       encoding=encoding)
    except Exception as error:  # a damaged or foreign entry is a miss, never a failed load
        log.debug("parsed-CSV cache entry for %s not used: %s", path, error)
        return None


def write(cache_dir: str | os.PathLike, path: Path, options: dict, dataset: Dataset) -> bool:
    """Keep ``dataset`` as the entry of ``path`` with these ``options``; True when the entry exists now."""
    try:
        state, modified = _state_key(path, options)
        if time.time() - modified < SETTLE_SECONDS:
            return False
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        source = _path_key(path)
        entry = folder / f"{source}-{state}"
        if entry.is_dir():
            return True
        scratch = Path(tempfile.mkdtemp(prefix=f".{source}-", dir=folder))  # mode 0700
        try:
            _save(scratch, dataset)
            os.rename(scratch, entry)  # atomic; fails if another loader renamed its entry first
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
            return entry.is_dir()
        for older in folder.glob(f"{source}-*"):
            if older != entry:
                shutil.rmtree(older, ignore_errors=True)
        _evict(folder, keep=entry)
        return True
    except Exception as error:  # an unwritable folder only costs the next load a parse
        log.debug("parsed CSV %s not cached in %s: %s", path, cache_dir, error)
        return False


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used entries (not ``keep``) until the folder's fit in :data:`MAX_BYTES`."""
    entries = []
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):  # a dot-folder is an entry being written
            entries.append((entry.stat().st_mtime, sum(f.stat().st_size for f in entry.iterdir()), entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):  # least recently used first
        if total <= MAX_BYTES:
            break
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= size


def _save(folder: Path, dataset: Dataset) -> None:
    """The entry's files; the features row-major, copied a block of rows at a time (from
    pandas' column-major block, without a second copy of them all in memory)."""
    X = dataset.X
    rows = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    step = max(1, (1 << 24) // max(1, X.shape[1] * X.itemsize))  # 16 MB of rows
    for start in range(0, len(X), step):
        rows[start:start + step] = X[start:start + step]
    rows.flush()
    del rows
    np.save(folder / "y.npy", dataset.y)
    meta = {"task": dataset.task, "feature_names": dataset.feature_names, "class_names": dataset.class_names,
            "encoding": dataset.encoding.to_dict() if dataset.encoding else None}
    (folder / "meta.json").write_text(json.dumps(meta))
