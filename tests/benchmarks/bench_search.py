#!/usr/bin/env python
"""Search benchmark: the champion ``ann-sweep`` finds against the stacks a user would pick.

A script, not a test (pytest does not collect ``tests/benchmarks``)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/benchmarks/bench_search.py
    python tests/benchmarks/bench_search.py --budget 30 --datasets digits spiral --seeds 0
    python tests/benchmarks/bench_search.py --overrides sweep.pruner.name=median   # another space / pruner
    python tests/benchmarks/bench_search.py --json search.json                     # the raw figures too
    python tests/benchmarks/bench_search.py --summarise a.json b.json              # runs made side by side, together

For every data set and seed, four contenders, each in a process of its own, one after the
other in an order that rotates from one (data set, seed) to the next, each under the same
wall-clock budget (``--budget`` seconds of search; the time to start the process and load
the data is reported beside it as ``wall``):

1. ``ann-sweep``: the real command (``python -m sweeps sweep``) with the default sweep
   (``conf/sweep/default.yaml`` since 2026-12-01; ``--overrides sweep=digits`` for the one
   before) or ``--overrides``, ``sweep.budget=<budget>``, ``sweep.n_trials`` out of reach, its own
   Optuna SQLite file in a temporary folder and ``tracking=off`` (``--tracking`` adds a
   temporary MLflow SQLite store: what a user's default sweep also pays for). Its champion's
   test score is the refitted champion's when the sweep refits it (``sweep.refit``), else the
   best trial's.
2. ``optuna-sklearn``: an Optuna loop (in-memory storage, Optuna's default) training
   scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` one ``partial_fit`` epoch at a time.
3. ``optuna-torch``: the same loop training a PyTorch MLP (CPU, ``torch.set_num_threads``
   set to ``--threads``, like NumPy's BLAS threads in the other contenders).
4. ``sklearn-default``: scikit-learn's MLP with its defaults, no search (the baseline).

Stacks 2 and 3 search the *same* space with the *same* sampler and pruner: each trial draws
its values from the sweep's own search space (``sweeps.space``, composed exactly as
``ann-sweep`` composes it), turns them into a training config (``sweeps.objective.trial_config``)
and trains what that config describes; the sampler and the pruner come from
``sweeps.study.make_sampler`` / ``make_pruner``; they report the sweep's metric after every
epoch, are pruned when the budget runs out (as ``sweep.budget`` does) and pick their
champion by the sweep's metric. The learning rate of every epoch comes from
``ann.schedules`` (the same formulas). What scikit-learn cannot express is mapped to the
nearest thing it has and said so: activations other than relu, tanh, sigmoid and linear
become relu; adamw and rmsprop become adam; ``l2`` and ``weight_decay`` become ``alpha``
(its L2 penalty, scaled to the same gradient); dropout and ``clip_norm`` are dropped.

Every contender sees the same split (``ann.data.split_dataset`` with ``training.seed``, so
the test set is identical) and standardised features (and regression targets), as the
engine standardises them. Scores: test accuracy (classification) or R² (regression) of the
champion, and its validation score; medians, minimums and maximums over the seeds.

The data sets: ``digits``, ``breast_cancer``, ``diabetes`` (bundled configs), ``noisy_spiral``
(``dataset=spiral`` with 3,000 points and angle noise 0.6: about 91 % at best; ``spiral``, the
bundled 600 points at noise 0.2, separable, only when asked for) and
``synthetic``: a CSV written to a temporary folder (``--csv-rows`` rows, 24 features of which
16 informative, some on scales of 100 and more, 8 pure noise; 6 classes from a random
tanh teacher network; 8 % of the labels replaced by a random class, so the best possible
accuracy is about 93 %), passed as ``dataset=csv dataset.path=... dataset.target=label``.

The seed ``s`` sets ``training.seed=s`` (split, initialisation, shuffling) and
``sweep.seed=s`` (sampler) for every contender.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = ("ann-sweep", "optuna-sklearn", "optuna-torch", "sklearn-default")
DATASETS = ("digits", "breast_cancer", "diabetes", "noisy_spiral", "synthetic", "spiral")
#: The data sets run unless ``--datasets`` says otherwise (``spiral``, at its bundled noise, is at the ceiling for all).
DEFAULT_DATASETS = DATASETS[:5]
#: ``noisy_spiral``: the bundled spiral with more points (a test set of 450) and angle noise 0.6, which
#: leaves a Bayes-optimal accuracy of about 91 % (0.2, the bundled noise: 99.998 %; Monte Carlo, 200,000 points).
NOISY_SPIRAL = ["dataset=spiral", "dataset.n_samples=3000", "dataset.noise=0.6"]
#: The study attribute where ann-sweep keeps its refitted champion's scores (sweeps.refit), if any.
REFIT_ATTR = "sweep.refit"


# ---------------------------------------------------------------------------- data


def write_synthetic(path: Path, rows: int, seed: int = 12345) -> dict:
    """A classification CSV with a known structure; returns its description."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_informative, n_noise, n_classes, flip = 16, 8, 6, 0.08
    informative = rng.standard_normal((rows, n_informative))
    hidden = np.tanh(informative @ rng.standard_normal((n_informative, 32)) / math.sqrt(n_informative) * 1.5
                     + 0.3 * rng.standard_normal(32))
    logits = hidden @ rng.standard_normal((32, n_classes))
    labels = logits.argmax(axis=1)
    flipped = rng.random(rows) < flip
    labels[flipped] = rng.integers(0, n_classes, flipped.sum())
    noise = rng.standard_normal((rows, n_noise))
    X = np.concatenate([informative, noise], axis=1)
    scales = np.where(np.arange(X.shape[1]) % 3 == 0, 100.0, 1.0) * rng.uniform(0.5, 5.0, X.shape[1])
    X = X * scales + rng.uniform(-50, 50, X.shape[1])
    order = rng.permutation(X.shape[1])  # informative and noise columns interleaved
    X = X[:, order]
    header = ",".join([*(f"x{i}" for i in range(X.shape[1])), "label"])
    with open(path, "w") as handle:
        handle.write(header + "\n")
        for row, label in zip(X, labels):
            handle.write(",".join(f"{v:.6g}" for v in row) + f",c{label}\n")
    return {"rows": rows, "features": X.shape[1], "informative": n_informative, "classes": n_classes,
            "label_noise": flip, "ceiling": 1 - flip + flip / n_classes}


