"""The IDX file format and the MNIST / Fashion-MNIST folder loader.

IDX layout (all integers big-endian)::

    byte 0-1   0x00 0x00
    byte 2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
               0x0D float32, 0x0E float64
    byte 3     number of dimensions, ndim
    4 * ndim   the size of each dimension, uint32
    rest       the values, row-major, big-endian

Getting MNIST / Fashion-MNIST (nothing here ever downloads)
-----------------------------------------------------------
Put these four files, raw or gzipped (``.gz``), in one folder::

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

Users who are online can fetch the ``.gz`` versions, e.g. for MNIST::

    mkdir -p data/mnist && cd data/mnist
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte \\
             t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        curl -LO https://storage.googleapis.com/cvdf-datasets/mnist/$f.gz
    done

and for Fashion-MNIST the same four names from
https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/
(for example https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/train-images-idx3-ubyte.gz).
Then ``mnist("data/mnist")`` or ``load_dataset("fashion_mnist", path="data/fashion")``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ann.data.base import Dataset, check_int
from ann.exceptions import DataError, InvalidParameterError

# IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DOWNLOAD_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
}

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when they start with the gzip magic bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: '{path}'") from None
    except OSError as error:
        raise DataError(f"cannot read IDX file '{path}': {error.strerror or error}") from None
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"corrupt gzip IDX file '{path}': {error}") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array in native byte order.

    Raises:
        DataError: the file is missing, not IDX (bad magic or dtype code), or its size
            does not match its header (truncated or trailing bytes).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"'{path}' is not an IDX file: it must start with bytes 0x00 0x00")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"'{path}' has unknown IDX dtype code 0x{code:02X}: expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"'{path}' is truncated: header needs {header} bytes, file has {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        state = "truncated" if len(data) - header < expected else "corrupt (trailing bytes)"
        raise DataError(f"'{path}' is {state}: shape {shape} needs {expected} data bytes, "
                        f"found {len(data) - header}")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends with ``.gz``.

    The dtype must be one of uint8, int8, int16, int32, float32, float64 and the
    array must have 1 to 255 dimensions.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise InvalidParameterError("array.dtype", str(array.dtype),
                                    "one of uint8, int8, int16, int32, float32, float64")
    if not 1 <= array.ndim <= 255:
        raise InvalidParameterError("array.ndim", array.ndim, "1 to 255 dimensions")
    header = bytes([0, 0, codes[native], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[native]]).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def _find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (raw first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_files_error(folder: Path, kind: str, missing: list[str]) -> DataError:
    """The one-line error for an incomplete MNIST folder, saying how to get the files."""
    if not folder.exists():
        where = "does not exist"
    elif not folder.is_dir():
        where = "is not a folder"
    else:
        where = "lacks " + ", ".join(missing)
    names = ", ".join(f"{m}.gz" for m in missing)
    return DataError(f"{kind} folder '{folder}' {where}: download {names} from "
                     f"{DOWNLOAD_URLS[kind]} into it (raw or .gz files both work)")


def _load_part(images_path: Path, labels_path: Path, limit: int | None
               ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """One split: flattened ``float64`` images in [0, 1], ``int64`` labels, (rows, cols)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"'{images_path}' must hold uint8 images of shape (n, rows, cols), "
                        f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"'{labels_path}' must hold one label per image ({len(images)}), "
                        f"got shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise DataError(f"'{labels_path}' has label {int(labels.max())}: expected 0..9")
    images, labels = images[:limit], labels[:limit]
    X = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64), images.shape[1:]


def mnist(path: str | os.PathLike, kind: str = "mnist", limit: int | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from a local folder of the four standard IDX files.

    Args:
        path: folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or
            ``.gz``; see the module docstring for where to download them.
        kind: ``"mnist"`` (class names ``"0"``..``"9"``) or ``"fashion_mnist"``
            (``"T-shirt/top"``, ``"Trouser"``, ...).
        limit: keep only the first ``limit`` train and the first ``limit`` test samples.

    Returns:
        A multiclass :class:`Dataset` named ``kind`` whose ``X``/``y`` is the train part
        and ``X_test``/``y_test`` the t10k part; pixels are ``float64`` in [0, 1],
        flattened row by row (784 features ``pixel_<row>_<col>`` for 28x28 images).

    Raises:
        InvalidParameterError: bad ``path`` type, ``kind`` or ``limit``.
        DataError: the folder or one of the files is missing, or a file is corrupt.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError("path", path, "a folder path (str)")
    if not isinstance(kind, str) or kind not in CLASS_NAMES:
        raise InvalidParameterError("kind", kind, f"one of {list(CLASS_NAMES)}")
    if limit is not None:
        limit = check_int("limit", limit, 1)
    folder = Path(path)
    found = {name: _find_file(folder, name) for name in MNIST_FILES}
    missing = [name for name, file in found.items() if file is None]
    if missing:
        raise _missing_files_error(folder, kind, missing)
    train_images, train_labels, test_images, test_labels = found.values()
    X, y, image_shape = _load_part(train_images, train_labels, limit)
    X_test, y_test, test_shape = _load_part(test_images, test_labels, limit)
    if image_shape != test_shape:
        raise DataError(f"train and t10k images in '{folder}' differ in size: "
                        f"{image_shape} vs {test_shape}")
    rows, cols = image_shape
    feature_names = [f"pixel_{r}_{c}" for r in range(rows) for c in range(cols)]
    return Dataset(kind, X, y, "multiclass", feature_names,
                   class_names=list(CLASS_NAMES[kind]), X_test=X_test, y_test=y_test)


def fashion_mnist(path: str | os.PathLike, limit: int | None = None) -> Dataset:
    """Fashion-MNIST from a local folder: ``mnist(path, kind="fashion_mnist", limit=limit)``."""
    return mnist(path, kind="fashion_mnist", limit=limit)
