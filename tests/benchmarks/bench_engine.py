#!/usr/bin/env python
"""Throughput benchmark: the ``ann`` NumPy engine against PyTorch (CPU) and scikit-learn.

A script, not a test (pytest does not collect ``tests/benchmarks``)::

    python tests/benchmarks/bench_engine.py                 # full run, 5 repeats
    python tests/benchmarks/bench_engine.py --repeats 7 --json bench.json
    python tests/benchmarks/bench_engine.py --quick         # smoke run, small data
    python tests/benchmarks/bench_engine.py --profile       # + cProfile of engine fit @128

What it measures, all in one process so the three frameworks see the same machine state:

1. **MNIST-shaped training throughput.** Synthetic data made with NumPy (60,000 x 784
   float32, 10 classes: class prototypes plus Gaussian noise, so it is learnable; nothing
   is downloaded). Network 784-256-128-10, ReLU hidden, softmax + cross-entropy, ONE epoch,
   for {SGD, Adam} x {batch 128, batch 1024}. Per repeat the runners alternate
   (engine, torch, sklearn, engine-bare, torch-bare, engine, torch, ...) so drift in machine
   load hits all of them alike; the figure is the median over repeats.

   * ``engine``  -- ``ann.MLP(...).fit(X, y)`` wall time, as a user sees it: input
     validation/conversion, set-up, shuffling, the epoch, and the per-epoch running train
     loss and accuracy that ``fit`` always records.
   * ``torch``   -- the same work in PyTorch: model + optimizer built inside the timed
     region, ``torch.randperm`` per epoch with each batch gathered by ``index_select`` into
     a reusable buffer (the engine's own strategy),
     ``F.cross_entropy``, ``zero_grad(set_to_none=True)``, backward, step, and a running
     loss/accuracy (accumulated as tensors, read once at the end) so its output matches
     the engine's history. The optimizer uses PyTorch's fastest CPU implementation
     available (``fused=True``, else ``foreach``; see ``--torch-impl``).
   * ``sklearn`` -- ``MLPClassifier(solver=..., max_iter=1, alpha=0, ...)`` fit on float32
     input (scikit-learn keeps float32), convergence warnings silenced. Its SGD is set to
     plain SGD (``momentum=0``) so all three run the same update rule.
   * ``engine-bare`` / ``torch-bare`` -- one epoch of shuffle + forward/backward/step only
     (network and optimizer built outside the timed region, no metrics), to separate the
     engine's fixed and bookkeeping costs from its compute.

   Also reported: the engine's fraction of the machine's float32 GEMM peak (measured with
   NumPy on large square matmuls, same thread count), with FLOPs counted as
   ``6 x parameters x samples`` per epoch, and a "GEMM-only floor": the time NumPy's BLAS
   needs for exactly the matrix products of one engine epoch, nothing else.

2. **Per-step overhead.** A 2-4-1 XOR net (tanh hidden, sigmoid output, binary
   cross-entropy), batch 4 (the whole set), SGD, N epochs of one step each: steps/s of
   ``ann.MLP.fit(epochs=N, batch_size=4)`` and of a minimal PyTorch loop (forward, loss,
   backward, step, zero_grad).

The thread count defaults to what NumPy's BLAS uses (read with threadpoolctl); PyTorch is
given the same with ``torch.set_num_threads``. PyTorch and scikit-learn are optional:
missing ones are reported and their columns left empty.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ann  # noqa: E402
from ann.activations import make_activation  # noqa: E402
from ann.preprocessing import one_hot  # noqa: E402
from ann.training import Batches  # noqa: E402
from ann.losses import make_loss  # noqa: E402
from ann.network import Network  # noqa: E402
from ann.optimizers import make_optimizer  # noqa: E402

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_info = threadpool_limits = None

try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF
except ImportError:  # torch is optional
    torch = None

try:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
except ImportError:  # pragma: no cover
    sklearn = None

INSTALLED = {
    "torch": torch.__version__ if torch is not None else None,
    "sklearn": sklearn.__version__ if sklearn is not None else None,
}

HIDDEN = (256, 128)
N_FEATURES, N_CLASSES = 784, 10
LR = {"sgd": 0.05, "adam": 1e-3}
OPTIMIZERS = ("sgd", "adam")
BATCHES = (128, 1024)

TARGETS = {
    "torch_b128": 1.25,      # engine / torch samples/s at batch 128
    "torch_b1024": 1.15,     # engine / torch samples/s at batch 1024
    "sklearn": 1.8,          # engine / sklearn samples/s, every configuration
    "gemm_peak_b1024": 0.80,  # engine's fraction of float32 GEMM peak at batch 1024
    "xor_steps": 10.0,       # engine / torch steps/s on the XOR net
}


# ---------------------------------------------------------------------------- environment
def blas_threads() -> int | None:
    if threadpool_info is None:
        return None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return pool["num_threads"]
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return pool["num_threads"]
    return None


def cpu_description() -> dict:
    info = {"model": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    info.update(
        model=fields.get("model name", info["model"]),
        family=fields.get("cpu family"),
        model_number=fields.get("model"),
        logical_cpus=os.cpu_count(),
        avx2="avx2" in flags,
        fma="fma" in flags,
        avx512f="avx512f" in flags,
    )
    return info


def environment(threads: int) -> dict:
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ann": getattr(ann, "__version__", "?"),
        "torch": INSTALLED["torch"],
        "sklearn": INSTALLED["sklearn"],
        "torch_used": torch is not None,
        "sklearn_used": sklearn is not None,
        "threads": threads,
        "cpu": cpu_description(),
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    env["ann_revision"] = _git_revision()
    env["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE")
    if threadpool_info is not None:
        env["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info()
            if pool.get("user_api") == "blas"
        ]
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        try:
            env["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:  # pragma: no cover - older torch
            env["torch_cpu_capability"] = None
    return env


def _git_revision() -> str | None:
    """The repository's commit, '+dirty' if ann/ has local changes (read-only git calls)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ann"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) if head else None


