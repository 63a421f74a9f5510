"""ann.Ensemble: the members' outputs averaged, its loss at the averaged output, saved and loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ann
from ann.data import load_dataset

DATA = {
    "binary": lambda: load_dataset("moons", n_samples=80, seed=0),
    "multiclass": lambda: load_dataset("spiral", n_samples=90, seed=0),
    "regression": lambda: load_dataset("regression", n_samples=80, n_features=2, seed=0),
}


def members(task: str, n: int = 3, **kwargs) -> tuple[list[ann.MLP], np.ndarray, np.ndarray]:
    data = DATA[task]()
    models = [ann.MLP(hidden_layers=[8], epochs=4, seed=seed, **kwargs) for seed in range(n)]
    for model in models:
        model.fit(data.X, data.y)
    return models, data.X, data.y


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_probabilities_are_the_members_mean_and_classes_their_argmax(task):
    models, X, _ = members(task)
    ensemble = ann.Ensemble(models)
    mean = np.mean([model.predict_proba(X) for model in models], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ensemble.predict(X), models[0].classes_[np.argmax(mean, axis=1)])
    # the members disagree somewhere, so the mean is not just one of them
    assert any(not np.allclose(model.predict_proba(X), mean) for model in models)


def test_regression_values_are_the_members_mean():
    models, X, _ = members("regression")
    np.testing.assert_allclose(ann.Ensemble(models).predict(X), np.mean([m.predict(X) for m in models], axis=0),
                               rtol=1e-6)


def test_the_loss_is_the_cross_entropy_of_the_averaged_probabilities():
    models, X, y = members("multiclass")
    ensemble = ann.Ensemble(models)
    p = np.mean([model.predict_proba(X) for model in models], axis=0)
    codes = np.searchsorted(models[0].classes_, y)
    by_hand = -np.mean(np.log(p[np.arange(len(y)), codes]))
    scores = ensemble.evaluate(X, y)
    assert scores["loss"] == pytest.approx(by_hand, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean(ensemble.predict(X) == y))


def test_binary_loss_and_regression_r2_of_the_averaged_outputs():
    models, X, y = members("binary")
    p = np.mean([model.predict_proba(X)[:, 1] for model in models], axis=0)
    by_hand = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert ann.Ensemble(models).evaluate(X, y)["loss"] == pytest.approx(by_hand, rel=1e-5)
    models, X, y = members("regression")
    values = np.mean([model.predict(X) for model in models], axis=0)
    r2 = 1 - np.sum((y - values) ** 2) / np.sum((y - y.mean()) ** 2)
    assert ann.Ensemble(models).evaluate(X, y)["r2"] == pytest.approx(r2, rel=1e-5)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_one_member_scores_as_that_member(task):
    models, X, y = members(task, n=1)
    alone, ensemble = models[0].evaluate(X, y), ann.Ensemble(models).evaluate(X, y)
    assert alone.keys() == ensemble.keys()
    for key in alone:
        assert ensemble[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6)
    np.testing.assert_array_equal(ann.Ensemble(models).predict(X), models[0].predict(X))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_confident_members_lose_what_their_logits_say_not_a_capped_or_rounded_value(task):
    """Weights scaled 40x give logits far past float32's saturated sigmoid / softmax: the
    ensemble's loss is still computed from the logits (one member: exactly its own loss)."""
    models, X, y = members(task, n=2)
    for model in models:
        model.network_.theta *= 40.0
    alone = models[0].evaluate(X, y)["loss"]
    assert alone > 30.0  # far beyond -log(1e-12) = 27.6
    assert ann.Ensemble(models[:1]).evaluate(X, y)["loss"] == pytest.approx(alone, rel=1e-4)
    # Two members: -log of the averaged probability of the true class, from each member's log-probabilities.
    log_p = []
    for model in models:
        model.network_.forward(model._inputs(X), training=False)
        z = model.network_.output_pre_activation().astype(np.float64)
        if task == "binary":
            z = np.hstack([np.zeros_like(z), z])  # sigmoid(z) = softmax([0, z])[1]
        log_p.append(z - np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1, keepdims=True)) - z.max(1, keepdims=True))
    codes = np.searchsorted(models[0].classes_, y)
    picked = np.stack([lp[np.arange(len(y)), codes] for lp in log_p])
    by_hand = -np.mean(np.logaddexp.reduce(picked, axis=0) - np.log(2))
    assert ann.Ensemble(models).evaluate(X, y)["loss"] == pytest.approx(by_hand, rel=1e-4)


def test_regression_members_with_other_target_scaling_are_refused():
    models, X, y = members("regression", n=1)
    other = ann.MLP(hidden_layers=[8], epochs=2, seed=1)
    other.fit(X, 3.0 * y + 5.0)
    with pytest.raises(ann.InvalidParameterError, match="target scaling"):
        ann.Ensemble([models[0], other])


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_save_and_load_round_trip_and_ann_load_reads_either_kind(tmp_path, task):
    models, X, y = members(task)
    ensemble = ann.Ensemble(models)
    written = ensemble.save(tmp_path / "model")
    assert json.loads((tmp_path / "model.json").read_text()) == {"format": "ann-ensemble", "version": 1, "members": 3}
    assert {p.rsplit("/", 1)[-1] for p in written} >= {"model.json", "model.member1.npz", "model.member3.json"}
    loaded = ann.load(tmp_path / "model")
    assert isinstance(loaded, ann.Ensemble) and len(loaded.members) == 3
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))
    assert loaded.evaluate(X, y) == ensemble.evaluate(X, y)
    models[0].save(tmp_path / "single")
    assert type(ann.load(tmp_path / "single.npz")) is ann.MLP


def test_members_of_different_tasks_or_unfitted_are_refused():
    binary, _, _ = members("binary", n=1)
    multiclass, _, _ = members("multiclass", n=1)
    with pytest.raises(ann.InvalidParameterError, match="members"):
        ann.Ensemble([binary[0], multiclass[0]])
    with pytest.raises(ann.InvalidParameterError, match="members"):
        ann.Ensemble([binary[0], ann.MLP()])
    with pytest.raises(ann.InvalidParameterError, match="members"):
        ann.Ensemble([])


@pytest.mark.parametrize("description, message", [
    ('{"format": "ann-ensemble", "version": 1, "members": 0}', "members=0"),
    ('{"format": "ann-ensemble", "version": 2, "members": 2}', "version 1"),
    ("not json", "not valid JSON"),
])
def test_a_bad_description_is_a_model_file_error(tmp_path, description, message):
    (tmp_path / "model.json").write_text(description)
    with pytest.raises(ann.ModelFileError, match=message):
        ann.Ensemble.load(tmp_path / "model")


def test_a_missing_member_file_is_a_model_file_error(tmp_path):
    models, _, _ = members("binary", n=2)
    ann.Ensemble(models).save(tmp_path / "model")
    (tmp_path / "model.member2.npz").unlink()
    with pytest.raises(ann.ModelFileError, match="member2.npz"):
        ann.load(tmp_path / "model")