def dataset_overrides(name: str, csv_path: Path | None) -> list[str]:
    if name == "synthetic":
        # A temporary file: no parsed copy of it left in the user's cache folder.
        return ["dataset=csv", f"dataset.path={csv_path}", "dataset.target=label", "dataset.cache_dir=null"]
    if name == "noisy_spiral":
        return list(NOISY_SPIRAL)
    return [f"dataset={name}"]


# ------------------------------------------------------------------- ann-sweep


def thread_env(threads: int) -> dict:
    """The environment of a contender's process: this checkout first, ``threads`` BLAS / OpenMP threads,
    and OpenMP threads that sleep rather than spin while they wait (PyTorch's spinning threads take
    the cores of a shared machine: 34 against 2.6 ms per step with 2 threads under load)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}



def run_ann_sweep(overrides: list[str], budget: float, tracking: bool, threads: int) -> dict:
    """``python -m sweeps sweep`` in a fresh folder; its champion's scores."""
    import optuna

    from sweeps.core.names import short_number

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        command = [sys.executable, "-m", "sweeps", "sweep", *overrides, f"sweep.budget={budget:g}s",
                   "sweep.n_trials=1000000", f"sweep.storage=sqlite:///{tmp}/optuna.db", "sweep.study_name=bench",
                   "sweep.plotlyjs=cdn"]
        command += [f"tracking.uri=sqlite:///{tmp}/mlflow.db"] if tracking else ["tracking=off"]
        env = thread_env(threads)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"ann-sweep exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/optuna.db")
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        if not complete:  # no trial finished within the budget: no champion
            return {"test": None, "val": None, "best_trial_test": None, "refit": False, "trials": len(trials),
                    "complete": 0, "pruned": sum(t.state.name == "PRUNED" for t in trials),
                    "epochs": sum(int(t.user_attrs.get("epochs_run") or 0) for t in trials),
                    "champion": None, "champion_epochs": None, "wall": wall, "printed": ""}
        best = study.best_trial
        metrics = best.user_attrs.get("metrics") or {}
        task = "regression" if "r2/test" in metrics else "classification"
        score = "r2" if task == "regression" else "accuracy"
        refit = study.user_attrs.get(REFIT_ATTR) or {}
        test = refit.get(f"{score}/test", metrics.get(f"{score}/test"))
        # Cross-validated: the folds' mean (sweeps.study.cv_folds); one split: the best epoch's.
        val = metrics.get(f"cv/{score}/val/mean", metrics.get(f"best/{score}/val"))
        summary = [line for line in done.stdout.splitlines() if "best" in line.lower()][:1]
        return {
            "test": test, "val": val, "best_trial_test": metrics.get(f"{score}/test"), "refit": bool(refit),
            "trials": len(trials), "complete": sum(t.state.name == "COMPLETE" for t in trials),
            "pruned": sum(t.state.name == "PRUNED" for t in trials),
            "epochs": sum(int(t.user_attrs.get("epochs_run") or 0) for t in trials),
            "champion": " ".join(f"{k}={short_number(v) if isinstance(v, float) else v}" for k, v in best.params.items()),
            "champion_epochs": best.user_attrs.get("epochs_run"), "wall": wall,
            "printed": summary[0].strip() if summary else "",
        }


