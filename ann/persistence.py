"""Save and load a trained :class:`ann.MLP` as ``<name>.npz`` (arrays) + ``<name>.json``.

The ``.npz`` holds only numeric arrays -- ``W0, b0, W1, b1, ...`` and the preprocessing
statistics ``x_mean, x_scale`` (and ``y_mean, y_scale`` for a standardised regression) --
and is read with ``allow_pickle=False``, so loading a file never runs code. The ``.json``
holds the constructor arguments, the task, the layer sizes and the class labels. A file
with object arrays, missing arrays or shapes that disagree with the architecture is
refused with :class:`~ann.exceptions.ModelFileError`, and so is a NaN or an infinity in any
array, except the ``+inf`` scale of a column constant in the training data (see
:class:`~ann.preprocessing.Standardizer`).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ann.preprocessing import Standardizer
from ann.exceptions import AnnError, ModelFileError

FORMAT = "ann-mlp"
VERSION = 1


def _paths(path) -> tuple[Path, Path]:
    path = Path(os.fspath(path))
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    return stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")


def save_model(model, path) -> tuple[str, str]:
    """Write a fitted :class:`ann.MLP` as ``<path>.npz`` + ``<path>.json``; returns both paths."""
    net = model._network()
    npz_path, json_path = _paths(path)
    arrays = {}
    for index, (W, b) in enumerate(zip(net.W, net.b)):
        arrays[f"W{index}"], arrays[f"b{index}"] = W, b
    for prefix, scaler in (("x", model.x_scaler_), ("y", model.y_scaler_)):
        if scaler is not None:
            arrays[f"{prefix}_mean"], arrays[f"{prefix}_scale"] = scaler.mean, scaler.scale
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "params": model.get_params(),
        "task": model.task_,
        "loss": model.loss_,
        "output_activation": model.output_activation_,
        "layer_sizes": net.sizes,
        "classes": None if model.classes_ is None else model.classes_.tolist(),
        "target_1d": bool(getattr(model, "_y_was_1d", True)),
    }
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz_path, **arrays)
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return str(npz_path), str(json_path)


def load_model(path, model_class):
    """The model written by :func:`save_model` at ``path``, as an instance of ``model_class``.

    ``model_class`` is :class:`ann.MLP` (passed in by ``MLP.load``, so this module does
    not import the estimator that imports it).
    """
    npz_path, json_path = _paths(path)
    for required in (npz_path, json_path):
        if not required.is_file():
            raise ModelFileError(f"model file {required} does not exist")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{json_path} is not valid JSON: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{json_path} is not an {FORMAT} model description")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{json_path} has format version {meta.get('version')!r}; expected {VERSION}")
    arrays = _read_arrays(npz_path)

    try:
        model = model_class(**meta["params"])
    except (AnnError, TypeError, KeyError) as error:
        raise ModelFileError(f"{json_path} holds invalid parameters: {error}") from None
    sizes = [int(s) for s in meta["layer_sizes"]]
    model.task_, model.loss_ = meta["task"], meta["loss"]
    model.output_activation_ = meta["output_activation"]
    model.classes_ = None if meta["classes"] is None else np.asarray(meta["classes"])
    model._y_was_1d = meta.get("target_1d", True)
    model.n_features_in_ = sizes[0]
    model._build(sizes[-1])
    net = model.network_
    if net.sizes != sizes:
        raise ModelFileError(f"{json_path}: layer sizes {sizes} disagree with the parameters")

    def take(name: str, shape: tuple) -> np.ndarray:
        if name not in arrays:
            raise ModelFileError(f"{npz_path} lacks the array {name!r}")
        array = arrays[name]
        if array.shape != shape:
            raise ModelFileError(
                f"{npz_path}: array {name!r} has shape {array.shape}, the architecture needs {shape}"
            )
        return array

    for index, (W, b) in enumerate(zip(net.W, net.b)):
        W[...] = take(f"W{index}", W.shape)
        b[...] = take(f"b{index}", b.shape)
    model.x_scaler_ = model.y_scaler_ = None
    if model.standardize:
        model.x_scaler_ = Standardizer(
            take("x_mean", (sizes[0],)).astype(np.float64), take("x_scale", (sizes[0],)).astype(np.float64)
        )
        if model.task_ == "regression":
            model.y_scaler_ = Standardizer(
                take("y_mean", (sizes[-1],)).astype(np.float64),
                take("y_scale", (sizes[-1],)).astype(np.float64),
            )
    return model


def _read_arrays(npz_path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(npz_path):
        raise ModelFileError(f"{npz_path} is not a valid .npz file (not a zip archive)")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ModelFileError(
                f"{npz_path} holds object arrays; only numeric arrays are loaded (allow_pickle=False)"
            ) from None
        raise ModelFileError(f"{npz_path} is not a valid .npz file: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ModelFileError(f"{npz_path} is not a valid .npz file: {error}") from None
    for name, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise ModelFileError(f"{npz_path}: array {name!r} has dtype {array.dtype}; numbers only")
        allowed = np.isfinite(array)
        if name.endswith("_scale"):  # +inf: a column constant in the training data (ann.preprocessing)
            allowed |= np.isposinf(array)
        if not np.all(allowed):
            raise ModelFileError(f"{npz_path}: array {name!r} holds NaN or infinite values")
    return arrays
