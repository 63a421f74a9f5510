"""What logging a run's dataset inputs costs (sweeps/training/run_inputs.py), per run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tests/benchmarks/bench_run_inputs.py

Prints medians of: the digests of the three splits (digits; a 70000x784 MNIST-sized
array), building the inputs, and the ``log_inputs`` request to a fresh SQLite store. The
work runs on the run's background logging thread, so the training thread does not wait
for it (hashing releases the GIL).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mlflow import MlflowClient  # noqa: E402

from sweeps.config.compose import compose  # noqa: E402
from sweeps.config.run_spec import build_run_spec  # noqa: E402
from sweeps.training.run_inputs import dataset_inputs, digest  # noqa: E402
from sweeps.training.data import prepare_data  # noqa: E402


def median_seconds(function, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    spec = build_run_spec(compose(["dataset=digits", "tracking=off"]))
    data = prepare_data(spec)
    big = np.random.default_rng(0).random((70000, 784))
    labels = np.zeros(70000, dtype=np.int64)
    with tempfile.TemporaryDirectory() as folder:
        client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
        experiment = client.create_experiment("bench")
        runs = [client.create_run(experiment).info.run_id for _ in range(15)]
        inputs = dataset_inputs(spec, data)
        pending = iter(runs)
        log = median_seconds(lambda: client.log_inputs(next(pending), datasets=inputs))
    from sweeps.training import run_inputs
    def first_time():
        run_inputs._DIGESTS.clear()
        dataset_inputs(spec, data)

    print(f"digits: inputs with the 3 digests {1e3 * median_seconds(first_time):.2f} ms, "
          f"again in the same process (a sweep's next trial) {1e3 * median_seconds(lambda: dataset_inputs(spec, data)):.2f} ms, "
          f"log_inputs to SQLite {1e3 * log:.1f} ms")
    print(f"70000x784 float64 (MNIST-sized): digest {1e3 * median_seconds(lambda: digest(big, labels), 5):.0f} ms")


if __name__ == "__main__":
    main()