# ----------------------------------------------------------- competitors (child)


def _standardised(data):
    import numpy as np

    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    std[std == 0] = 1.0
    X = [((part - mean) / std).astype(np.float32) for part in (data.X_train, data.X_val, data.X_test)]
    if data.task == "regression":
        y_mean, y_std = data.y_train.mean(), data.y_train.std() or 1.0
        y = [((part - y_mean) / y_std).astype(np.float32) for part in (data.y_train, data.y_val, data.y_test)]
    else:
        classes = np.unique(data.y_train)
        y = [np.searchsorted(classes, part).astype(np.int64) for part in (data.y_train, data.y_val, data.y_test)]
    return X, y


def _scores(task: str, y, outputs) -> dict:
    """``loss`` (the engine's loss of the task) and ``accuracy`` or ``r2``/``rmse``/``mae`` (standardised units)."""
    import numpy as np

    if task == "regression":
        pred = outputs.reshape(-1)
        err = pred - y
        mse = float(np.mean(err ** 2))
        total = float(np.sum((y - y.mean()) ** 2)) or 1.0
        return {"loss": mse, "r2": 1.0 - float(np.sum(err ** 2)) / total, "rmse": math.sqrt(mse),
                "mae": float(np.mean(np.abs(err)))}
    if task == "binary":
        p = np.clip(outputs.reshape(-1).astype(np.float64), 1e-7, 1 - 1e-7)
        loss = -float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return {"loss": loss, "accuracy": float(np.mean((p >= 0.5) == (y == 1)))}
    p = np.clip(outputs.astype(np.float64), 1e-7, 1.0)
    loss = -float(np.mean(np.log(p[np.arange(len(y)), y])))
    return {"loss": loss, "accuracy": float(np.mean(p.argmax(axis=1) == y))}


