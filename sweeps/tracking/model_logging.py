"""Log a trained :class:`ann.MLP` as an MLflow 3 logged model of the pyfunc flavour.

The model directory (``models:/<model_id>``, also reachable as ``runs:/<run_id>/<run name>``:
the logged model carries its run's name) holds:

* ``artifacts/network/model.npz`` + ``model.json`` -- the network exactly as
  :meth:`ann.MLP.save` writes it -- and ``features.json`` (feature and class names, and
  for a CSV the :class:`ann.data.TableEncoding` of its raw columns);
* ``artifacts/engine/ann.zip`` -- the pure-NumPy ``ann`` package that wrote it, one file
  (fewer uploads than a code folder); loading needs neither this project nor its configs;
* ``pyfunc_model.py`` -- the model code (MLflow's models-from-code);
* a signature and an input example: named ``float64`` columns for tabular data (up to
  :data:`MAX_NAMED_COLUMNS` features), a ``(-1, n_features)`` tensor for wide inputs such
  as images (a 784-column schema would cost more to write and check than the model
  itself); both accept a DataFrame. A CSV whose columns were encoded (text one-hot, empty
  cells filled) takes its raw columns (MLflow's ``any`` type; the example shows them as the
  file held them), and the model encodes them as the data set was encoded. An ``output``
  parameter chooses ``label`` (default) or ``proba``.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run id (a
``LoggedModel`` is created, its files uploaded, linked to the run as an output, and
marked READY), so it works for child runs of a sweep and never touches MLflow's active
run. :func:`start_logged_model` creates the model in the store (its URI is known from then on),
:func:`write_logged_model` writes its files and :func:`upload_logged_model` uploads them, so a
caller can hand the last two to a background thread (or a helper process).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import mlflow
import pandas as pd

import ann
from ann.data.encoding import TableEncoding

PYFUNC_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"
#: Rows of the training data kept as the model's input example.
N_EXAMPLE_ROWS = 5
#: Inputs with more features get a tensor signature instead of named columns.
MAX_NAMED_COLUMNS = 100
#: Files uploaded at once (a model is about a dozen small files).
UPLOAD_THREADS = 4


@dataclass(frozen=True)
class PreparedModel:
    """A logged model created in the store and written locally, not yet uploaded."""

    model_id: str
    local_path: Path
    artifact_location: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


def pip_requirements() -> list[str]:
    return [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}", f"pandas=={pd.__version__}"]


@contextlib.contextmanager
def _requirements_taken_as_met():
    """Skip MLflow's check of :func:`pip_requirements` against the installed packages while
    a model is saved: they name this process's own versions, so it cannot find a mismatch,
    and its first call in a process scans every installed distribution (1.2-1.7 s, in each
    sweep worker's helper). Only the module attribute MLflow calls is swapped, and back."""
    environment = sys.modules.get("mlflow.utils.environment")
    name = "warn_dependency_requirement_mismatches"
    if environment is None or not hasattr(environment, name):  # another MLflow: leave it be
        yield
        return
    check = getattr(environment, name)
    setattr(environment, name, lambda requirements: None)
    try:
        yield
    finally:
        setattr(environment, name, check)


def zip_engine(path: Path) -> Path:
    """Write the ``ann`` package's Python files to the zip archive ``path``."""
    package = Path(ann.__file__).resolve().parent
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(package.rglob("*.py")):
            archive.write(source, arcname=str(Path("ann") / source.relative_to(package)))
    return path


def signature_and_example(model: ann.MLP, feature_names: Sequence[str], X_example: np.ndarray,
                          encoding: TableEncoding | None = None, class_names: Sequence[str] | None = None):
    """The model signature and input example for these features (their raw columns, with an
    ``encoding`` that is more than the identity)."""
    # lazy: see save_pyfunc_model
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    rows = np.asarray(X_example[:N_EXAMPLE_ROWS], dtype=np.float64)
    params = ParamSchema([ParamSpec("output", "string", "label")])
    if model.task_ == "regression":
        outputs = Schema([TensorSpec(np.dtype(np.float64), (-1,))])
    elif label_names(model, class_names):
        outputs = Schema([ColSpec("string")])
    else:
        outputs = Schema([TensorSpec(np.asarray(model.classes_).dtype, (-1,))])
    if encoding is not None:  # a CSV that was more than read (ann.data.load_csv leaves it None then)
        inputs, example = Schema(raw_columns(encoding)), encoding.inverse_transform(rows)
    elif len(feature_names) <= MAX_NAMED_COLUMNS:
        inputs = Schema(feature_columns(feature_names))
        example = pd.DataFrame(rows, columns=[str(name) for name in feature_names])
    else:
        inputs = Schema([TensorSpec(np.dtype(np.float64), (-1, len(feature_names)))])
        example = rows
    return ModelSignature(inputs=inputs, outputs=outputs, params=params), example


def label_names(model: ann.MLP, class_names: Sequence[str] | None) -> bool:
    """Whether the model predicts its classes' names: when they have names of their own
    (``yes``/``no``, ``malignant``/``benign``), not the codes' spelling (``0``, ``1``)."""
    return (model.task_ != "regression" and bool(class_names)
            and list(class_names) != [str(c) for c in model.classes_])


def feature_columns(feature_names: Sequence[str]) -> list:
    """One ``double`` column per feature."""
    from mlflow.types import ColSpec  # lazy: see save_pyfunc_model

    return [ColSpec("double", str(name)) for name in feature_names]


def raw_columns(encoding: TableEncoding) -> list:
    """One column of MLflow's ``any`` type per raw column of a CSV: the model reads its cells
    as the data set read them (numbers, or text), so a new file whose integer column has an
    empty cell (read as floats), or whose text column holds only digits, is taken as it is;
    a ``long`` or ``string`` column spec would refuse both before the model saw them."""
    from mlflow.types import ColSpec  # lazy: see save_pyfunc_model
    from mlflow.types.schema import AnyType  # lazy: as above

    return [ColSpec(AnyType(), column.name) for column in encoding.columns]


def save_pyfunc_model(
    path: str | Path,
    model: ann.MLP,
    feature_names: Sequence[str],
    class_names: Sequence[str] | None,
    X_example: np.ndarray,
    mlflow_model=None,
    metadata: Mapping[str, str] | None = None,
    encoding: TableEncoding | None = None,
) -> Path:
    """Write the pyfunc model directory to ``path`` (which must not exist yet)."""
    import mlflow.pyfunc  # lazy, as every mlflow.models/pyfunc/store import here: ~1 s of modules only a model writer needs

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="ann-model-") as tmp:
        network = Path(tmp) / "network"
        network.mkdir()
        model.save(network / "model")
        (network / "features.json").write_text(
            json.dumps({"feature_names": [str(n) for n in feature_names],
                        "class_names": list(class_names) if class_names else None,
                        "label_names": label_names(model, class_names),
                        "encoding": encoding.to_dict() if encoding is not None else None}, indent=2) + "\n"
        )
        engine = Path(tmp) / "engine"
        engine.mkdir()
        zip_engine(engine / "ann.zip")
        signature, example = signature_and_example(model, feature_names, X_example, encoding, class_names)
        with _requirements_taken_as_met():
            mlflow.pyfunc.save_model(
                path=str(path),
                python_model=str(PYFUNC_CODE),
                artifacts={"network": str(network), "engine": str(engine / "ann.zip")},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
                mlflow_model=mlflow_model,
                metadata=dict(metadata or {}),
            )
    return path


