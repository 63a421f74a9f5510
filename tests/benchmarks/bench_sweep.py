#!/usr/bin/env python
"""Sweep benchmark: what tracking costs, and what pruning saves.

A script, not a test (pytest does not collect ``tests/benchmarks``)::

    python tests/benchmarks/bench_sweep.py                    # both parts, sweep=digits
    python tests/benchmarks/bench_sweep.py --seeds 0 1 2      # pruning over three sampler seeds
    python tests/benchmarks/bench_sweep.py --quick            # smoke run: 8 trials of 8 epochs
    python tests/benchmarks/bench_sweep.py --json bench.json  # also write the figures as JSON
    python tests/benchmarks/bench_sweep.py --trees new=. base=../base --skip-pruning   # two commits side by side
    python tests/benchmarks/bench_sweep.py --csv-load --skip-overhead --skip-pruning   # loading share, 60000x784 CSV
    python tests/benchmarks/bench_sweep.py --flat 1000 --skip-overhead --skip-pruning  # cost per trial, first vs last 100

Every sweep runs in-process through the same code as ``ann-sweep`` (``sweeps.study.runner``),
one worker, in a fresh temporary folder (its own Optuna SQLite file and MLflow store).
The sweep is ``sweep=digits`` (``conf/sweep/digits.yaml``: digits, TPE seeded, 30 trials of
up to 30 epochs; the default sweep until 2026-12-01, which the figures in docs/benchmarks.md
measured) unless ``--overrides`` changes it (``--overrides sweep=default``: today's default).

1. **Tracking overhead.** The same seeded sweep (``--overhead-trials``, 12 by default;
   ``--repeats`` alternating runs, the median reported: the machine may be shared) with ``tracking=local`` (an MLflow SQLite
   store: parent run, child runs with per-epoch metrics, learning-curve PNG, pyfunc model
   per completed trial, leaderboard / plots / champion at the end) and ``tracking=off``.
   Seeded TPE and seeded training make both sweeps draw and train the very same trials,
   so the difference is what MLflow costs: wall time and this process's CPU time (which
   other jobs on a shared machine disturb far less), in total, per trial and as a share
   of the untracked sweep.

2. **Pruning.** The same sweep (same seed, same number of trials, tracking off) with
   ``sweep.pruner.name=none`` and with each pruner (median -- `sweep=digits`' --, successive
   halving, hyperband). Reported: the epochs trained over all trials (what pruning saves)
   as a share of the unpruned sweep's, and the best trial's validation loss, validation
   accuracy and test accuracy, with the difference to the unpruned sweep in accuracy
   points. The targets: at most 40 % of the epochs, best within 0.5 points.

3. **Two trees side by side** (``--trees name=path ...``: a worktree of another commit).
   Every sweep runs in a subprocess whose ``PYTHONPATH`` is that tree, the trees
   alternating, ``--repeats`` rounds, tracked (and untracked with ``--trees-off``);
   reported: medians, the ratio to the first tree, and whether every tree gave the very same
   trials (state, values to the last digit, params; hence the same best trial and pruned set).

4. **Loading share** (``--csv-load``): a sweep (``sweep=digits``' space unless ``--overrides``
   says otherwise) of ``--csv-trials`` short trials on a 60,000 x 784 float CSV (written once to a temporary folder); the time spent loading,
   splitting and standardising the data (timed around ``ann.data.load_dataset``,
   ``split_dataset`` and ``ann.preprocessing.Standardizer``) as a share of the sweep; each of
   ``--repeats`` rounds runs it with an empty parsed-CSV cache (cold), then again (warm).

5. **Flat cost per trial** (``--flat N``): an N-trial tracked ``sweep=quick`` sweep on moons
   (3 epochs); the wall time of each block of ``--block`` finished trials (from the trials'
   completion times), and the last block's time over the first block's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

DEFAULT_PRUNERS = ("median", "successive_halving", "hyperband")
QUICK = ["sweep.n_trials=8", "training.epochs=8", "sweep.sampler.n_startup_trials=3",
         "sweep.pruner.n_startup_trials=2", "sweep.pruner.n_warmup_steps=2"]


def run(overrides: list[str], tracking: bool) -> dict:
    """One sweep in a fresh folder; its figures."""
    # Lazy, as every sweeps import here: part 3 runs this file in trees of older commits.
    from sweeps.core import vocabulary as V
    from sweeps.study import optuna_study as S
    from sweeps.study import storage as ST
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


# ------------------------------------------------------------------ one sweep in a subprocess


def _runner_modules():
    """``(runner, optuna_study)`` of whichever layout this tree has (sweeps/study/ or flat)."""
    try:
        from sweeps.study import optuna_study as S
        from sweeps.study import runner as R
    except ImportError:  # a commit before sweeps/ was split into layers
        from sweeps import runner as R
        from sweeps import study as S
    return R, S


class _Timer:
    """Wall time spent inside the wrapped callables (not re-entrant: the outermost call counts)."""

    def __init__(self) -> None:
        self.seconds, self.depth = 0.0, 0
        self.calls: dict[str, list[float]] = {}

    def wrap(self, function):
        def timed(*args, **kwargs):
            self.depth += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    took = time.perf_counter() - started
                    self.seconds += took
                    self.calls.setdefault(function.__qualname__, []).append(round(took, 3))
        return timed


def _time_loading() -> _Timer:
    """Time data loading: ``load_dataset``, ``split_dataset`` (or ``split_rows`` and the parts'
    ``gather``) and ``Standardizer`` wherever they are used."""
    import ann.data

    try:
        from ann import preprocessing
    except ImportError:  # before the engine's preprocessing left ann.data
        from ann.data import preprocessing

    timer = _Timer()
    for name in ("fit", "transform"):
        setattr(preprocessing.Standardizer, name, timer.wrap(getattr(preprocessing.Standardizer, name)))
    try:
        from sweeps.training.data import Part
        Part.gather = timer.wrap(Part.gather)
    except ImportError:  # before the parts were rows of the loaded data set
        pass
    wrapped = {name: timer.wrap(getattr(ann.data, name)) for name in ("load_dataset", "split_dataset", "split_rows")
               if hasattr(ann.data, name)}
    for name, function in wrapped.items():
        setattr(ann.data, name, function)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("sweeps"):
            for name, function in wrapped.items():
                if hasattr(module, name):
                    setattr(module, name, function)
    return timer


def run_one(job: dict) -> dict:
    """One sweep as ``job`` says (overrides, tracking), in a fresh folder; its figures and trials."""
    import optuna

    R, S = _runner_modules()
    timer = _time_loading() if job.get("time_loading") else None
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        where = [f"sweep.storage=sqlite:///{tmp}/optuna.db", "sweep.study_name=bench", "sweep.plotlyjs=cdn"]
        where += [f"tracking.uri=sqlite:///{tmp}/mlflow.db"] if job["tracking"] else ["tracking=off"]
        started = time.perf_counter()
        R.run_sweep(R.prepare(R.compose([*job["overrides"], *where])))
        seconds = time.perf_counter() - started
        study = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/optuna.db")
        trials = [{"number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
                   "complete": t.datetime_complete.timestamp() if t.datetime_complete else None}
                  for t in study.get_trials(deepcopy=False)]
    return {"seconds": seconds, "trials": trials, "loading_seconds": timer.seconds if timer else None,
            "loading_calls": timer.calls if timer else None}


def run_in(tree: str, job: dict) -> dict:
    """:func:`run_one` in a subprocess importing ``sweeps`` and ``ann`` from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    done = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], env=env, cwd=tree,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sweep in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _signature(result: dict) -> list:
    """What must not change between two trees: every trial's state, values and params."""
    return [(t["number"], t["state"], t["values"], sorted(t["params"].items())) for t in result["trials"]]