class SklearnTrainer:
    """scikit-learn's MLP trained one ``partial_fit`` epoch at a time, the epoch's rate set from the schedule."""

    ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "linear": "identity"}

    def __init__(self, kw: dict, task: str, X, y, n_classes: int | None) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.task, self.X, self.y = task, X, y
        self.adam = kw["optimizer"] in ("adam", "adamw", "rmsprop")
        options = dict(
            hidden_layer_sizes=tuple(kw["hidden_layers"]) or (1,),
            activation=self.ACTIVATIONS.get(kw["activation"], "relu"),
            solver="adam" if self.adam else "sgd",
            alpha=(kw.get("l2", 0.0) + kw.get("weight_decay", 0.0)) * kw["batch_size"],
            batch_size=kw["batch_size"], learning_rate_init=kw["lr"], random_state=kw.get("seed") or 0,
            momentum=kw.get("momentum", 0.9) if kw["optimizer"] in ("momentum", "nesterov") else 0.0,
            nesterovs_momentum=kw["optimizer"] == "nesterov",
            beta_1=kw.get("beta1", 0.9), beta_2=kw.get("beta2", 0.999), epsilon=kw.get("eps", 1e-8),
            shuffle=True,
        )
        self.model = MLPRegressor(**options) if task == "regression" else MLPClassifier(**options)
        self.classes = list(range(n_classes)) if n_classes else None

    def epoch(self, lr: float) -> None:
        optimizer = getattr(self.model, "_optimizer", None)
        if optimizer is None:
            self.model.set_params(learning_rate_init=lr)
        elif self.adam:
            optimizer.learning_rate_init = lr
        else:
            optimizer.learning_rate = lr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.task == "regression":
                self.model.partial_fit(self.X, self.y)
            else:
                self.model.partial_fit(self.X, self.y, classes=self.classes)

    def outputs(self, X):
        if self.task == "regression":
            return self.model.predict(X)
        proba = self.model.predict_proba(X)
        return proba[:, 1] if self.task == "binary" else proba


class TorchTrainer:
    """A PyTorch MLP with the engine's initialisation, optimizers, weight decay, clipping and dropout."""

    def __init__(self, kw: dict, task: str, X, y, n_classes: int | None) -> None:
        import torch
        from torch import nn

        self.torch, self.task = torch, task
        torch.manual_seed(kw.get("seed") or 0)
        self.generator = torch.Generator().manual_seed(kw.get("seed") or 0)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype("float32") if task != "multiclass" else y)
        if task != "multiclass":
            self.y = self.y.reshape(-1, 1)
        name = kw["activation"]
        activations = {
            "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity, "gelu": nn.GELU,
            "swish": nn.SiLU, "elu": lambda: nn.ELU(kw.get("elu_alpha", 1.0)),
            "leaky_relu": lambda: nn.LeakyReLU(kw.get("leaky_slope", 0.01)),
            "rrelu": lambda: nn.RReLU(kw.get("rrelu_lower", 1 / 8), kw.get("rrelu_upper", 1 / 3)),
        }
        if name not in activations:
            raise ValueError(f"activation {name} has no PyTorch module")
        init = kw.get("init", "auto")
        if init == "auto":
            init = "he" if name in ("relu", "leaky_relu", "rrelu", "elu", "gelu", "swish") else "xavier"
        widths = [X.shape[1], *kw["hidden_layers"], 1 if task != "multiclass" else n_classes]
        layers: list = []
        self.weights, self.biases = [], []
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            linear = nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                if init == "he":
                    nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / fan_in))
                elif init == "xavier":
                    nn.init.xavier_uniform_(linear.weight)
                else:
                    nn.init.normal_(linear.weight, 0.0, kw.get("init_scale", 0.01))
                linear.bias.zero_()
            layers.append(linear)
            self.weights.append(linear.weight)
            self.biases.append(linear.bias)
            if index < len(widths) - 2:
                layers.append(activations[name]())
                if kw.get("dropout"):
                    layers.append(nn.Dropout(kw["dropout"]))
        self.net = nn.Sequential(*layers)
        self.loss_fn = {"regression": nn.MSELoss(), "binary": nn.BCEWithLogitsLoss(),
                        "multiclass": nn.CrossEntropyLoss()}[task]
        opt, lr = kw["optimizer"], kw["lr"]
        self.l2, self.clip = kw.get("l2", 0.0), kw.get("clip_norm")
        self.decoupled = kw.get("weight_decay", 0.0) if opt in ("sgd", "momentum", "nesterov") else 0.0
        groups = [{"params": self.weights}, {"params": self.biases, "weight_decay": 0.0}]
        if opt == "adam":
            self.optimizer = torch.optim.Adam(groups, lr, betas=(kw.get("beta1", 0.9), kw.get("beta2", 0.999)), eps=kw.get("eps", 1e-8))
        elif opt == "adamw":
            groups[0]["weight_decay"] = kw.get("weight_decay", 0.0)
            self.optimizer = torch.optim.AdamW(groups, lr, betas=(kw.get("beta1", 0.9), kw.get("beta2", 0.999)), eps=kw.get("eps", 1e-8))
        elif opt == "rmsprop":
            self.optimizer = torch.optim.RMSprop(groups, lr, alpha=kw.get("rho", 0.9), eps=kw.get("eps", 1e-8))
        else:
            momentum = kw.get("momentum", 0.9) if opt in ("momentum", "nesterov") else 0.0
            self.optimizer = torch.optim.SGD(groups, lr, momentum=momentum, nesterov=opt == "nesterov")
        self.batch_size = kw["batch_size"]

    def epoch(self, lr: float) -> None:
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        order = torch.randperm(len(self.X), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.net(self.X[rows]), self.y[rows])
            loss.backward()
            if self.l2:
                for w in self.weights:
                    w.grad.add_(w.detach(), alpha=self.l2)
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
            if self.decoupled:
                with torch.no_grad():
                    for w in self.weights:
                        w.mul_(1.0 - lr * self.decoupled)
            self.optimizer.step()

    def outputs(self, X):
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            out = self.net(torch.from_numpy(X))
            if self.task == "binary":
                out = torch.sigmoid(out)
            elif self.task == "multiclass":
                out = torch.softmax(out, dim=1)
        return out.numpy()