def print_environment(env: dict) -> None:
    cpu = env["cpu"]
    isa = ", ".join(k for k in ("avx2", "fma", "avx512f") if cpu.get(k)) or "?"
    print("Environment")
    print(f"  CPU      {cpu.get('model')} (family {cpu.get('family')}, model "
          f"{cpu.get('model_number')}), {cpu.get('logical_cpus')} logical CPUs; ISA flags: {isa}")
    def version(name):
        if not env[name]:
            return "not installed"
        return env[name] + ("" if env[f"{name}_used"] else " (skipped)")

    print(f"  python {env['python']}  numpy {env['numpy']}  torch {version('torch')}"
          f"  scikit-learn {version('sklearn')}  ann {env['ann']}"
          f" (repo {env.get('ann_revision') or '?'})")
    for pool in env.get("blas", []):
        print(f"  BLAS loaded: {pool['internal_api']} {pool['version']}, kernel target "
              f"{pool['architecture']}, {pool['num_threads']} threads")
    if env.get("openblas_coretype"):
        print(f"  OPENBLAS_CORETYPE={env['openblas_coretype']}")
    kernels = {str(pool.get("architecture")) for pool in env.get("blas", [])}
    if cpu.get("avx512f") and kernels and all(k in ("Haswell", "Zen") for k in kernels):
        print("  NOTE: the CPU has AVX-512 but OpenBLAS runs AVX2 (Haswell/Zen) kernels; the "
              "GEMM 'peak' below is\n        that kernel's peak, not the hardware's "
              "(OPENBLAS_CORETYPE selects the kernel).")
    if torch is not None:
        print(f"  torch: {env['torch_threads']} intra-op threads, CPU capability "
              f"{env.get('torch_cpu_capability')}")
    print(f"  threads used by every framework: {env['threads']}")
    if env.get("loadavg_start"):
        print("  load average at start: " + " ".join(f"{x:.2f}" for x in env["loadavg_start"]))


# ---------------------------------------------------------------------------- data
def make_data(n: int, n_test: int, seed: int = 0):
    """MNIST-shaped synthetic data: sparse 'stroke' prototypes per class plus noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((N_CLASSES, N_FEATURES)) < 0.25).astype(np.float32) * 0.6

    def draw(m):
        y = rng.integers(0, N_CLASSES, m)
        X = rng.standard_normal((m, N_FEATURES), dtype=np.float32)
        X *= 0.35
        X += prototypes[y]
        np.clip(X, 0.0, 1.0, out=X)
        return X, y

    X, y = draw(n)
    X_test, y_test = draw(n_test)
    return X, y, X_test, y_test


def n_parameters(sizes) -> int:
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))


# ---------------------------------------------------------------------------- timing
def _cpu_busy_seconds() -> float | None:
    """CPU-seconds all CPUs have spent busy since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        ticks = [int(v) for v in fields]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ... ; busy = all but idle and iowait
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """How many CPUs *other* processes kept busy while we were timing (0 = quiet machine)."""

    def __init__(self):
        self.other_cpu = 0.0
        self.wall = 0.0

    def __enter__(self):
        self._busy, self._own = _cpu_busy_seconds(), _own_cpu_seconds()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t
        busy = _cpu_busy_seconds()
        if busy is not None and self._busy is not None:
            self.other_cpu += max(0.0, (busy - self._busy) - (_own_cpu_seconds() - self._own))
            self.wall += wall
        return False

    @property
    def cpus(self) -> float | None:
        return self.other_cpu / self.wall if self.wall else None


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


LOAD = LoadMeter()
WAIT_QUIET = 0.0  # seconds to wait at most for a quiet machine before each repeat (--wait-quiet)
MAX_BUSY = 0.10  # a repeat cycle during which other processes used more CPUs is redone ...
MAX_DISCARDS = 15  # ... at most this many times per configuration (--max-busy, --max-discards)


class RepeatGuard:
    """Which repeat cycles of one configuration count: a cycle during which other processes
    kept more than ``MAX_BUSY`` CPUs busy is redone (at most ``MAX_DISCARDS`` times)."""

    def __init__(self) -> None:
        self.discarded: list[dict] = []
        self.kept_other = self.kept_wall = 0.0
        self._start = (0.0, 0.0)

    def start(self) -> None:
        wait_quiet()
        self._start = (LOAD.other_cpu, LOAD.wall)

    def keep(self, cycle: dict, label: str, log) -> tuple[bool, float, str]:
        """Whether the cycle that just ended counts; also the load it saw and its summary."""
        other, wall = LOAD.other_cpu - self._start[0], LOAD.wall - self._start[1]
        busy = other / max(wall, 1e-9)
        summary = ", ".join(f"{k} {v:.3f}s" for k, v in cycle.items())
        if busy > MAX_BUSY and len(self.discarded) < MAX_DISCARDS:
            self.discarded.append({"busy": busy, "times": cycle})
            log(f"    {label} DISCARDED (other processes {busy:.2f} CPUs): {summary}")
            return False, busy, summary
        self.kept_other += other
        self.kept_wall += wall
        return True, busy, summary

    @property
    def foreign_cpus(self) -> float | None:
        """CPUs other processes kept busy, on average, during the kept cycles."""
        return self.kept_other / self.kept_wall if self.kept_wall else None


