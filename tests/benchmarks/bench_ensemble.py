#!/usr/bin/env python
"""Ensemble benchmark: one network against the average of several (``ann.Ensemble``).

A script, not a test (pytest does not collect ``tests/benchmarks``)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/benchmarks/bench_ensemble.py
    python tests/benchmarks/bench_ensemble.py --datasets diabetes --splits 0 1 2 --members 5 --epochs 150

For every data set and split seed ``s`` (``ann.data.split_dataset`` with no validation part,
15 % test rows: what a sweep's refit trains on), ``--members`` networks of one fixed
configuration (2 x 256 relu, adamw lr 1e-3, weight decay 1e-4, dropout 0.1, batch 64,
cosine schedule; ``--epochs``) are trained with seeds ``100 s``, ``100 s + 1``, ... and scored
on the test rows alone and averaged (``ann.Ensemble``). Reported per split: the members'
median test score and range, the ensemble's; then the mean over splits of the members' mean
and of the ensemble, and on how many splits the ensemble beat the members' mean.
Scores: test accuracy (%) or R².
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path

import numpy as np

import ann
from ann.data import load_dataset, split_dataset

ROOT = Path(__file__).resolve().parents[2]
CONFIG = dict(hidden_layers=[256, 256], activation="relu", optimizer="adamw", lr=1e-3, batch_size=64,
              dropout=0.1, weight_decay=1e-4, lr_schedule="cosine")


def score(model, X, y, task: str) -> float:
    scores = model.evaluate(X, y)
    return scores["r2"] if task == "regression" else 100.0 * scores["accuracy"]


def one_split(name: str, split_seed: int, members: int, epochs: int) -> dict:
    data = load_dataset(name)
    split = split_dataset(data, val_size=0.0, test_size=0.15, seed=split_seed)
    networks = []
    for index in range(members):
        network = ann.MLP(**CONFIG, epochs=epochs, seed=100 * split_seed + index)
        network.fit(split.X_train, split.y_train)
        networks.append(network)
    singles = [score(network, split.X_test, split.y_test, data.task) for network in networks]
    return {"singles": singles, "ensemble": score(ann.Ensemble(networks), split.X_test, split.y_test, data.task)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "diabetes"])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, nargs="+", default=None,
                        help="epochs per data set, in --datasets order (default: 60 digits, 150 others)")
    args = parser.parse_args()
    epochs = args.epochs or [60 if name == "digits" else 150 for name in args.datasets]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"# bench_ensemble  commit {commit}  members {args.members}  splits {args.splits}  numpy {np.__version__}")
    for name, n_epochs in zip(args.datasets, epochs):
        means, ensembles = [], []
        for split_seed in args.splits:
            result = one_split(name, split_seed, args.members, n_epochs)
            singles = result["singles"]
            means.append(statistics.fmean(singles))
            ensembles.append(result["ensemble"])
            print(f"{name:9s} split {split_seed}  members median {statistics.median(singles):.4f} "
                  f"[{min(singles):.4f}, {max(singles):.4f}]  ensemble {result['ensemble']:.4f}", flush=True)
        better = sum(e > m for e, m in zip(ensembles, means))
        print(f"{name:9s} {n_epochs} epochs: members' mean {statistics.fmean(means):.4f}, ensemble "
              f"{statistics.fmean(ensembles):.4f}; the ensemble above the members' mean on {better} of {len(means)} splits")


if __name__ == "__main__":
    main()
