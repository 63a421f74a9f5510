"""What MLflow's system metrics (tracking.system_metrics) cost a run, on a SQLite store.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tests/benchmarks/bench_system_metrics.py [repeats]

Trains the same run with the monitor off and on, alternating, and prints the median wall
time of ``train()`` for each and their ratio: a sweep-sized trial (digits, 8 epochs,
about a second) and an ``ann-train``-sized run (digits, 60 epochs).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from sweeps.config.compose import compose  # noqa: E402
from sweeps.training.run import train  # noqa: E402

RUNS = {
    "sweep trial (digits, 8 epochs)": ["dataset=digits", "training.epochs=8"],
    "ann-train run (digits, 60 epochs)": ["dataset=digits", "training.epochs=60"],
}


def main(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        for label, overrides in RUNS.items():
            seconds = {False: [], True: []}
            for index in range(2 * repeats + 2):
                monitor = bool(index % 2)
                cfg = compose([*overrides, f"tracking.uri={uri}", "tracking.log_model=false",
                               f"tracking.system_metrics={str(monitor).lower()}"])
                started = time.perf_counter()
                train(cfg)
                if index >= 2:  # the first pair warms up (imports, tables)
                    seconds[monitor].append(time.perf_counter() - started)
            off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
            print(f"{label}: off {off:.3f} s, on {on:.3f} s, on/off {on / off:.3f} "
                  f"(+{1e3 * (on - off):.0f} ms; medians of {repeats})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