def wait_quiet(threshold: float = 0.15, probe: float = 1.0) -> float:
    """Wait (at most WAIT_QUIET s) until other processes use < ``threshold`` CPUs; the wait."""
    if WAIT_QUIET <= 0 or _cpu_busy_seconds() is None:
        return 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < WAIT_QUIET:
        busy, own = _cpu_busy_seconds(), _own_cpu_seconds()
        time.sleep(probe)
        other = (_cpu_busy_seconds() - busy) - (_own_cpu_seconds() - own)
        if other / probe < threshold:
            break
    return time.perf_counter() - start


def timed(fn):
    gc.collect()
    with LOAD:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, result


def median(values):
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------- engine
def engine_model(optimizer: str, batch: int, epochs: int = 1) -> "ann.MLP":
    return ann.MLP(
        hidden_layers=list(HIDDEN), activation="relu", optimizer=optimizer, lr=LR[optimizer],
        batch_size=batch, epochs=epochs, standardize=False, shuffle=True, dtype="float32",
        seed=0,
    )


def engine_fit(optimizer, batch, X, y):
    model = engine_model(optimizer, batch)
    history = model.fit(X, y)
    return model, history


class EngineBare:
    """One epoch of the engine's own training step, without fit()'s bookkeeping.

    Built from the engine's public modules (Network, activations, losses, optimizers);
    network, optimizer, one-hot targets and batch buffers are prepared outside the timed
    region; the timed epoch is shuffle/gather + forward/backward/step per batch, no metrics.
    """

    def __init__(self, optimizer, batch, X, y, sizes=None, hidden="relu", output="softmax",
                 loss="categorical_crossentropy", init="he", targets=None, shuffle=True,
                 lr=None):
        sizes = sizes or [X.shape[1], *HIDDEN, N_CLASSES]
        acts = [make_activation(hidden) for _ in sizes[1:-1]] + [make_activation(output)]
        self.net = Network(sizes, acts, dtype=np.float32, init=init,
                           rng=np.random.default_rng(0))
        self.opt = make_optimizer(optimizer, self.net.theta, lr if lr is not None else LR[optimizer])
        self.loss = make_loss(loss)
        self.inputs = np.ascontiguousarray(X, dtype=np.float32)
        self.targets = targets if targets is not None else one_hot(y, N_CLASSES, np.float32)
        self._batches = Batches(self.inputs, self.targets, batch,
                                 np.random.default_rng(1) if shuffle else None)

    def batches(self):
        """Mini-batches as fit() makes them (the engine's own batcher): a permutation per
        epoch, each batch's rows gathered into one reusable buffer; slices when not shuffling."""
        return iter(self._batches)

    def epoch(self):
        net, opt, loss, out_act = self.net, self.opt, self.loss, self.net.activations[-1]
        for xb, yb in self.batches():
            a = net.forward(xb, training=True)
            z = net.output_pre_activation()
            net.backward(loss.output_gradient(yb, z, a, out_act))
            opt.step(net.grad)

    def steps(self, count):
        """``count`` full-data steps without shuffling (the XOR per-step loop)."""
        net, opt, loss, out_act = self.net, self.opt, self.loss, self.net.activations[-1]
        xs, ys = self.inputs, self.targets
        for _ in range(count):
            a = net.forward(xs, training=True)
            z = net.output_pre_activation()
            net.backward(loss.output_gradient(ys, z, a, out_act))
            opt.step(net.grad)


def gemm_only_epoch(X, batch, sizes):
    """The matrix products of one engine epoch and nothing else (BLAS floor for the engine)."""
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((i, o), dtype=np.float32) * 0.05 for i, o in zip(sizes[:-1], sizes[1:])]
    dW = [np.empty_like(w) for w in W]
    ws = {}

    def buffers(m):
        if m not in ws:
            ws[m] = ([np.empty((m, o), np.float32) for o in sizes[1:]],
                     [np.empty((m, o), np.float32) for o in sizes[1:-1]])
        return ws[m]

    def run():
        for start in range(0, len(X), batch):
            xb = X[start:start + batch]
            zs, gs = buffers(len(xb))
            a = xb
            for l, w in enumerate(W):
                np.matmul(a, w, out=zs[l])
                a = zs[l]
            delta = zs[-1]
            for l in range(len(W) - 1, -1, -1):
                a_prev = xb if l == 0 else zs[l - 1]
                np.matmul(a_prev.T, delta, out=dW[l])
                if l:
                    np.matmul(delta, W[l].T, out=gs[l - 1])
                    delta = gs[l - 1]

    return run


# ---------------------------------------------------------------------------- torch
def torch_optimizer(name, params, lr, impl):
    cls = torch.optim.SGD if name == "sgd" else torch.optim.Adam
    kwargs = {"lr": lr}
    if name == "sgd":
        kwargs["momentum"] = 0.0
    attempts = {"fused": [{"fused": True}, {"foreach": True}, {}],
                "foreach": [{"foreach": True}, {}],
                "forloop": [{"foreach": False}]}[impl]
    for extra in attempts:
        try:
            return cls(params, **kwargs, **extra)
        except (RuntimeError, TypeError, ValueError):
            continue
    return cls(params, **kwargs)


def torch_mlp(seed=0):
    torch.manual_seed(seed)
    return tnn.Sequential(
        tnn.Linear(N_FEATURES, HIDDEN[0]), tnn.ReLU(),
        tnn.Linear(HIDDEN[0], HIDDEN[1]), tnn.ReLU(),
        tnn.Linear(HIDDEN[1], N_CLASSES),
    )


