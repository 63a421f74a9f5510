#!/usr/bin/env python
"""Sweep benchmark: what tracking costs, and what pruning saves.

A script, not a test (pytest does not collect ``tests/benchmarks``)::

    python tests/benchmarks/bench_sweep.py                    # both parts, the default sweep
    python tests/benchmarks/bench_sweep.py --seeds 0 1 2      # pruning over three sampler seeds
    python tests/benchmarks/bench_sweep.py --quick            # smoke run: 8 trials of 8 epochs
    python tests/benchmarks/bench_sweep.py --json bench.json  # also write the figures as JSON

Every sweep runs in-process through the same code as ``ann-sweep`` (``sweeps.study.runner``),
one worker, in a fresh temporary folder (its own Optuna SQLite file and MLflow store).
The sweep is the default one (``conf/sweep/digits.yaml``: digits, TPE seeded, 30 trials of
up to 30 epochs) unless ``--overrides`` changes it.

1. **Tracking overhead.** The same seeded sweep (``--overhead-trials``, 12 by default;
   ``--repeats`` alternating runs, the median reported: the machine may be shared) with ``tracking=local`` (an MLflow SQLite
   store: parent run, child runs with per-epoch metrics, learning-curve PNG, pyfunc model
   per completed trial, leaderboard / plots / champion at the end) and ``tracking=off``.
   Seeded TPE and seeded training make both sweeps draw and train the very same trials,
   so the difference is what MLflow costs: wall time and this process's CPU time (which
   other jobs on a shared machine disturb far less), in total, per trial and as a share
   of the untracked sweep.

2. **Pruning.** The same sweep (same seed, same number of trials, tracking off) with
   ``sweep.pruner.name=none`` and with each pruner (median -- the default --, successive
   halving, hyperband). Reported: the epochs trained over all trials (what pruning saves)
   as a share of the unpruned sweep's, and the best trial's validation loss, validation
   accuracy and test accuracy, with the difference to the unpruned sweep in accuracy
   points. The targets: at most 40 % of the epochs, best within 0.5 points.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from sweeps.study import storage as ST
from sweeps.core import vocabulary as V

DEFAULT_PRUNERS = ("median", "successive_halving", "hyperband")
QUICK = ["sweep.n_trials=8", "training.epochs=8", "sweep.sampler.n_startup_trials=3",
         "sweep.pruner.n_startup_trials=2", "sweep.pruner.n_warmup_steps=2"]


def run(overrides: list[str], tracking: bool) -> dict:
    """One sweep in a fresh folder; its figures."""
    from sweeps.study import optuna_study as S
    from sweeps.study.runner import compose, prepare, run_sweep

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        where = [f"sweep.storage=sqlite:///{tmp}/optuna.db", "sweep.study_name=bench", "sweep.plotlyjs=cdn"]
        where += [f"tracking.uri=sqlite:///{tmp}/mlflow.db"] if tracking else ["tracking=off"]
        cfg = compose([*overrides, *where])
        started, cpu = time.perf_counter(), time.process_time()
        prepared = prepare(cfg)
        outcome = run_sweep(prepared)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        best = S.best_trials(__import__("optuna").load_study(study_name="bench", storage=ST.open_storage(prepared.settings.storage)))
        metrics = best[0].user_attrs.get(V.TRIAL_METRICS, {}) if best else {}
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "trials": outcome.progress.finished,
            "complete": outcome.progress.complete,
            "pruned": outcome.progress.pruned,
            "failed": outcome.progress.failed,
            "epochs": outcome.epochs_total,
            "max_epochs": outcome.progress.finished * prepared.epochs,
            "best_trial": best[0].number if best else None,
            "best_value": best[0].values[0] if best else None,
            "best_val_accuracy": metrics.get("best/accuracy/val"),
            "best_test_accuracy": metrics.get("accuracy/test"),
        }


def _quiet() -> None:
    import mlflow  # noqa: F401 - configures its loggers on import: before they are changed here
    import optuna

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.basicConfig(level=logging.ERROR)
    for name in ("mlflow", "alembic", "sweeps"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def _points(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{100 * (a - b):+.2f}"


def _times(results: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.1f}" for r in results)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampler seeds (sweep.seed) for part 2")
    parser.add_argument("--pruners", nargs="+", default=list(DEFAULT_PRUNERS))
    parser.add_argument("--overrides", nargs="*", default=[], help="extra ann-sweep overrides for every sweep")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 trials of 8 epochs")
    parser.add_argument("--repeats", type=int, default=3, help="alternating on/off repeats of part 1")
    parser.add_argument("--overhead-trials", type=int, default=12, help="trials of the part-1 sweep (0: the sweep's own)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-pruning", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    _quiet()
    base = [*(QUICK if args.quick else []), *args.overrides]
    import numpy
    import optuna
    import mlflow

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, numpy {numpy.__version__}, "
          f"optuna {optuna.__version__}, mlflow {mlflow.__version__}")
    print(f"sweep: default (conf/sweep/digits.yaml) {' '.join(base)}".rstrip())
    figures: dict = {"overrides": base, "overhead": None, "pruning": []}

    if not args.skip_overhead:
        trials = [f"sweep.n_trials={args.overhead_trials}"] if args.overhead_trials else []
        print(f"\n1. tracking overhead (same seeded sweep, tracking on vs off, {args.repeats} alternating repeats, medians)")
        run([*base, *trials, "sweep.n_trials=2"], tracking=True)  # warm-up: imports, MLflow's first database
        ons, offs = [], []
        for _ in range(args.repeats):
            ons.append(run([*base, *trials], tracking=True))
            offs.append(run([*base, *trials], tracking=False))
        on = min(ons, key=lambda r: abs(r["seconds"] - statistics.median(x["seconds"] for x in ons)))
        off = min(offs, key=lambda r: abs(r["seconds"] - statistics.median(x["seconds"] for x in offs)))
        same = all((a["best_trial"], a["epochs"]) == (offs[0]["best_trial"], offs[0]["epochs"]) for a in ons + offs)
        extra = on["seconds"] - off["seconds"]
        print(f"   tracking off: {off['seconds']:7.1f} s  ({off['trials']} trials, {off['epochs']} epochs)  "
              f"runs: {_times(offs)}")
        print(f"   tracking on:  {on['seconds']:7.1f} s  ({on['trials']} trials, {on['epochs']} epochs)  "
              f"runs: {_times(ons)}")
        print(f"   overhead:     {extra:7.1f} s = {extra / max(1, on['trials']):.2f} s per trial "
              f"({extra / max(1, on['epochs']) * 1000:.0f} ms per epoch) = {100 * extra / off['seconds']:.0f}% "
              f"of the untracked sweep; same trials in every run: {same}")
        fastest = min(r["seconds"] for r in ons) - min(r["seconds"] for r in offs)
        print(f"   fastest runs: {fastest:5.1f} s = {fastest / max(1, on['trials']):.2f} s per trial = "
              f"{100 * fastest / min(r['seconds'] for r in offs):.0f}% (the least disturbed runs of a shared machine)")
        cpu_on = statistics.median(r["cpu_seconds"] for r in ons)
        cpu_off = statistics.median(r["cpu_seconds"] for r in offs)
        print(f"   CPU time:     off {cpu_off:.1f} s, on {cpu_on:.1f} s: tracking costs {cpu_on - cpu_off:.1f} s = "
              f"{(cpu_on - cpu_off) / max(1, on['trials']):.2f} s of CPU per trial = {100 * (cpu_on - cpu_off) / cpu_off:.0f}% "
              f"(medians; CPU time is what other jobs on the machine disturb least)")
        figures["overhead"] = {"on": ons, "off": offs, "fastest_per_trial_seconds": fastest / max(1, on["trials"]), "per_trial_seconds": extra / max(1, on["trials"]), "same_trials": same}

    if not args.skip_pruning:
        print("\n2. pruned vs unpruned (same seed and number of trials, tracking off)")
        header = (f"   {'seed':>4}  {'pruner':<19} {'seconds':>7} {'epochs':>7} {'share':>6} {'pruned':>6}  "
                  f"{'best loss/val':>13} {'val acc':>8} {'Δ pts':>6} {'test acc':>8} {'Δ pts':>6}")
        print(header)
        for seed in args.seeds:
            seeded = [*base, f"sweep.seed={seed}"]
            unpruned = run([*seeded, "sweep.pruner.name=none"], tracking=False)
            rows = [("none", unpruned)]
            for pruner in args.pruners:
                rows.append((pruner, run([*seeded, f"sweep.pruner.name={pruner}"], tracking=False)))
            for name, result in rows:
                share = result["epochs"] / max(1, unpruned["epochs"])
                print(f"   {seed:>4}  {name:<19} {result['seconds']:7.1f} {result['epochs']:7d} {100 * share:5.0f}% "
                      f"{result['pruned']:6d}  {result['best_value']:13.4f} {_pct(result['best_val_accuracy']):>8} "
                      f"{_points(result['best_val_accuracy'], unpruned['best_val_accuracy']):>6} "
                      f"{_pct(result['best_test_accuracy']):>8} "
                      f"{_points(result['best_test_accuracy'], unpruned['best_test_accuracy']):>6}", flush=True)
                figures["pruning"].append({"seed": seed, "pruner": name, "epoch_share": share, **result})
        if len(args.seeds) > 1:
            print("\n   means over seeds:")
            for name in ["none", *args.pruners]:
                rows = [r for r in figures["pruning"] if r["pruner"] == name]
                unpruned_rows = [r for r in figures["pruning"] if r["pruner"] == "none"]
                share = statistics.mean(r["epoch_share"] for r in rows)
                dval = statistics.mean(100 * (r["best_val_accuracy"] - u["best_val_accuracy"]) for r, u in zip(rows, unpruned_rows))
                dtest = statistics.mean(100 * (r["best_test_accuracy"] - u["best_test_accuracy"]) for r, u in zip(rows, unpruned_rows))
                loss = statistics.mean(r["best_value"] for r in rows)
                print(f"   {name:<19} epochs {100 * share:5.0f}%  best loss/val {loss:.4f}  "
                      f"val acc {dval:+.2f} pts  test acc {dtest:+.2f} pts")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