def run_child(contender: str, overrides: list[str], budget: float, threads: int) -> dict:
    """One competitor in this process: the same space, sampler, pruner, split and budget as ann-sweep."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    import numpy as np
    import optuna

    from ann import params as P
    from ann.schedules import make_schedule
    from sweeps.study import optuna_study as S
    from sweeps.config.run_spec import build_run_spec
    from sweeps.core.names import describe_config
    from sweeps.study.objective import trial_config
    from sweeps.study.runner import compose, prepare
    from sweeps.training.run import prepare_data

    if contender == "optuna-torch":
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    prepared = prepare(compose([*overrides, "tracking=off"]))
    data = prepare_data(prepared.spec)
    task = data.task
    (X_train, X_val, X_test), (y_train, y_val, y_test) = _standardised(data)
    n_classes = data.dataset.n_classes if task != "regression" else None
    score_name = "r2" if task == "regression" else "accuracy"

    if contender == "sklearn-default":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        model = (MLPRegressor if task == "regression" else MLPClassifier)(random_state=prepared.spec.split_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_train, y_train)
        def out(X):
            if task == "regression":
                return model.predict(X)
            proba = model.predict_proba(X)
            return proba[:, 1] if task == "binary" else proba
        return {"test": _scores(task, y_test, out(X_test))[score_name], "val": _scores(task, y_val, out(X_val))[score_name],
                "trials": 1, "complete": 1, "pruned": 0, "epochs": int(model.n_iter_),
                "champion": f"{model.activation} 1x100 adam lr=1e-3 bs=200 ({model.n_iter_} epochs)",
                "wall": time.perf_counter() - started}

    settings, space, base = prepared.settings, prepared.space, prepared.base
    metric = settings.metric.split("/")[0]      # loss/val -> loss
    trainer_class = SklearnTrainer if contender == "optuna-sklearn" else TorchTrainer
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=settings.directions[0], sampler=S.make_sampler(settings, space, worker=0),
                                pruner=S.make_pruner(settings, prepared.epochs))
    for values in prepared.enqueued:
        study.enqueue_trial(values)
    base_layers = tuple(base["model"].get("hidden_layers") or ())
    searched = list(space.dimensions)
    search_started = time.time()
    deadline = search_started + budget

    def objective(trial):
        values = space.suggest(trial, base_layers, base)
        cfg, _ = trial_config(base, space, values)
        kw = build_run_spec(cfg).model_kwargs
        trial.set_user_attr("name", describe_config(cfg, searched))
        schedule = make_schedule(kw.get("lr_schedule", "constant"), kw["lr"], kw["epochs"],
                                 **{n: kw[n] for n in P.SCHEDULE_SETTINGS[kw.get("lr_schedule", "constant")] if n in kw})
        trainer = trainer_class(kw, task, X_train, y_train, n_classes)
        val = {}
        for epoch in range(1, kw["epochs"] + 1):
            trainer.epoch(schedule.lr_at(epoch))
            val = _scores(task, y_val, trainer.outputs(X_val))
            trial.set_user_attr("epochs_run", epoch)
            if not all(math.isfinite(v) for v in val.values()):
                raise optuna.TrialPruned("non-finite")
            schedule.observe(val["loss"])
            trial.report(val[metric], epoch)
            if trial.should_prune() or time.time() >= deadline:
                raise optuna.TrialPruned()
        trial.set_user_attr("val", val[score_name])
        trial.set_user_attr("test", _scores(task, y_test, trainer.outputs(X_test))[score_name])
        return val[metric]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, timeout=budget, catch=(ValueError, FloatingPointError, RuntimeError))
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    return {
        "test": best.user_attrs["test"] if best else None, "val": best.user_attrs["val"] if best else None,
        "trials": len(trials), "complete": len(complete), "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "epochs": sum(int(t.user_attrs.get("epochs_run") or 0) for t in trials),
        "champion": best.user_attrs["name"] if best else None,
        "champion_epochs": best.user_attrs.get("epochs_run") if best else None,
        "search_seconds": time.time() - search_started, "wall": time.perf_counter() - started,
    }


def run_contender(contender: str, overrides: list[str], budget: float, threads: int, tracking: bool) -> dict:
    if contender == "ann-sweep":
        return run_ann_sweep(overrides, budget, tracking, threads)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--child", contender, "--budget", str(budget), "--threads", str(threads),
                   "--out", str(out), "--child-overrides", json.dumps(overrides)]
        env = thread_env(threads)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{contender} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
        result["wall"] = wall
        return result


# ---------------------------------------------------------------------- report


def _pct(value, task: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if task == "regression" else f"{100 * value:.2f}"


def summarise(results: list[dict], datasets: list[str], contenders: list[str]) -> tuple[list[str], dict]:
    lines = ["| data set | contender | test median [min, max] | val median | trials (pruned) | epochs | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    medians: dict = {}
    for name in datasets:
        for contender in contenders:
            runs = [r for r in results if r["dataset"] == name and r["contender"] == contender]
            if not runs:
                continue
            task = runs[0]["task"]
            tests = [r["test"] for r in runs if r.get("test") is not None]
            vals = [r["val"] for r in runs if r.get("val") is not None]
            median = statistics.median(tests) if tests else None
            medians[(name, contender)] = median
            spread = f" [{_pct(min(tests), task)}, {_pct(max(tests), task)}]" if len(tests) > 1 else ""
            lines.append(
                f"| {name} | {contender} | {_pct(median, task)}{spread} | "
                f"{_pct(statistics.median(vals), task) if vals else '-'} | "
                f"{statistics.median(r['trials'] for r in runs):g} ({statistics.median(r['pruned'] for r in runs):g}) | "
                f"{statistics.median(r['epochs'] for r in runs):g} | {statistics.median(r['wall'] for r in runs):.0f} |")
    return lines, medians


def paired(results: list[dict], datasets: list[str], rival: str) -> list[str]:
    """Seed by seed, ``ann-sweep``'s test score against ``rival``'s on the same split: wins, ties,
    losses and the mean difference (accuracy points or R²), per data set."""
    lines = []
    for name in datasets:
        score = {(r["contender"], r["seed"]): r.get("test") for r in results if r["dataset"] == name}
        diffs = [score[("ann-sweep", seed)] - score[(rival, seed)] for contender, seed in score
                 if contender == "ann-sweep" and score.get((rival, seed)) is not None and score[(contender, seed)] is not None]
        if diffs:
            scale = 1 if name == "diabetes" else 100
            lines.append(f"  {name}: {sum(d > 0 for d in diffs)} wins, {sum(d == 0 for d in diffs)} ties, "
                         f"{sum(d < 0 for d in diffs)} losses over {len(diffs)} seeds; mean difference "
                         f"{scale * statistics.fmean(diffs):+.3g}")
    return lines


def report(results: list[dict], datasets: list[str], contenders: list[str]) -> None:
    """The summary table, then ann-sweep against each rival: by median and seed by seed."""
    lines, medians = summarise(results, datasets, contenders)
    print()
    print("\n".join(lines))
    if "ann-sweep" not in contenders:
        return
    for rival in ("optuna-sklearn", "optuna-torch", "sklearn-default"):
        if rival not in contenders:
            continue
        pairs = [(medians.get((n, "ann-sweep")), medians.get((n, rival))) for n in datasets]
        wins = sum(a is not None and b is not None and a > b for a, b in pairs)
        ties = sum(a is not None and b is not None and a == b for a, b in pairs)
        print(f"ann-sweep beats {rival} on {wins} of {len(pairs)} data sets (median test score; ties {ties})")
        print("\n".join(paired(results, datasets, rival)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of search per contender (default 60)")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--overrides", nargs="*", default=[], help="ann-sweep overrides for every contender (the space, the pruner, ...)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / torch threads of every contender (default 1: on a shared machine more threads "
                             "than free cores slow every contender several times)")
    parser.add_argument("--csv-rows", type=int, default=10000, help="rows of the synthetic CSV (default 10000)")
    parser.add_argument("--tracking", action="store_true", help="ann-sweep tracks to a temporary MLflow SQLite store")
    parser.add_argument("--json", help="also write every result to this file")
    parser.add_argument("--summarise", nargs="+", metavar="JSON",
                        help="no run: the summary of the results in these --json files together")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--child-overrides", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.summarise:
        results = [r for file in args.summarise for r in json.loads(Path(file).read_text())["results"]]
        report(results, [n for n in args.datasets if any(r["dataset"] == n for r in results)],
               [c for c in args.contenders if any(r["contender"] == c for r in results)])
        return
    if args.child:
        result = run_child(args.child, json.loads(args.child_overrides), args.budget, args.threads)
        Path(args.out).write_text(json.dumps(result))
        return

    import numpy  # noqa: F401 - the versions line
    import sklearn

    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
        if "optuna-torch" in args.contenders:
            parser.error("optuna-torch needs PyTorch: pip install -e '.[bench]'")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# bench_search  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  commit {commit}  "
          f"{platform.processor() or platform.machine()}  {os.cpu_count()} cores  threads {args.threads}")
    print(f"# budget {args.budget:g} s per contender  seeds {args.seeds}  ann-sweep tracking "
          f"{'MLflow SQLite' if args.tracking else 'off'}  overrides {args.overrides or 'none'}")
    print(f"# numpy {numpy.__version__}  scikit-learn {sklearn.__version__}  torch {torch_version}", flush=True)

    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-search-data-") as tmp:
        csv_path = Path(tmp) / "synthetic.csv"
        if "synthetic" in args.datasets:
            info = write_synthetic(csv_path, args.csv_rows)
            print(f"# synthetic: {info}", flush=True)
        turn = 0
        for name in args.datasets:
            for seed in args.seeds:
                overrides = [*dataset_overrides(name, csv_path), f"training.seed={seed}", f"sweep.seed={seed}",
                             *args.overrides]
                order = args.contenders[turn % len(args.contenders):] + args.contenders[:turn % len(args.contenders)]
                turn += 1
                for contender in order:
                    try:
                        result = run_contender(contender, overrides, args.budget, args.threads, args.tracking)
                    except RuntimeError as error:
                        print(f"{name} seed {seed} {contender}: FAILED {error}", flush=True)
                        continue
                    task = "regression" if name == "diabetes" else "classification"
                    result.update(dataset=name, seed=seed, contender=contender, task=task)
                    results.append(result)
                    print(f"{name:14s} seed {seed} {contender:16s} test {_pct(result['test'], task):>7s} "
                          f"val {_pct(result['val'], task):>7s}  trials {result['trials']:4d} "
                          f"(pruned {result['pruned']:4d})  epochs {result['epochs']:6d}  wall {result['wall']:5.0f} s  "
                          f"{result.get('champion')}", flush=True)
    report(results, args.datasets, args.contenders)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "commit": commit, "results": results}, indent=1))


if __name__ == "__main__":
    main()