def torch_batches(Xt, yt, batch, gen):
    """Shuffled mini-batches: torch.randperm per epoch, each batch's (sorted) rows gathered
    with index_select into reusable buffers -- the engine's strategy, and in our measurements
    at least as fast as gathering the whole shuffled set once or indexing a fresh tensor per
    batch."""
    n = Xt.shape[0]
    buf_x = torch.empty((batch, Xt.shape[1]), dtype=Xt.dtype)
    buf_y = torch.empty((batch,), dtype=yt.dtype)
    perm = torch.randperm(n, generator=gen)
    for start in range(0, n, batch):
        index = perm[start:start + batch].sort().values
        m = index.shape[0]
        yield (torch.index_select(Xt, 0, index, out=buf_x[:m]),
               torch.index_select(yt, 0, index, out=buf_y[:m]))


def torch_fit(optimizer, batch, X, y, impl):
    """One epoch as a user would write it, with a running loss and accuracy like fit()'s."""
    model = torch_mlp()
    opt = torch_optimizer(optimizer, model.parameters(), LR[optimizer], impl)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    n = Xt.shape[0]
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    model.train()
    for xb, yb in torch_batches(Xt, yt, batch, gen):
        out = model(xb)
        loss = TF.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(yb)
            correct += (out.argmax(dim=1) == yb).sum()
    return model, {"train_loss": float(loss_sum) / n, "train_accuracy": int(correct) / n}


