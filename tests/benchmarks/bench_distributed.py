"""Distributed sweep throughput: trials per minute with 1 and 2 ``ann-sweep`` workers on one PostgreSQL study.

    python tests/benchmarks/bench_distributed.py                        # 24 trials, 2 rounds, tracking off
    python tests/benchmarks/bench_distributed.py --wait-quiet 300 --rounds 3 --json /tmp/dist.json
    python tests/benchmarks/bench_distributed.py --tracking server      # trials tracked by a local mlflow server

Each measurement is a fresh PostgreSQL database (127.0.0.1:5432) holding one study, and
``k`` separate ``ann-sweep`` processes started together on it (``k`` = 1, then 2; the
rounds alternate 1, 2, 1, 2, ... so that a change in the machine's load hits both). Every
worker gets one BLAS thread (``OPENBLAS_NUM_THREADS=1`` and friends), so two workers on
two cores do not fight over threads.

The trials are made uniform, so that 1 and 2 workers do the same work: digits, a fixed
``[256, 256]`` network, batch 32, ``--epochs`` epochs, only the learning rate searched (random
sampler, no pruning). Throughput is read from the storage: finished trials divided by
the time from the first trial's start to the last trial's end (process start-up --
imports, the storage connection -- is reported apart, as ``startup``). The ratio
``trials/min (2 workers) / trials/min (1 worker)`` is the figure of merit; on two cores
it cannot exceed 2.

``--wait-quiet S`` waits up to S seconds before each measurement for the 1-minute load
average to drop below ``--quiet-load`` (other jobs share the machine); the load seen is
reported with every result.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "distributed"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from services import MlflowServer, create_database, database_url, drop_database  # noqa: E402

THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}


def sweep_args(storage: str, trials: int, epochs: int, tracking: str | None) -> list[str]:
    args = [
        "sweep=digits", "dataset=digits", f"sweep.study_name=bench", f"sweep.storage={storage}",
        f"sweep.n_trials={trials}", f"training.epochs={epochs}", "training.batch_size=32",
        "model.hidden_layers=[256,256]", "model.activation=relu",
        "~sweep.params.n_layers", "~sweep.params.units", "~sweep.params.activation", "~sweep.params.batch_size",
        "sweep.params.lr.low=1e-3", "sweep.params.lr.high=1e-2",
        "sweep.sampler.name=random", "sweep.pruner.name=none", "sweep.max_failures=0",
        "sweep.plotlyjs=cdn", "sweep.refresh_every=1000",
    ]
    args += [f"tracking.uri={tracking}", "tracking.log_model=false"] if tracking else ["tracking=off"]
    return args


def load1() -> float:
    return os.getloadavg()[0]


def wait_quiet(limit: float, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while load1() > limit and time.monotonic() < deadline:
        time.sleep(5)
    return load1()


def measure(workers: int, trials: int, epochs: int, tracking: str | None, workdir: Path) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = create_database("ann_bench")
    url = database_url(name)
    try:
        env = {**os.environ, **THREAD_ENV, "PYTHONUNBUFFERED": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        load_before = load1()
        started = time.time()
        processes = [subprocess.Popen([sys.executable, "-m", "sweeps.cli.sweep", *sweep_args(url, trials, epochs, tracking)],
                                      cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in range(workers)]
        errors = [process.communicate(timeout=3600)[1] for process in processes]
        wall = time.time() - started
        codes = [process.returncode for process in processes]
        if any(codes):
            raise RuntimeError(f"ann-sweep exited with {codes}:\n" + "\n".join(e[-2000:] for e in errors))
        study = optuna.load_study(study_name="bench", storage=url)
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        assert len(done) == trials, [t.state.name for t in study.trials]
        first = min(t.datetime_start for t in done).timestamp()
        last = max(t.datetime_complete for t in done).timestamp()
        span = last - first
        seconds = [t.duration.total_seconds() for t in done]
        return {
            "workers": workers, "trials": trials, "epochs": epochs, "span_s": round(span, 2),
            "trials_per_min": round(trials / span * 60, 2), "wall_s": round(wall, 2),
            "startup_s": round(first - started, 2), "trial_s_median": round(statistics.median(seconds), 3),
            "load_before": round(load_before, 2), "load_after": round(load1(), 2),
            "per_worker": sorted(sum(1 for t in done if t.user_attrs["sweep.claim"]["pid"] == p.pid) for p in processes),
        }
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each worker count (alternating)")
    parser.add_argument("--tracking", choices=["off", "server"], default="off")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--quiet-load", type=float, default=0.6, help="1-minute load average that counts as quiet")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    server = mlflow_db = None
    tracking = None
    if args.tracking == "server":
        mlflow_db = create_database("ann_bench_mlflow")
        server = MlflowServer(database_url(mlflow_db), workdir)
        server.start()
        tracking = server.uri
    results: list[dict] = []
    try:
        print(f"{os.cpu_count()} cores; {args.trials} trials of {args.epochs} epochs (digits, [256,256], batch 32); "
              f"tracking {args.tracking}; BLAS threads 1 per worker", flush=True)
        for round_index in range(args.rounds):
            for workers in (1, 2):
                if args.wait_quiet:
                    wait_quiet(args.quiet_load, args.wait_quiet)
                result = measure(workers, args.trials, args.epochs, tracking, workdir)
                result["round"] = round_index + 1
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        if server is not None:
            server.stop()
            drop_database(mlflow_db)
    summary = {}
    for workers in (1, 2):
        rates = [r["trials_per_min"] for r in results if r["workers"] == workers]
        summary[workers] = statistics.median(rates)
    ratio = summary[2] / summary[1]
    pairs = [b["trials_per_min"] / a["trials_per_min"] for a, b in zip(results[0::2], results[1::2])]
    print(f"\ntrials per minute (median of {args.rounds}): 1 worker {summary[1]:.1f}, 2 workers {summary[2]:.1f}; "
          f"ratio {ratio:.2f} (per round: {', '.join(f'{p:.2f}' for p in pairs)}; target >= 1.8)")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "tpm": summary, "ratio": ratio, "round_ratios": pairs},
                                        indent=2))


if __name__ == "__main__":
    main()