def _best(result: dict):
    done = [t for t in result["trials"] if t["state"] == "COMPLETE"]
    return min(done, key=lambda t: t["values"][0]) if done else None


def compare_trees(trees: list[tuple[str, str]], overrides: list[str], repeats: int, modes: list[bool]) -> dict:
    """Part 3: the same seeded sweep in each tree and tracking mode, alternating; medians, ratios,
    identical trials."""
    runs: dict[tuple[str, bool], list[dict]] = {(name, mode): [] for name, _ in trees for mode in modes}
    for _ in range(repeats):
        for name, tree in trees:
            for mode in modes:
                runs[name, mode].append(run_in(tree, {"overrides": overrides, "tracking": mode}))
    reference = _signature(runs[trees[0][0], modes[0]][0])
    medians = {key: statistics.median(r["seconds"] for r in results) for key, results in runs.items()}
    for (name, mode), results in runs.items():
        best = _best(results[0])
        pruned = sorted(t["number"] for t in results[0]["trials"] if t["state"] == "PRUNED")
        versus = f"  tracked / untracked: {medians[name, True] / medians[name, False]:.2f}" if mode and False in modes else ""
        print(f"   {name:<6} tracking {'on ' if mode else 'off'} median {medians[name, mode]:6.1f} s  "
              f"(runs: {_times(results)}; ratio to {trees[0][0]}: {medians[name, mode] / medians[trees[0][0], mode]:.2f})"
              f"{versus}  identical trials: {all(_signature(r) == reference for r in results)}  best: trial "
              f"{best and best['number']} {best and best['values'][0]!r}  pruned: {pruned}", flush=True)
    return {"medians": {f"{n} {'on' if m else 'off'}": v for (n, m), v in medians.items()},
            "runs": {f"{n} {'on' if m else 'off'}": [r["seconds"] for r in rs] for (n, m), rs in runs.items()},
            "identical": all(_signature(r) == reference for rs in runs.values() for r in rs)}