#: Characters MLflow refuses in a logged model's name.
_NOT_IN_MODEL_NAMES = re.compile(r"""[/:.%"']""")


def logged_model_name(run_name: str | None) -> str:
    """The logged model's name: its run's name (``t007 relu 2x64 lr=1_5e-3 bs=64``), with the
    characters MLflow does not allow in model names (``/ : . % " '``) written as ``_``."""
    name = _NOT_IN_MODEL_NAMES.sub("_", run_name or "").strip()
    return name or "model"


@dataclass(frozen=True)
class LoggedModel:
    """A logged model created (PENDING) in the store; its files are not written yet."""

    model_id: str
    artifact_location: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


def start_logged_model(client, run_id: str, experiment_id: str, *, name: str = "model",
                       params: Mapping[str, str] | None = None) -> LoggedModel:
    """Create the (PENDING) logged model of ``run_id``: one request; its ``models:/`` URI is known from here on."""
    logged = client.create_logged_model(
        experiment_id, name=name, source_run_id=run_id, params=dict(params or {}), model_type="ann.MLP"
    )
    return LoggedModel(logged.model_id, logged.artifact_location, run_id)


def write_logged_model(
    logged: LoggedModel,
    model: ann.MLP,
    directory: str | Path,
    *,
    feature_names: Sequence[str],
    class_names: Sequence[str] | None,
    X_example: np.ndarray,
    encoding: TableEncoding | None = None,
) -> PreparedModel:
    """Write the files of ``logged`` under ``directory``; no request to the store (a helper process may do it)."""
    from mlflow.models import Model  # lazy: see save_pyfunc_model

    mlflow_model = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id,
                         run_id=logged.run_id, model_id=logged.model_id)
    metadata = {"task": model.task_, "n_parameters": str(model.n_parameters_)}
    local = save_pyfunc_model(Path(directory) / "model", model, feature_names, class_names,
                              X_example[:N_EXAMPLE_ROWS], mlflow_model, metadata, encoding)
    return PreparedModel(logged.model_id, local, logged.artifact_location)


def upload_logged_model(client, run_id: str, prepared: PreparedModel, step: int = 0) -> str:
    """Upload the files (a few at once), link the model to the run at ``step``, mark it READY."""
    # lazy: see save_pyfunc_model
    from mlflow.entities import LoggedModelOutput
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        repository = get_artifact_repository(prepared.artifact_location, tracking_uri=client.tracking_uri)
        files = []
        for root, _, names in os.walk(prepared.local_path):
            relative = Path(root).relative_to(prepared.local_path).as_posix()
            for name in names:
                files.append((os.path.join(root, name), None if relative == "." else relative))
        _upload(repository, files)
        client.log_outputs(run_id, [LoggedModelOutput(prepared.model_id, step)])
        client.finalize_logged_model(prepared.model_id, "READY")
    except BaseException:
        finalize_failed(client, prepared.model_id)
        raise
    return prepared.uri


def _upload(repository, files: list[tuple[str, str | None]]) -> None:
    """Upload ``(path, folder)`` files a few at once; one by one while the interpreter exits
    (a background writer drained at exit can no longer start threads)."""
    try:
        pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="ann-model-upload")
        futures = [pool.submit(repository.log_artifact, path, folder) for path, folder in files]
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        for path, folder in files:
            repository.log_artifact(path, folder)
        return
    with pool:
        for future in futures:
            future.result()


def finalize_failed(client, model_id: str) -> None:
    try:
        client.finalize_logged_model(model_id, "FAILED")
    except Exception:  # the store itself may be what failed
        pass