class TorchBare:
    """One epoch of shuffle/gather + forward/loss/backward/step; model built outside the timer."""

    def __init__(self, optimizer, batch, X, y, impl):
        self.model = torch_mlp()
        self.opt = torch_optimizer(optimizer, self.model.parameters(), LR[optimizer], impl)
        self.Xt, self.yt = torch.from_numpy(X), torch.from_numpy(y)
        self.gen = torch.Generator().manual_seed(0)
        self.batch = batch

    def epoch(self):
        model, opt = self.model, self.opt
        for xb, yb in torch_batches(self.Xt, self.yt, self.batch, self.gen):
            loss = TF.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def torch_accuracy(model, X, y):
    with torch.no_grad():
        return float((model(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


# ---------------------------------------------------------------------------- sklearn
def sklearn_fit(optimizer, batch, X, y):
    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN, activation="relu", solver=optimizer, batch_size=batch,
        learning_rate_init=LR[optimizer], learning_rate="constant", momentum=0.0,
        nesterovs_momentum=False, alpha=0.0, max_iter=1, shuffle=True, tol=0.0,
        n_iter_no_change=10**9, early_stopping=False, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf


# ---------------------------------------------------------------------------- GEMM peak
def gemm_peak(sizes=(2048, 4096), repeats=(5, 3)):
    rng = np.random.default_rng(0)
    results = {}
    for n, reps in zip(sizes, repeats):
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        C = np.empty((n, n), np.float32)
        np.matmul(A, B, out=C)  # warm-up
        times = [timed(lambda: np.matmul(A, B, out=C))[0] for _ in range(reps)]
        results[n] = 2.0 * n**3 / median(times) / 1e9
    return results


def torch_gemm(n=4096, reps=3):
    A = torch.randn(n, n)
    B = torch.randn(n, n)
    C = torch.empty(n, n)
    torch.mm(A, B, out=C)
    times = [timed(lambda: torch.mm(A, B, out=C))[0] for _ in range(reps)]
    return 2.0 * n**3 / median(times) / 1e9


# ---------------------------------------------------------------------------- benchmarks
def bench_training(X, y, X_test, y_test, repeats, impl, bare, peak, log):
    """Alternating repeats for each (optimizer, batch); returns per-configuration results."""
    n = len(X)
    sizes = [N_FEATURES, *HIDDEN, N_CLASSES]
    flops_per_epoch = 6.0 * n_parameters(sizes) * n
    results = []
    for optimizer in OPTIMIZERS:
        for batch in BATCHES:
            if batch > n:
                continue
            runners = {}
            runners["engine"] = lambda: engine_fit(optimizer, batch, X, y)
            if torch is not None:
                runners["torch"] = lambda: torch_fit(optimizer, batch, X, y, impl)
            if sklearn is not None:
                runners["sklearn"] = lambda: sklearn_fit(optimizer, batch, X, y)
            if bare:
                runners["engine_bare"] = "bare"
                if torch is not None:
                    runners["torch_bare"] = "bare"

            # Warm-up on a slice: lazy imports, oneDNN primitives, BLAS thread start-up.
            warm = slice(0, min(n, 4 * batch))
            engine_fit(optimizer, batch, X[warm], y[warm])
            if torch is not None:
                torch_fit(optimizer, batch, X[warm], y[warm], impl)
            if sklearn is not None:
                sklearn_fit(optimizer, batch, X[warm], y[warm])

            floor_run = gemm_only_epoch(X, batch, sizes)
            floor_run()
            runners["gemm_only"] = floor_run

            guard = RepeatGuard()
            times = {name: [] for name in runners}
            engine_epoch, engine_fit_internal, extras = [], [], {}
            rep = 0
            while rep < repeats:
                guard.start()
                cycle, cycle_extras = {}, {}
                for name in runners:
                    if name == "engine_bare":
                        job = EngineBare(optimizer, batch, X, y)
                        seconds, _ = timed(job.epoch)
                    elif name == "torch_bare":
                        job = TorchBare(optimizer, batch, X, y, impl)
                        seconds, _ = timed(job.epoch)
                    else:
                        seconds, out = timed(runners[name])
                        if name == "engine":
                            model, history = out
                            cycle_extras["engine_epoch"] = history.epoch_seconds[0]
                            cycle_extras["engine_fit_internal"] = history.fit_seconds
                            cycle_extras["engine_train_accuracy"] = history.history["train_accuracy"][0]
                            cycle_extras["engine_test_accuracy"] = float(
                                (model.predict(X_test) == y_test).mean())
                        elif name == "torch":
                            model, logs = out
                            cycle_extras["torch_train_accuracy"] = logs["train_accuracy"]
                            cycle_extras["torch_test_accuracy"] = torch_accuracy(model, X_test, y_test)
                        elif name == "sklearn":
                            cycle_extras["sklearn_test_accuracy"] = float(out.score(X_test, y_test))
                            cycle_extras["sklearn_dtype"] = str(out.coefs_[0].dtype)
                    cycle[name] = seconds
                kept, busy, summary = guard.keep(cycle, f"{optimizer:<4} b{batch:<5}", log)
                if not kept:
                    continue
                rep += 1
                for name, seconds in cycle.items():
                    times[name].append(seconds)
                engine_epoch.append(cycle_extras.pop("engine_epoch"))
                engine_fit_internal.append(cycle_extras.pop("engine_fit_internal"))
                extras.update(cycle_extras)
                log(f"    {optimizer:<4} b{batch:<5} repeat {rep}/{repeats} (busy {busy:.2f}): "
                    + summary)

            foreign = guard.foreign_cpus
            floor = median(times.pop("gemm_only"))
            runners.pop("gemm_only")

            med = {name: median(v) for name, v in times.items()}
            sps = {name: n / t for name, t in med.items()}
            row = {
                "optimizer": optimizer, "batch": batch, "samples": n,
                "times": times, "median_seconds": med, "samples_per_second": sps,
                "engine_epoch_seconds_median": median(engine_epoch),
                "engine_fit_seconds_internal_median": median(engine_fit_internal),
                "gemm_only_seconds": floor,
                "other_processes_cpus": foreign,
                "discarded_cycles": guard.discarded,
                "engine_gflops": flops_per_epoch / med["engine"] / 1e9,
                "engine_peak_fraction": flops_per_epoch / med["engine"] / 1e9 / peak,
                **extras,
            }
            if "torch" in sps:
                row["engine_over_torch"] = sps["engine"] / sps["torch"]
            if "sklearn" in sps:
                row["engine_over_sklearn"] = sps["engine"] / sps["sklearn"]
            if "engine_bare" in sps and "torch_bare" in sps:
                row["bare_engine_over_torch"] = sps["engine_bare"] / sps["torch_bare"]
            results.append(row)
    return results


def bench_xor(steps, repeats, log):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])

    def engine(shuffle):
        model = ann.MLP(hidden_layers=[4], activation="tanh", optimizer="sgd", lr=0.5,
                        batch_size=4, epochs=steps, standardize=False, shuffle=shuffle,
                        dtype="float32", seed=0)
        model.fit(X, y)
        return model

    def engine_bare():
        job = EngineBare("sgd", 4, X, y, sizes=[2, 4, 1], hidden="tanh", output="sigmoid",
                         loss="binary_crossentropy", init="xavier",
                         targets=y.astype(np.float32).reshape(-1, 1), shuffle=False, lr=0.5)
        return job

    def torch_loop():
        torch.manual_seed(0)
        model = tnn.Sequential(tnn.Linear(2, 4), tnn.Tanh(), tnn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        loss_fn = tnn.BCEWithLogitsLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32).reshape(-1, 1))
        for _ in range(steps):
            loss = loss_fn(model(Xt), yt)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return model, Xt

    # warm-up
    engine(False)
    if torch is not None:
        torch_loop()
    times = {"engine": [], "engine_shuffle": [], "engine_bare": []}
    if torch is not None:
        times["torch"] = []
    learned = {}
    guard = RepeatGuard()
    rep = 0
    while rep < repeats:
        guard.start()
        cycle = {}
        cycle["engine"], model = timed(lambda: engine(False))
        if torch is not None:
            cycle["torch"], (tmodel, Xt) = timed(torch_loop)
        cycle["engine_shuffle"], _ = timed(lambda: engine(True))
        job = engine_bare()
        cycle["engine_bare"], _ = timed(lambda: job.steps(steps))
        kept, busy, summary = guard.keep(cycle, "xor", log)
        if not kept:
            continue
        rep += 1
        for name, seconds in cycle.items():
            times[name].append(seconds)
        log(f"    xor repeat {rep}/{repeats} (busy {busy:.2f}): {summary}")
    learned["engine"] = bool((model.predict(X) == y).all())
    if torch is not None:
        with torch.no_grad():
            learned["torch"] = bool(((tmodel(Xt)[:, 0] > 0).numpy() == y.astype(bool)).all())
    sps = {k: steps / median(v) for k, v in times.items()}
    out = {"steps": steps, "times": times, "steps_per_second": sps, "learned_xor": learned,
           "discarded_cycles": guard.discarded,
           "other_processes_cpus": guard.foreign_cpus}
    if "torch" in sps:
        out["engine_over_torch"] = sps["engine"] / sps["torch"]
        out["engine_shuffle_over_torch"] = sps["engine_shuffle"] / sps["torch"]
    return out


