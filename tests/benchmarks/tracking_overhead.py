"""Tracking overhead of ``ann-train`` on a 10-epoch MNIST-shaped run against a local server.

Not collected by pytest (tests/benchmarks is in norecursedirs). Run from the repository:

    python tests/benchmarks/tracking_overhead.py            # starts its own `mlflow server`
    python tests/benchmarks/tracking_overhead.py --uri http://127.0.0.1:5000   # an existing one

What it does:

1. writes synthetic MNIST-shaped IDX files (60 000 + 10 000 images of 28x28 uint8, ten
   classes, each class a noisy template so the network learns something) to a temp folder;
2. starts ``mlflow server`` (SQLite backend store, artifacts proxied, default workers, job
   execution off) on a free port of 127.0.0.1, unless ``--uri`` is given;
3. runs :func:`sweeps.training.run.train` with ``dataset=mnist`` and 10 epochs, alternately with
   ``tracking=off`` and with ``tracking=server``, ``--repeats`` times each;
4. reports the median wall time of both and the overhead ``(tracked - untracked) / tracked``,
   and, measured inside the tracked runs, the wall time the training thread spent on
   tracking (connecting, creating the run, queueing metrics, the learning-curve PNG, the
   model, waiting for the background uploads, ending the run) as a share of the run.

On a machine shared with other work the end-to-end difference of two wall times is noisy
(each repeat trains from scratch); the instrumented share is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_mnist_like(folder: Path, seed: int = 0) -> None:
    from ann.data import write_idx

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 28, 28)).astype(np.float32)
    for part, n in (("train", 60_000), ("t10k", 10_000)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        noise = rng.normal(0.0, 60.0, size=(n, 28, 28)).astype(np.float32)
        images = np.clip(0.5 * templates[labels] + noise + 40.0, 0, 255).astype(np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte", labels)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # A tracking-only server: MLflow 3's GenAI job runner (eight idle worker processes that
    # poll continuously) would otherwise take CPU from the training it is measuring.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = open(workdir / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
         "--artifacts-destination", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                time.sleep(10)  # let the other workers finish starting before measuring
                return process, uri
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError((workdir / "server.log").read_text()[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="an existing tracking server (default: start one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("overrides", nargs="*", default=["model.hidden_layers=[128]", "training.batch_size=64"],
                        help="extra config overrides (default: model.hidden_layers=[128] training.batch_size=64)")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    from sweeps.config.compose import compose
    from sweeps.training.run import train

    with tempfile.TemporaryDirectory(prefix="ann-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "mnist").mkdir()
        write_mnist_like(workdir / "mnist")
        server = None
        uri = args.uri
        if uri is None:
            server, uri = start_server(workdir)
        base = [f"dataset=mnist", f"dataset.path={workdir / 'mnist'}", f"training.epochs={args.epochs}", *args.overrides]
        untracked, tracked, fits, shares, phases = [], [], [], [], []
        try:
            # Warm-up (imports, first connection, experiment creation) is not measured.
            train(compose([*base, "training.epochs=1", "tracking=server", f"tracking.uri={uri}", "tracking.experiment_name=bench-warmup"]))
            for repeat in range(args.repeats):
                for mode in ("off", "server"):
                    cfg = compose([*base, f"tracking={mode}", *( [f"tracking.uri={uri}", "tracking.experiment_name=bench"] if mode == "server" else [])])
                    started = time.perf_counter()
                    result = train(cfg)
                    seconds = time.perf_counter() - started
                    (untracked if mode == "off" else tracked).append(seconds)
                    extra = ""
                    if mode == "server":
                        fits.append(result["time/fit_seconds"])
                        shares.append(result["tracking_seconds"] / seconds)
                        phases.append(result["tracking_phases"])
                        extra = (f"  tracking {result['tracking_seconds']:5.2f} s ({shares[-1]:.1%}: "
                                 + ", ".join(f"{k} {v:.3f} s" for k, v in result["tracking_phases"].items()) + ")")
                    print(f"repeat {repeat + 1} tracking={mode:6s} wall {seconds:7.2f} s  fit {result['time/fit_seconds']:7.2f} s  "
                          f"accuracy/test {result['accuracy/test']:.3f}{extra}", flush=True)
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
        off, on = statistics.median(untracked), statistics.median(tracked)
        print(f"\nmedian wall time: tracking=off {off:.2f} s, tracking=server {on:.2f} s")
        print(f"tracking overhead: {on - off:+.2f} s = {(on - off) / on:+.1%} of the tracked run's wall time")
        pairs = [t - u for t, u in zip(tracked, untracked)]
        print("per-repeat overhead: " + ", ".join(f"{p:+.2f} s ({p / t:+.1%})" for p, t in zip(pairs, tracked)))
        print(f"instrumented tracking time on the training thread: median {statistics.median(shares):.1%} "
              f"of the tracked run's wall time (max {max(shares):.1%}); median by phase: "
              + ", ".join(f"{k} {statistics.median(p[k] for p in phases):.3f} s" for k in phases[0]))


if __name__ == "__main__":
    main()
