"""Latency of the team setup's MLflow server under different server-process settings.

Runs the ``mlflow`` service's command of docker-compose.yml natively (PostgreSQL on
127.0.0.1:5432 through the ``db-init`` service's command, basic auth, proxied artifacts),
once per setting, and measures through :class:`mlflow.MlflowClient` with the admin's
credentials:

* ``--calls`` sequential ``log_metric`` calls from one client, which keeps its HTTP
  connection alive (what a training run or a sweep worker does);
* the same REST call with ``requests``, on one kept-alive session and on a new connection
  each time (``Connection: close``): tells the server's own time from the keep-alive stall;
* ``--clients`` processes logging ``--calls`` metrics each at the same time (a sweep with
  several workers), as calls per second and per-call latency;
* ``--train-runs`` small tracked ``sweeps.training.run.train()`` runs (what one trial sends).

    python tests/benchmarks/bench_server.py                       # every setting below
    python tests/benchmarks/bench_server.py --settings uvicorn-1 uvicorn-2 --calls 400

Settings: ``uvicorn-N`` (``--workers N``, MLflow's default server), ``gunicorn-N``
(``--gunicorn-opts``, sync workers) and ``gunicorn-N-threads`` (gthread, 4 threads each);
``+nocache`` switches off the basic-auth credential cache (``auth_cache_ttl_seconds = 0``,
MLflow's default: a PBKDF2 hash per request). Results are in docs/benchmarks.md
("MLflow server settings").
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/services.py

import deploy_helpers as H  # noqa: E402

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SETTINGS = {
    "uvicorn-1": dict(workers=1),
    "uvicorn-2": dict(workers=2),
    "uvicorn-4": dict(workers=4),
    "gunicorn-2": dict(workers=2, extra_args="--gunicorn-opts '--timeout 120'"),
    "gunicorn-2-threads": dict(workers=2, extra_args="--gunicorn-opts '--timeout 120 --threads 4'"),
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(latencies: list[float]) -> str:
    ms = [1000 * value for value in latencies]
    return (f"median {statistics.median(ms):6.1f} ms  p90 {_percentile(ms, 0.9):6.1f}  "
            f"p99 {_percentile(ms, 0.99):6.1f}  max {max(ms):6.1f}  mean {statistics.fmean(ms):6.1f}")


def reused_connection(uri: str, calls: int) -> list[float]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench") or client.get_experiment(client.create_experiment("bench"))
    run = client.create_run(experiment.experiment_id)
    for step in range(20):  # warm up: connection, worker imports, caches
        client.log_metric(run.info.run_id, "warmup", float(step), step=step)
    latencies = []
    for step in range(calls):
        started = time.perf_counter()
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
        latencies.append(time.perf_counter() - started)
    client.set_terminated(run.info.run_id)
    return latencies


def raw_requests(uri: str, calls: int, auth: tuple[str, str], reuse: bool) -> list[float]:
    """The log-metric REST call with ``requests``: one kept-alive session, or a new connection each time."""
    import requests
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench")
    run = client.create_run(experiment.experiment_id)
    session = requests.Session() if reuse else requests
    headers = {} if reuse else {"Connection": "close"}
    latencies = []
    for step in range(-10 if reuse else 0, calls):
        body = {"run_id": run.info.run_id, "key": "raw", "value": 1.0, "timestamp": int(time.time() * 1000),
                "step": step}
        started = time.perf_counter()
        response = session.post(f"{uri}/api/2.0/mlflow/runs/log-metric", json=body, auth=auth, headers=headers,
                                timeout=30)
        if step >= 0:
            latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    client.set_terminated(run.info.run_id)
    return latencies


def training_runs(uri: str, repeats: int) -> list[float]:
    """Wall time of a small tracked ``train()`` (moons, 10 epochs, model logged): the calls a trial makes."""
    sys.path.insert(0, str(H.ROOT))
    from sweeps.config.compose import compose
    from sweeps.training.run import train

    cfg = compose(["dataset=moons", "dataset.n_samples=300", "training.epochs=10", "model.hidden_layers=[8]",
                   f"tracking.uri={uri}", "tracking.experiment_name=bench-train"])
    train(cfg)  # warm up: experiment, imports
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        train(cfg)
        seconds.append(time.perf_counter() - started)
    return seconds


def _client_process(uri: str, calls: int, start, queue) -> None:
    start.wait()
    queue.put(reused_connection(uri, calls))


def concurrent_clients(uri: str, calls: int, clients: int) -> tuple[float, list[float]]:
    context = multiprocessing.get_context("spawn")
    start, queue = context.Event(), context.Queue()
    processes = [context.Process(target=_client_process, args=(uri, calls, start, queue)) for _ in range(clients)]
    for process in processes:
        process.start()
    time.sleep(3)  # let every client import mlflow before the clock starts
    began = time.perf_counter()
    start.set()
    latencies = []
    for _ in processes:
        latencies += queue.get(timeout=600)
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(timeout=60)
    return clients * calls / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=[*SETTINGS, "uvicorn-2+nocache"])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1, help="servers started per setting")
    parser.add_argument("--train-runs", type=int, default=3, help="timed train() runs per setting (0: none)")
    args = parser.parse_args()

    prefix = f"ann_bench_{uuid.uuid4().hex[:8]}"
    env_file = H.fresh_env(prefix)
    init = H.run_db_init(env_file)
    if init.returncode != 0:
        raise SystemExit(f"db-init failed: {init.stderr}")
    os.environ.update(MLFLOW_TRACKING_USERNAME=env_file["MLFLOW_ADMIN_USERNAME"],
                      MLFLOW_TRACKING_PASSWORD=env_file["MLFLOW_ADMIN_PASSWORD"])
    auth = (env_file["MLFLOW_ADMIN_USERNAME"], env_file["MLFLOW_ADMIN_PASSWORD"])
    print(f"{args.calls} log_metric calls per client, {os.cpu_count()} cores, PostgreSQL backend, basic auth")
    try:
        for _ in range(args.repeats):
            for name in args.settings:
                base, _, flag = name.partition("+")
                options = dict(SETTINGS[base])
                with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
                    workdir, port = Path(tmp), H.free_port()
                    argv, env = H.mlflow_native(env_file, workdir, port, **options)
                    if "--gunicorn-opts" in options.get("extra_args", ""):
                        # MLflow's CLI takes --allowed-hosts with uvicorn only; the Flask app
                        # reads the same list from the environment.
                        found = re.search(r'--allowed-hosts "([^"]*)"', argv[-1])
                        env["MLFLOW_SERVER_ALLOWED_HOSTS"] = found.group(1)
                        argv[-1] = argv[-1].replace(found.group(0), "")
                    if flag == "nocache":
                        argv[-1] = argv[-1].replace("auth_cache_ttl_seconds = 60", "auth_cache_ttl_seconds = 0")
                    uri = f"http://127.0.0.1:{port}"
                    process = H.start_server(argv, env, workdir, workdir / "server.log", f"{uri}/health")
                    try:
                        reused = reused_connection(uri, args.calls)
                        raw_reused = raw_requests(uri, args.calls, auth, reuse=True)
                        fresh = raw_requests(uri, args.calls, auth, reuse=False)
                        throughput, shared = concurrent_clients(uri, args.calls, args.clients)
                        runs = training_runs(uri, args.train_runs) if args.train_runs else []
                    finally:
                        H.stop_process_group(process)
                print(f"\n{name}")
                print(f"  MlflowClient.log_metric, reused connection  {_summary(reused)}  total {sum(reused):5.2f} s")
                print(f"  requests, reused connection                 {_summary(raw_reused)}")
                print(f"  requests, new connection per call           {_summary(fresh)}")
                print(f"  {args.clients} MlflowClients at once                   {_summary(shared)}  {throughput:5.0f} calls/s")
                if runs:
                    print(f"  train() moons 10 epochs, model logged       median {statistics.median(runs):5.2f} s  "
                          f"({', '.join(f'{s:.2f}' for s in runs)})")
                sys.stdout.flush()
    finally:
        H.drop_prefixed(prefix)


if __name__ == "__main__":
    main()