def profile_engine(X, y, batch=128, optimizer="sgd", top=20):
    """cProfile of one engine fit (top functions by own time), redone if the machine was busy."""
    import cProfile
    import io
    import pstats

    engine_fit(optimizer, batch, X[:4096], y[:4096])  # warm-up
    for attempt in range(1 + MAX_DISCARDS):
        wait_quiet()
        profiler = cProfile.Profile()
        with LoadMeter() as meter:
            profiler.enable()
            engine_fit(optimizer, batch, X, y)
            profiler.disable()
        if meter.cpus is None or meter.cpus <= MAX_BUSY:
            break
    stream = io.StringIO()
    stream.write(f"(other processes: {meter.cpus or 0:.2f} CPUs busy during the profile)\n")
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def profile_xor(steps, top=15):
    """cProfile of the XOR fit: where the per-step time of fit() goes."""
    import cProfile
    import io
    import pstats

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    model = ann.MLP(hidden_layers=[4], activation="tanh", optimizer="sgd", lr=0.5, batch_size=4,
                    epochs=steps, standardize=False, shuffle=False, dtype="float32", seed=0)
    profiler = cProfile.Profile()
    profiler.enable()
    model.fit(X, y)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def phase_breakdown(X, y, batch, optimizer, repeats=3):
    """Seconds per epoch spent in each phase of the engine's training step.

    Re-creates fit()'s per-batch work from the engine's own objects (gather, forward, loss
    value, output gradient, backward, optimizer step, running accuracy) with a timer around
    each phase, and splits forward/backward further into their matrix products (timed by
    running the very same matmuls again on the same buffers afterwards).
    """
    phases = ["gather", "forward", "loss value", "output grad", "backward", "optimizer",
              "accuracy"]
    totals = {p: [] for p in phases}
    clock = time.perf_counter
    attempts = 0
    while len(totals["gather"]) < repeats:
        attempts += 1
        wait_quiet()
        meter = LoadMeter().__enter__()
        job = EngineBare(optimizer, batch, X, y)
        net, opt, loss, out_act = job.net, job.opt, job.loss, job.net.activations[-1]
        acc = dict.fromkeys(phases, 0.0)
        correct = 0
        batches = job.batches()
        gc.collect()
        while True:
            t0 = clock()
            try:
                xb, yb = next(batches)
            except StopIteration:
                break
            t1 = clock()
            a = net.forward(xb, training=True)
            z = net.output_pre_activation()
            t2 = clock()
            loss.value(yb, z, a)
            t3 = clock()
            g = loss.output_gradient(yb, z, a, out_act)
            t4 = clock()
            net.backward(g)
            t5 = clock()
            opt.step(net.grad)
            t6 = clock()
            correct += int(np.count_nonzero(np.argmax(a, axis=1) == np.argmax(yb, axis=1)))
            t7 = clock()
            for p, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5,
                                      t7 - t6)):
                acc[p] += dt
        meter.__exit__(None, None, None)
        if meter.cpus is not None and meter.cpus > MAX_BUSY and attempts < repeats + MAX_DISCARDS:
            continue
        for p in phases:
            totals[p].append(acc[p])
    result = {p: median(v) for p, v in totals.items()}
    floor = gemm_only_epoch(X, batch, [X.shape[1], *HIDDEN, N_CLASSES])
    floor()
    floor_times = []
    while len(floor_times) < repeats:
        wait_quiet()
        with LoadMeter() as meter:
            seconds = timed(floor)[0]
        if meter.cpus is None or meter.cpus <= MAX_BUSY or len(floor_times) + attempts > 3 * repeats:
            floor_times.append(seconds)
        attempts += 1
    result["(of which matmuls, fwd+bwd)"] = median(floor_times)
    return result


