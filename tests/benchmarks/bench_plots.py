"""Learning-curve PNG benchmark: the time to draw and write one run's figure, trees side by side.

A sweep's helper process draws one figure per trial (``sweeps.training.plots.save_learning_curve``);
this times it on a few typical histories (6, 30 and 90 epochs; a loss that spans decades and
one that does not) in each tree, alternating rounds, and prints medians and ratios::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/benchmarks/bench_plots.py \\
        --trees new=. before=/path/to/older/checkout --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "digits: fit = good [train longer]\nvalidation loss still falling at the last epoch; gap small"


def histories() -> dict[str, dict[str, list[float]]]:
    """Typical curves: a classifier's loss falling over two decades or less, at three lengths."""
    import numpy as np

    out = {}
    for epochs, tau in ((6, 2.0), (30, 3.0), (30, 12.0), (90, 20.0)):
        e = np.arange(1, epochs + 1)
        train = 2.0 * np.exp(-e / tau) + 0.01
        out[f"{epochs} epochs, tau {tau:g}"] = {
            "train_loss": train.tolist(), "val_loss": (train * 1.2 + 0.05).tolist(),
            "train_accuracy": np.linspace(0.5, 1.0, epochs).tolist(),
            "val_accuracy": np.linspace(0.4, 0.97, epochs).tolist()}
    return out


def time_figures(repeats: int) -> dict[str, float]:
    """Median seconds per figure for each history, in this process (after a warm-up figure of each)."""
    from sweeps.training.plots import save_learning_curve

    with tempfile.TemporaryDirectory() as tmp:
        png = str(Path(tmp) / "curve.png")
        out = {}
        for history in histories().values():  # a helper draws many: its caches (fonts, glyphs, text) are warm
            save_learning_curve(png, history, "multiclass", 5, TITLE)
        for name, history in histories().items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                save_learning_curve(png, history, "multiclass", 5, TITLE)
                times.append(time.perf_counter() - started)
            out[name] = statistics.median(times)
        out["bytes"] = os.path.getsize(png)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", default=["new=."], metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (a process per tree and round)")
    parser.add_argument("--repeats", type=int, default=5, help="figures per history in a round")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(time_figures(args.one)))
        return
    trees = [tree.split("=", 1) for tree in args.trees]
    results: dict[str, list[dict]] = {name: [] for name, _ in trees}
    for _ in range(args.rounds):
        for name, path in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
            done = subprocess.run([sys.executable, __file__, "--one", str(args.repeats)], env=env,
                                  capture_output=True, text=True, check=True)
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = trees[0][0]
    for case in histories():
        medians = {name: statistics.median(r[case] for r in rs) for name, rs in results.items()}
        print(f"{case:<22}" + "  ".join(f"{name} {medians[name] * 1000:5.0f} ms ({medians[name] / medians[first]:.2f})"
                                         for name in medians))
    print("PNG size (90 epochs): " + ", ".join(f"{name} {rs[-1]['bytes'] / 1000:.0f} kB" for name, rs in results.items()))


if __name__ == "__main__":
    main()
