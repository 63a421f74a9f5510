"""Data for the engine: data sets, loaders, splits and preprocessing (NumPy + pandas only).

``load_dataset(name, **options)`` loads any registered data set (see ``DATASETS``);
``split_dataset`` splits one into train / validation / test parts, ``kfold_indices``
rows into the folds of a cross-validation.  MNIST and
Fashion-MNIST are read from local IDX files and never downloaded; where to get them
is described in :mod:`ann.data.idx`:

* MNIST: https://storage.googleapis.com/cvdf-datasets/mnist/ (``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``)
* Fashion-MNIST: the same four names under
  https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/

The CSV loader is exported as ``load_csv`` (registered as ``"csv"``): a function named
``csv`` here would shadow the submodule ``ann.data.csv``.
"""

from ann.data.base import TASKS, Dataset
from ann.data.csv import load_csv
from ann.data.encoding import TableEncoding
from ann.data.datasets import (
    DATASETS,
    breast_cancer,
    circles,
    diabetes,
    digits,
    load_dataset,
    moons,
    regression,
    regression_target,
    spiral,
    xor,
)
from ann.data.idx import fashion_mnist, mnist, read_idx, write_idx
from ann.preprocessing import Standardizer, one_hot
from ann.data.split import SplitRows, Splits, split_dataset, split_rows, train_val_test_split
from ann.data.folds import kfold_indices

__all__ = [
    "DATASETS",
    "TASKS",
    "TableEncoding",
    "Dataset",
    "Splits",
    "Standardizer",
    "breast_cancer",
    "circles",
    "diabetes",
    "digits",
    "fashion_mnist",
    "kfold_indices",
    "load_csv",
    "load_dataset",
    "mnist",
    "moons",
    "one_hot",
    "read_idx",
    "regression",
    "regression_target",
    "spiral",
    "split_dataset",
    "split_rows",
    "SplitRows",
    "train_val_test_split",
    "write_idx",
    "xor",
]