def write_csv(path: Path, rows: int = 60_000, columns: int = 784, seed: int = 0) -> None:
    """A 60,000 x 784 CSV of floats with a ten-class ``label`` column (the classes learnable)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=rows)
    centres = rng.normal(0.0, 1.0, size=(10, columns)).astype(np.float32)
    X = (centres[labels] + rng.normal(0.0, 2.0, size=(rows, columns))).astype(np.float32)
    with open(path, "w") as out:
        out.write(",".join([*(f"x{i}" for i in range(columns)), "label"]) + "\n")
        for start in range(0, rows, 5000):
            block = np.column_stack([X[start:start + 5000], labels[start:start + 5000]])
            np.savetxt(out, block, delimiter=",", fmt=["%.4g"] * columns + ["%d"])


def loading_share(tree: str, trials: int, tracking: bool, base: list[str], repeats: int = 1) -> dict:
    """Part 4: the share of a CSV sweep's wall time spent loading, splitting and standardising the data.

    Each round runs the sweep twice: ``cold`` with an empty ``dataset.cache_dir`` (the file is
    parsed), then ``warm`` with the entry the cold run left (a later sweep or worker on that file).
    The file's times are set a minute back, as for a file that existed before the sweep.
    """
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp:
        path = Path(tmp) / "wide.csv"
        write_csv(path)
        past = time.time() - 60
        os.utime(path, (past, past))
        for round_ in range(repeats):
            cache = Path(tmp) / f"cache-{round_}"
            overrides = [*base, "dataset=csv", f"dataset.path={path}", "dataset.target=label", f"dataset.cache_dir={cache}",
                         f"sweep.n_trials={trials}", "training.epochs=2", "training.batch_size=1024",
                         "sweep.params.batch_size=null", "sweep.enqueue=[]"]
            for kind in runs:
                result = run_in(tree, {"overrides": overrides, "tracking": tracking, "time_loading": True})
                share = result["loading_seconds"] / result["seconds"]
                runs[kind].append({"seconds": result["seconds"], "loading_seconds": result["loading_seconds"], "share": share})
                print(f"   {kind} ({'tracked' if tracking else 'tracking=off'}): {result['seconds']:.1f} s, loading "
                      f"{result['loading_seconds']:.1f} s = {100 * share:.1f}% ({len(result['trials'])} trials)", flush=True)
                calls = {name: f"{sum(times):.2f} s in {len(times)}" for name, times in result["loading_calls"].items()}
                print(f"      {calls}", flush=True)
    medians = {kind: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for kind, rs in runs.items()}
    for kind, m in medians.items():
        print(f"   median {kind}: {m['seconds']:.1f} s, loading {m['loading_seconds']:.1f} s = {100 * m['share']:.1f}%")
    return {"runs": runs, "medians": medians}


def flat_cost(tree: str, n_trials: int, block: int, tracking: bool = True) -> dict:
    """Part 5: block times of a long quick sweep, tracked or not (first vs last block)."""
    overrides = ["sweep=quick", "dataset=moons", "training.epochs=3", f"sweep.n_trials={n_trials}"]
    result = run_in(tree, {"overrides": overrides, "tracking": tracking})
    ends = sorted(t["complete"] for t in result["trials"] if t["complete"] is not None)
    blocks = [ends[min(len(ends), i + block) - 1] - (ends[i - 1] if i else ends[0] - (ends[1] - ends[0]))
              for i in range(0, len(ends), block)]
    print(f"   {tree} ({'tracked' if tracking else 'tracking=off'}): {result['seconds']:.1f} s for {len(ends)} trials; per {block} trials: "
          + ", ".join(f"{b:.1f}" for b in blocks) + f"; last / first = {blocks[-1] / blocks[0]:.2f}", flush=True)
    return {"seconds": result["seconds"], "blocks": blocks, "ratio": blocks[-1] / blocks[0]}


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


def overhead(args, base: list[str], figures: dict) -> None:
    """Part 1: the same sweep tracked and untracked, alternating."""
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



def pruning(args, base: list[str], figures: dict) -> None:
    """Part 2: each pruner against none, same seed and trials, tracking off."""
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
    parser.add_argument("--trees", nargs="+", default=[], metavar="NAME=PATH", help="part 3: trees side by side")
    parser.add_argument("--trees-off", action="store_true", help="part 3 also untracked")
    parser.add_argument("--tree-trials", type=int, default=0, help="trials of the part-3 sweep (0: the sweep's own)")
    parser.add_argument("--csv-load", action="store_true", help="part 4: loading share of a 60000x784 CSV sweep")
    parser.add_argument("--csv-trials", type=int, default=10)
    parser.add_argument("--flat", type=int, default=0, help="part 5: trials of the long quick sweep")
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--flat-off", action="store_true", help="part 5 also untracked (what Optuna itself costs as the study grows)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _quiet()
    if args.one:  # a subprocess of part 3, 4 or 5
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    base = ["sweep=digits", *(QUICK if args.quick else []), *args.overrides]  # a later sweep= wins
    import numpy
    import optuna
    import mlflow

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, numpy {numpy.__version__}, "
          f"optuna {optuna.__version__}, mlflow {mlflow.__version__}")
    print(f"sweep: {' '.join(base)}".rstrip())
    figures: dict = {"overrides": base, "overhead": None, "pruning": []}

    if not args.skip_overhead:
        overhead(args, base, figures)
    if not args.skip_pruning:
        pruning(args, base, figures)
    if args.trees:
        trees = [tuple(item.split("=", 1)) for item in args.trees]
        trials = [f"sweep.n_trials={args.tree_trials}"] if args.tree_trials else []
        print(f"\n3. side by side ({', '.join(f'{n}={p}' for n, p in trees)}; {args.repeats} alternating rounds)")
        modes = [True, False] if args.trees_off else [True]
        figures["trees"] = compare_trees(trees, [*base, *trials], args.repeats, modes)
    if args.csv_load:
        print(f"\n4. loading share: {args.csv_trials} trials on a 60000 x 784 CSV (2 epochs, batch 1024, tracking off)")
        figures["csv_load"] = loading_share(".", args.csv_trials, tracking=False, base=base, repeats=args.repeats)
    if args.flat:
        print(f"\n5. flat cost: {args.flat}-trial sweep=quick on moons, 3 epochs")
        figures["flat"] = flat_cost(".", args.flat, args.block)
        if args.flat_off:
            figures["flat_off"] = flat_cost(".", args.flat, args.block, tracking=False)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
