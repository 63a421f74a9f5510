"""ann.data.kfold_indices (the folds of sweep.cv_folds) and the folds a sweep prepares from its data."""

from __future__ import annotations

import numpy as np
import pytest

import ann
from ann.data import kfold_indices
from ann.preprocessing import Standardizer
from sweeps.config.compose import compose
from sweeps.config.run_spec import build_run_spec
from sweeps.training.data import prepare_data


def _labels() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.permutation(np.repeat([0, 1, 2, 3], [50, 23, 9, 2]))  # 84 rows, unbalanced, one class of 2


@pytest.mark.parametrize("stratify", [False, True])
@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_folds_are_disjoint_cover_every_row_and_are_balanced(k, stratify):
    y = _labels()
    folds = kfold_indices(y, k, stratify=stratify, seed=7)
    assert len(folds) == k
    vals = np.concatenate([val for _, val in folds])
    assert sorted(vals.tolist()) == list(range(len(y)))  # every row in exactly one validation part
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == len(y)


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_stratified_folds_keep_every_class_within_one_row_of_its_share(k):
    y = _labels()
    counts = np.array([np.bincount(y[val], minlength=4) for _, val in kfold_indices(y, k, stratify=True, seed=1)])
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all(), counts
    assert (counts.sum(axis=0) == np.bincount(y)).all()
    for train, _ in kfold_indices(y, k, stratify=True, seed=1):  # a class of 2 rows: in every training part
        assert set(y[train]) == {0, 1, 2, 3}


def test_unstratified_folds_can_leave_a_class_unbalanced():
    y = np.repeat([0, 1], [90, 10])
    spreads = [np.ptp([np.bincount(y[val], minlength=2)[1] for _, val in kfold_indices(y, 5, seed=s)]) for s in range(20)]
    assert max(spreads) > 1  # what stratify=True prevents (checked above)


def test_folds_are_seeded():
    y = _labels()
    first = kfold_indices(y, 5, stratify=True, seed=11)
    again = kfold_indices(y, 5, stratify=True, seed=11)
    other = kfold_indices(y, 5, stratify=True, seed=12)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))


@pytest.mark.parametrize(("k", "name"), [(1, "n_folds"), (85, "n_folds"), (2.5, "n_folds"), (True, "n_folds")])
def test_bad_numbers_of_folds_are_refused(k, name):
    with pytest.raises(ann.InvalidParameterError) as caught:
        kfold_indices(_labels(), k)
    assert caught.value.name == name


@pytest.mark.parametrize("dataset", ["digits", "diabetes"])  # stratified; plain k-fold for regression
def test_a_sweeps_folds_are_its_training_and_validation_rows_standardised_by_their_own_training_rows(dataset):
    spec = build_run_spec(compose([f"dataset={dataset}", "tracking=off"]))
    data = prepare_data(spec)
    folds = data.folds(3, spec.split_seed)
    assert data.folds(3, spec.split_seed) is folds  # made once per process
    pooled = np.concatenate([data.X_train, data.X_val])
    assert sum(len(f.X_val) for f in folds) == len(pooled)
    assert sorted(map(tuple, np.concatenate([f.X_val for f in folds]).tolist())) == sorted(map(tuple, pooled.tolist()))
    for fold in folds:
        assert fold.test is data.test and fold.task == data.task
        assert fold.train.inputs is data.train.inputs  # rows of the one array, not copies
        assert len(fold.X_train) + len(fold.X_val) == len(pooled)
        scaler = fold.standardized("float64").scaler
        expected = Standardizer().fit(fold.X_train.astype(np.float64))
        assert np.allclose(scaler.mean, expected.mean) and np.allclose(scaler.scale, expected.scale)
        assert not np.allclose(scaler.mean, Standardizer().fit(pooled.astype(np.float64)).mean)


@pytest.mark.parametrize("dataset", ["digits", "diabetes"])
def test_prepared_data_keeps_the_rows_once_in_its_splits_and_the_description_whole(dataset):
    spec = build_run_spec(compose([f"dataset={dataset}", "tracking=off"]))
    data = prepare_data(spec)
    loaded = ann.data.load_dataset(spec.dataset, **spec.dataset_options)
    assert len(data.dataset.X) == 0 and len(data.dataset.y) == 0  # not held beside the splits
    assert data.dataset.X.shape[1] == loaded.X.shape[1]
    described = (data.dataset.name, data.task, data.dataset.feature_names, data.dataset.class_names, data.dataset.n_classes)
    assert described == (loaded.name, loaded.task, loaded.feature_names, loaded.class_names, loaded.n_classes)
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == len(loaded.X)


def test_standardising_reads_the_parts_in_place_and_never_gathers_their_raw_rows():
    # 60,000 x 784 float64 is 376 MB: a sweep that standardises keeps only its float32 copy.
    spec = build_run_spec(compose(["dataset=digits", "tracking=off"]))
    data = prepare_data(spec)
    assert data.train.inputs is data.val.inputs is data.test.inputs
    standardized = data.standardized("float32")
    assert not {"X_train", "X_val", "X_test"} & set(vars(data))  # nothing gathered
    for part, Z in [(data.train, standardized.X_train), (data.val, standardized.X_val), (data.test, standardized.X_test)]:
        np.testing.assert_array_equal(Z, standardized.scaler.transform(part.gather(), dtype="float32"))


def test_a_csvs_empty_cells_get_the_training_rows_median_not_the_files(tmp_path):
    """The test rows' values stay out of what a network trains on and out of its model's encoding."""
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=n)
    a = np.where(rng.random(n) < 0.3, np.nan, rng.exponential(size=n).round(3))
    label = (x + np.nan_to_num(a) > 1).astype(int)
    path = tmp_path / "data.csv"
    path.write_text("x,a,label\n" + "".join(f"{u},{'' if np.isnan(v) else v},{w}\n" for u, v, w in zip(x, a, label)))
    spec = build_run_spec(compose(["dataset=csv", f"dataset.path={path}", "dataset.target=label",
                                   "dataset.cache_dir=null", "tracking=off"]))
    data = prepare_data(spec)
    X_train = data.X_train
    names = data.dataset.feature_names
    column, empty = X_train[:, names.index("a")], X_train[:, names.index("a_missing")] == 1
    median = float(np.median(column[~empty]))
    assert median != pytest.approx(float(np.nanmedian(a)))  # the whole file's differs
    np.testing.assert_array_equal(column[empty], median)
    [encoded] = [c for c in data.dataset.encoding.columns if c.name == "a"]
    assert encoded.median == median
    test = data.test.gather()
    assert (test[test[:, names.index("a_missing")] == 1, names.index("a")] == median).all()
