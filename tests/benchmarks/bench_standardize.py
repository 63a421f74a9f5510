"""Standardising 60,000 x 784 rows, and what ``MLP.fit`` spends before its first epoch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tests/benchmarks/bench_standardize.py [rounds]

Contenders run side by side, alternating, for ``rounds`` rounds (default 7); the table shows
medians and the ratio to the first contender.

* ``standardize``: ``Standardizer().fit(X)`` + ``.transform(X, dtype=float32)`` on MNIST-sized
  float32 and float64 pixels. *before* is the implementation up to commit 82ec0f2 (a float64
  copy of X, ``X.mean(axis=0)``, ``X.std(axis=0)``, then a three-pass transform), *after*
  is :class:`ann.preprocessing.Standardizer` (blocks of rows, no float64 copy, the columns or
  rows shared among the cores). Both give the same bits (checked here).
* ``fit preparation``: ``History.fit_seconds`` minus the epochs' seconds for a one-epoch fit at
  batch 1024 (checks, statistics, standardised copies, network): ``standardize=True`` with the
  old Standardizer patched in (*before*), with today's, the data standardised once and passed
  with ``standardized_by`` (what a sweep worker does for every trial), and ``standardize=False``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ann  # noqa: E402
import ann.estimator  # noqa: E402
from ann.preprocessing import Standardizer  # noqa: E402


class BeforeStandardizer(Standardizer):
    """ann/data/preprocessing.py's Standardizer up to commit 82ec0f2."""

    def fit(self, X):
        X = np.asarray(X, dtype=np.float64)
        self.mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self.scale = scale
        return self

    def transform(self, X, dtype=np.float64):
        out = np.array(X, dtype=dtype, order="C", copy=True)
        out -= self.mean.astype(dtype)
        out /= self.scale.astype(dtype)
        return out


def alternate(contenders: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each contender, run in turn once per round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, function in contenders.items():
            times[name].append(function())
    return {name: statistics.median(values) for name, values in times.items()}


def timed(function):
    def run() -> float:
        started = time.perf_counter()
        function()
        return time.perf_counter() - started
    return run


def report(title: str, medians: dict[str, float]) -> None:
    first = next(iter(medians.values()))
    print(f"\n{title}")
    for name, seconds in medians.items():
        print(f"  {name:<44} {seconds:7.3f} s   {seconds / first:5.2f}x")


def standardize_with(cls, X):
    return lambda: cls().fit(X).transform(X, dtype=np.float32)


def fit_preparation(X, y, model_options=None, **fit_options):
    def run() -> float:
        model = ann.MLP(hidden_layers=[128], epochs=1, batch_size=1024, **(model_options or {}))
        history = model.fit(X, y, **fit_options)
        return history.fit_seconds - sum(history.epoch_seconds)
    return run


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    pixels = np.random.default_rng(0).integers(0, 256, size=(60_000, 784), dtype=np.uint8)
    X32 = pixels.astype(np.float32) / np.float32(255)
    X64 = pixels.astype(np.float64) / 255.0
    y = np.random.default_rng(1).integers(0, 10, size=60_000)

    for X in (X32, X64):
        before, after = BeforeStandardizer().fit(X), Standardizer().fit(X)
        assert np.array_equal(before.mean, after.mean) and np.array_equal(before.scale, after.scale)
        assert np.array_equal(before.transform(X, np.float32), after.transform(X, np.float32))
        report(
            f"standardize 60,000 x 784 {X.dtype} (fit + transform to float32), {rounds} rounds",
            alternate({"before (float64 copy, np.mean, np.std)": timed(standardize_with(BeforeStandardizer, X)),
                       "after (blocks of rows, threads)": timed(standardize_with(Standardizer, X))}, rounds),
        )

    scaler = Standardizer().fit(X64)
    Z = scaler.transform(X64, dtype=np.float32)

    def with_old_standardizer() -> float:
        ann.estimator.Standardizer = BeforeStandardizer
        try:
            return fit_preparation(X64, y)()
        finally:
            ann.estimator.Standardizer = Standardizer

    report(
        f"MLP.fit preparation before the first epoch, 60,000 x 784 float64 input, {rounds} rounds",
        alternate({
            "before: standardize=True (old Standardizer)": with_old_standardizer,
            "after: standardize=True": fit_preparation(X64, y),
            "after: standardized once, standardized_by=": fit_preparation(Z, y, standardized_by=scaler),
            "standardize=False": fit_preparation(X64, y, {"standardize": False}),
        }, rounds),
    )


if __name__ == "__main__":
    main()
