"""Save/load as .npz + JSON, read with allow_pickle=False; malformed files are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ann
from ann.data import load_dataset


def fitted(task: str, **kwargs) -> tuple[ann.MLP, np.ndarray, np.ndarray]:
    data = {
        "binary": load_dataset("moons", n_samples=80, seed=0),
        "multiclass": load_dataset("spiral", n_samples=90, seed=0),
        "regression": load_dataset("regression", n_samples=80, n_features=2, seed=0),
    }[task]
    model = ann.MLP(hidden_layers=[8, 4], epochs=3, **kwargs)
    model.fit(data.X, data.y)
    return model, data.X, data.y


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_round_trip_gives_identical_predictions(tmp_path, task):
    model, X, y = fitted(task)
    npz, meta = model.save(tmp_path / "model")
    assert npz.endswith("model.npz") and meta.endswith("model.json")
    loaded = ann.MLP.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for a, b in zip(loaded.parameters(), model.parameters()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert loaded.get_params() == model.get_params()
    assert loaded.evaluate(X, y) == model.evaluate(X, y)


def test_string_labels_and_float64_survive(tmp_path):
    data = load_dataset("spiral", n_samples=60, seed=0)
    labels = np.array(["a", "b", "c"])[data.y]
    model = ann.MLP(hidden_layers=[4], epochs=2, dtype="float64", standardize=False)
    model.fit(data.X, labels)
    model.save(tmp_path / "m")
    loaded = ann.MLP.load(tmp_path / "m")
    assert list(loaded.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.predict_proba(data.X), model.predict_proba(data.X))


def test_a_column_constant_in_training_survives_and_other_non_finite_values_are_refused(tmp_path):
    """The infinite scale of a column constant in training (it reaches the network as 0) is
    saved and loaded; NaN in a scale, or an infinity in a weight, is refused."""
    data = load_dataset("moons", n_samples=80, seed=0)
    X = np.column_stack([data.X, np.zeros(len(data.X))])  # like a category the training rows never had
    model = ann.MLP(hidden_layers=[4], epochs=2)
    model.fit(X, data.y)
    assert np.isposinf(model.x_scaler_.scale[2])
    model.save(tmp_path / "m")
    loaded = ann.MLP.load(tmp_path / "m")
    unseen = np.column_stack([data.X, np.ones(len(data.X))])
    np.testing.assert_array_equal(loaded.predict_proba(unseen), model.predict_proba(X))
    for name, value in (("x_scale", np.nan), ("x_scale", -np.inf), ("W0", np.inf)):
        arrays = dict(np.load(tmp_path / "m.npz"))
        arrays[name] = np.where(np.arange(arrays[name].size).reshape(arrays[name].shape) == 0, value, arrays[name])
        np.savez(tmp_path / "bad.npz", **arrays)
        (tmp_path / "bad.json").write_text((tmp_path / "m.json").read_text())
        with pytest.raises(ann.ModelFileError, match=f"array '{name}' holds NaN or infinite values"):
            ann.MLP.load(tmp_path / "bad")


def test_object_arrays_are_refused(tmp_path):
    model, _, _ = fitted("binary")
    model.save(tmp_path / "m")
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays["W0"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ann.ModelFileError, match="holds object arrays"):
        ann.MLP.load(tmp_path / "m")


def test_mismatched_shapes_are_refused(tmp_path):
    model, _, _ = fitted("binary")
    model.save(tmp_path / "m")
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays["W1"] = np.zeros((3, 3))
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ann.ModelFileError, match=r"array 'W1' has shape \(3, 3\), the architecture needs \(8, 4\)"):
        ann.MLP.load(tmp_path / "m")


def test_missing_and_corrupt_files_are_refused(tmp_path):
    with pytest.raises(ann.ModelFileError, match="does not exist"):
        ann.MLP.load(tmp_path / "nothing")
    model, _, _ = fitted("regression")
    model.save(tmp_path / "m")
    (tmp_path / "m.npz").write_bytes(b"not a zip")
    with pytest.raises(ann.ModelFileError, match="not a valid .npz file"):
        ann.MLP.load(tmp_path / "m")
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["params"]["activation"] = "nope"
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ann.ModelFileError, match="activation='nope'"):
        ann.MLP.load(tmp_path / "m")