# ---------------------------------------------------------------------------- report
def fmt_rate(value):
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def print_report(env, peak, torch_peak, training, xor, repeats):
    print()
    print(f"float32 GEMM peak (NumPy, {env['threads']} threads): " + ", ".join(
        f"{n}^3: {g:.1f} GFLOP/s" for n, g in peak["by_size"].items())
        + f"  -> peak {peak['gflops']:.1f} GFLOP/s (best of a measurement at start and end; "
        f"medians at start: " + ", ".join(f"{g:.0f}" for g in peak["start"].values())
        + ", end: " + ", ".join(f"{g:.0f}" for g in peak["end"].values()) + ")")
    if torch_peak is not None:
        print(f"float32 GEMM (torch.mm, {env['threads']} threads, best of start/end, for "
              f"reference): {torch_peak:.1f} GFLOP/s")
    samples = training[0]["samples"] if training else 0
    print()
    print(f"One epoch, {samples:,} samples, 784-256-128-10 ReLU/softmax, medians of "
          f"{repeats} alternating repeats (samples/s, higher is better)")
    header = (f"{'optimizer':<9} {'batch':>5} | {'engine':>9} {'torch':>9} {'sklearn':>9} | "
              f"{'eng/torch':>9} {'eng/sk':>7} | {'GFLOP/s':>7} {'%peak':>6}")
    print(header)
    print("-" * len(header))
    for r in training:
        s = r["samples_per_second"]
        print(f"{r['optimizer']:<9} {r['batch']:>5} | {fmt_rate(s.get('engine')):>9} "
              f"{fmt_rate(s.get('torch')):>9} {fmt_rate(s.get('sklearn')):>9} | "
              f"{fmt_ratio(r.get('engine_over_torch')):>9} "
              f"{fmt_ratio(r.get('engine_over_sklearn')):>7} | "
              f"{r['engine_gflops']:>7.1f} {100 * r['engine_peak_fraction']:>5.1f}%")
    print("  engine = ann.MLP.fit() wall time (input checks + set-up + shuffle/gather + epoch "
          "+ running train loss/accuracy);\n  torch = same work incl. model build and running "
          "loss/accuracy; FLOPs = 6 x params x samples.")

    print()
    print("Where the engine's time goes (median seconds per epoch)")
    header = (f"{'optimizer':<9} {'batch':>5} | {'fit()':>7} {'epoch':>7} {'bare':>7} "
              f"{'GEMMonly':>8} | {'torch':>7} {'t-bare':>7} {'bare e/t':>8} | "
              f"{'test acc e/t/sk':>17} {'busy':>5}")
    print(header)
    print("-" * len(header))
    for r in training:
        m = r["median_seconds"]

        def sec(v):
            return "-" if v is None else f"{v:.3f}"

        acc = "/".join(
            "-" if r.get(k) is None else f"{r[k]:.3f}"
            for k in ("engine_test_accuracy", "torch_test_accuracy", "sklearn_test_accuracy"))
        print(f"{r['optimizer']:<9} {r['batch']:>5} | {sec(m.get('engine')):>7} "
              f"{sec(r['engine_epoch_seconds_median']):>7} {sec(m.get('engine_bare')):>7} "
              f"{sec(r['gemm_only_seconds']):>8} | {sec(m.get('torch')):>7} "
              f"{sec(m.get('torch_bare')):>7} {fmt_ratio(r.get('bare_engine_over_torch')):>8} | "
              f"{acc:>17} {sec(r.get('other_processes_cpus'))[:5]:>5}")
    print("  fit() = wall time of fit; epoch = fit's own History.epoch_seconds (shuffle + "
          "batches + metrics);\n  bare = shuffle/gather + forward/backward/step only; GEMMonly = "
          "NumPy time for just the epoch's matmuls;\n  t-bare = torch without metrics or "
          "model construction;\n  busy = CPUs kept busy by OTHER processes during the kept "
          "repeats (0 = quiet machine).")

    print()
    if xor is not None:
        s = xor["steps_per_second"]
        line = (f"XOR 2-4-1 (tanh/sigmoid, BCE, SGD, batch 4), {xor['steps']} steps: engine fit "
                f"{fmt_rate(s['engine'])} steps/s (shuffle=True: {fmt_rate(s['engine_shuffle'])}, "
                f"bare step loop: {fmt_rate(s['engine_bare'])})")
        if "torch" in s:
            line += (f", torch {fmt_rate(s['torch'])} steps/s, ratio engine/torch "
                     f"{xor['engine_over_torch']:.2f}x")
        print(line)
        print(f"  learned XOR: {xor['learned_xor']}; other processes kept "
              f"{xor['other_processes_cpus']:.2f} CPUs busy meanwhile")

    print()
    verdicts = targets(training, xor)
    print("Targets: " + "; ".join(
        f"{v['target']}: {v['value']} -> {'PASS' if v['pass'] else 'FAIL'}" if v["pass"] is not None
        else f"{v['target']}: n/a" for v in verdicts))
    return verdicts


def targets(training, xor):
    def rows(batch=None):
        return [r for r in training if batch is None or r["batch"] == batch]

    verdicts = []

    def add(name, values, threshold, percent=False):
        values = [v for v in values if v is not None]
        if not values:
            verdicts.append({"target": name, "value": "n/a", "pass": None})
            return
        shown = "/".join(f"{100 * v:.0f}%" if percent else f"{v:.2f}x" for v in values)
        verdicts.append({"target": name, "value": shown,
                         "pass": all(v >= threshold for v in values), "values": values})

    add(">=1.25x torch @b128 (sgd/adam)", [r.get("engine_over_torch") for r in rows(128)],
        TARGETS["torch_b128"])
    add(">=1.15x torch @b1024 (sgd/adam)", [r.get("engine_over_torch") for r in rows(1024)],
        TARGETS["torch_b1024"])
    add(">=1.8x sklearn (sgd128/sgd1024/adam128/adam1024)",
        [r.get("engine_over_sklearn") for r in rows()], TARGETS["sklearn"])
    add(">=80% GEMM peak @b1024 (sgd/adam)", [r["engine_peak_fraction"] for r in rows(1024)],
        TARGETS["gemm_peak_b1024"], percent=True)
    add(">=10x torch steps/s on XOR",
        [xor.get("engine_over_torch") if xor else None], TARGETS["xor_steps"])
    return verdicts


