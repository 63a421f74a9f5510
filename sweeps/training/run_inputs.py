"""A run's training, validation and test data as MLflow dataset inputs (``mlflow.log_input``).

Each split is one :class:`mlflow.entities.DatasetInput`: the data set's name, a digest of
its rows, where it came from and its schema, with the context tag
(``mlflow.data.context``) ``training``, ``validation`` or ``test``. The MLflow UI shows
them in the runs table's **Dataset** column, and runs can be searched by them
(``dataset.name = 'digits' AND dataset.context = 'training'``).

* digest: the first 8 hex digits of SHA-1 over the split's shapes, dtypes and bytes
  (every row, not a sample: two splits with one different value differ), computed once
  per process for the same data set, options, split and file (a sweep's trials share it);
* source: a file or folder (``dataset.path``: a CSV, the MNIST folder) is MLflow's
  ``local`` source, its absolute path as ``uri``; a built-in data set is a ``code``
  source whose tags are the loader's name and options and the split settings;
* schema: MLflow's column spec, one ``double`` column per feature and the target
  (``long`` class codes or ``double``); profile: ``num_rows``, ``num_elements``.

:func:`log_dataset_inputs` is one ``log_inputs`` call; ``train`` runs it on the run's
background logging thread, where hashing the arrays (which releases the GIL) overlaps
training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag
from mlflow.types import ColSpec, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

if TYPE_CHECKING:
    from sweeps.config.run_spec import RunSpec
    from sweeps.training.data import PreparedData

#: The context tag of each split, and the split's attributes on :class:`PreparedData`.
SPLITS = (("training", "train"), ("validation", "val"), ("test", "test"))
DIGEST_LENGTH = 8
#: Digests computed in this process, by data set, options, file state and split.
_DIGESTS: dict[tuple, str] = {}


def digest(X: np.ndarray, y: np.ndarray) -> str:
    """A short digest of every value of ``X`` and ``y`` (with their shapes and dtypes).

    SHA-1 as a checksum, not for security: the fastest of hashlib's on CPUs with SHA
    instructions (about 0.4-1 GB/s here; see tests/benchmarks/bench_run_inputs.py).
    """
    hasher = hashlib.sha1()
    for array in (X, y):
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(memoryview(array).cast("B"))
    return hasher.hexdigest()[:DIGEST_LENGTH]


def source(spec: RunSpec) -> tuple[str, str]:
    """``(source_type, source JSON)``: the file it was read from, or the loader and its options."""
    options = spec.dataset_options
    if options.get("path"):
        return "local", json.dumps({"uri": str(Path(str(options["path"])).expanduser().resolve())})
    tags = {"loader": "ann.data.load_dataset", "dataset": spec.dataset,
            **{f"dataset.{key}": json.dumps(value) for key, value in sorted(options.items())},
            "training.val_size": str(spec.val_size), "training.test_size": str(spec.test_size),
            "training.seed": str(spec.split_seed)}
    return "code", json.dumps({"tags": tags})


def schema(feature_names, task: str, target: str = "target") -> str:
    columns = [ColSpec("double", str(name)) for name in feature_names]
    columns.append(ColSpec("double" if task == "regression" else "long", target))
    return json.dumps({"mlflow_colspec": Schema(columns).to_dict()})


def dataset_inputs(spec: RunSpec, data: PreparedData) -> list[DatasetInput]:
    """One input per split that has rows."""
    source_type, source_json = source(spec)
    target = str(spec.dataset_options.get("target") or "target")
    columns = schema(data.dataset.feature_names, data.task, target)
    path = spec.dataset_options.get("path")
    file = _file_state(Path(str(path)).expanduser()) if path else None
    inputs = []
    for context, split in SPLITS:
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        if X is None or not len(X):
            continue
        key = (source_json, file, split, X.shape)
        if key not in _DIGESTS:
            _DIGESTS[key] = digest(X, y)
        entity = DatasetEntity(
            name=data.dataset.name, digest=_DIGESTS[key], source_type=source_type, source=source_json,
            schema=columns, profile=json.dumps({"num_rows": int(len(X)), "num_elements": int(X.size + y.size)}),
        )
        inputs.append(DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def log_dataset_inputs(client, run_id: str, spec: RunSpec, data: PreparedData) -> None:
    """Log the splits as the run's dataset inputs (one request)."""
    client.log_inputs(run_id, datasets=dataset_inputs(spec, data))


def _file_state(path: Path) -> tuple:
    """What tells a changed file (or folder of files) from the one already hashed."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())