# ---------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="alternating repeats per configuration (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 8,192 samples, 2 repeats, 300 XOR steps, small GEMMs")
    parser.add_argument("--samples", type=int, default=None, help="training samples (60,000)")
    parser.add_argument("--xor-steps", type=int, default=None, help="XOR epochs (2,000)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and torch (default: NumPy BLAS's current count)")
    parser.add_argument("--torch-impl", choices=("fused", "foreach", "forloop"), default="fused",
                        help="torch optimizer implementation (default fused, falling back)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-loop runners")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one engine fit (SGD, batch 128) and print top costs")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                        help="before each repeat wait up to this long for other processes to "
                             "leave the CPUs idle (default 30; 0 = never wait)")
    parser.add_argument("--max-busy", type=float, default=0.10, metavar="CPUS",
                        help="redo a repeat cycle if other processes kept more CPUs than this "
                             "busy during it (default 0.10)")
    parser.add_argument("--max-discards", type=int, default=15,
                        help="at most this many redone cycles per configuration (default 15)")
    parser.add_argument("--json", metavar="PATH", help="write all figures as JSON")
    args = parser.parse_args(argv)

    global torch, sklearn, WAIT_QUIET, MAX_BUSY, MAX_DISCARDS
    WAIT_QUIET, MAX_BUSY, MAX_DISCARDS = args.wait_quiet, args.max_busy, args.max_discards
    if args.no_torch:
        torch = None
    if args.no_sklearn:
        sklearn = None

    repeats = args.repeats or (2 if args.quick else 5)
    n = args.samples or (8192 if args.quick else 60_000)
    xor_steps = args.xor_steps or (300 if args.quick else 2000)

    threads = args.threads or blas_threads() or os.cpu_count() or 1
    limiter = None
    if threadpool_limits is not None:
        limiter = threadpool_limits(limits=threads, user_api="blas")
    if torch is not None:
        torch.set_num_threads(threads)

    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    env = environment(threads)
    print_environment(env)
    if torch is None:
        print("  NOTE: PyTorch not available (import failed or --no-torch): torch columns skipped."
              " Install with: pip install torch==2.13.0")
    if sklearn is None:
        print("  NOTE: scikit-learn not available: sklearn columns skipped.")
    if repeats < 5 and not args.quick:
        print(f"  NOTE: {repeats} repeats; the benchmark's protocol asks for at least 5.")
    sys.stdout.flush()

    log("  data ...")
    X, y, X_test, y_test = make_data(n, 10_000 if not args.quick else 2048)

    log("  GEMM peak ...")
    gemm_sizes = ((1024, 2048), (3, 3)) if args.quick else ((2048, 4096), (5, 3))
    wait_quiet()
    with LoadMeter() as gemm_load:
        by_size = gemm_peak(*gemm_sizes)
    torch_n = 2048 if args.quick else 4096
    torch_peak = torch_gemm(torch_n) if torch is not None else None
    log("  training benchmarks ...")
    training = bench_training(X, y, X_test, y_test, repeats, args.torch_impl,
                              not args.no_bare, max(by_size.values()), log)
    log("  XOR per-step benchmark ...")
    xor = bench_xor(xor_steps, repeats, log)

    # The peak is a property of the machine: measure it again at the end and keep the best
    # median per size, so one burst of foreign load at the start cannot lower it.
    log("  GEMM peak again ...")
    wait_quiet()
    with LoadMeter() as gemm_load_end:
        by_size_end = gemm_peak(*gemm_sizes)
    peak = {
        "by_size": {k: max(v, by_size_end[k]) for k, v in by_size.items()},
        "start": by_size, "end": by_size_end,
        "other_processes_cpus": [gemm_load.cpus, gemm_load_end.cpus],
    }
    peak["gflops"] = max(peak["by_size"].values())
    if torch is not None:
        torch_peak = max(torch_peak, torch_gemm(torch_n))
    for row in training:
        row["engine_peak_fraction"] = row["engine_gflops"] / peak["gflops"]

    verdicts = print_report(env, peak, torch_peak, training, xor, repeats)
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["other_processes_cpus_while_timing"] = LOAD.cpus
    n_discarded = sum(len(r["discarded_cycles"]) for r in training) + len(xor["discarded_cycles"])
    kept = [r["other_processes_cpus"] for r in training] + [xor["other_processes_cpus"]]
    kept = [k for k in kept if k is not None]
    if kept:
        worst = max(kept)
        print(f"other processes kept up to {worst:.2f} of {os.cpu_count()} CPUs busy during the "
              f"kept repeats; {n_discarded} repeat cycle(s) were redone because of foreign load"
              + ("  ** machine NOT quiet: figures are contaminated **" if worst > 0.2 else ""))
    if env.get("loadavg_end"):
        print("load average at end: " + " ".join(f"{x:.2f}" for x in env["loadavg_end"])
              + "  (a busy machine makes every figure noisier)")

    profile_text, breakdown = None, None
    if args.profile:
        print()
        print("Engine step, phase by phase (median seconds per epoch; timers add a little "
              "overhead; 'matmuls' = the same GEMMs timed alone):")
        breakdown = {}
        for optimizer in OPTIMIZERS:
            for batch in BATCHES:
                if batch <= n:
                    wait_quiet()
                    breakdown[f"{optimizer}/{batch}"] = phase_breakdown(X, y, batch, optimizer)
        names = list(next(iter(breakdown.values())))
        print(f"  {'phase':<28}" + "".join(f"{k:>11}" for k in breakdown))
        for name in names:
            print(f"  {name:<28}" + "".join(f"{v[name]:>11.3f}" for v in breakdown.values()))
        sums = {k: sum(val for p, val in v.items() if not p.startswith("(")) for k, v in breakdown.items()}
        print(f"  {'sum of phases':<28}" + "".join(f"{v:>11.3f}" for v in sums.values()))
        print()
        print("cProfile of one engine fit (SGD, batch 128), top functions by own time "
              "(np.matmul/ufunc time is charged to the calling function):")
        wait_quiet()
        profile_text = profile_engine(X, y)
        print(profile_text)
        print(f"cProfile of the XOR fit ({xor_steps} epochs of one step; profiling inflates "
              "every call, compare the shares):")
        xor_profile = profile_xor(xor_steps)
        print(xor_profile)
        profile_text += "\n" + xor_profile

    if args.json:
        payload = {
            "environment": env, "repeats": repeats, "samples": n, "lr": LR,
            "torch_optimizer_impl": args.torch_impl if torch is not None else None,
            "gemm_peak": peak, "torch_gemm_gflops": torch_peak,
            "training": training, "xor": xor, "targets": verdicts,
            "profile": profile_text, "phase_breakdown": breakdown,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwrote {args.json}")
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
