"""A labelled corpus of real training runs of known cause, for the fit diagnosis.

Every run is an ``ann-train`` config (Hydra overrides) built *by construction* to end one way:

* ``good``: a sane network with early stopping;
* ``overfit``: a big network on small (noisy) data, trained long, no regularisation;
* ``underfit``: too little capacity (a linear model on a non-linear problem) or too little
  learning (a tiny learning rate for a few epochs);
* ``too_high`` (``unstable`` or ``diverged``): a learning rate far too high.

The corpus covers every bundled data set and all three tasks. Its verdicts are checked by
``test_train_fit_corpus.py``; ``python tests/train/fit_corpus.py`` prints the table.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: What a construction may be labelled: a learning rate far too high is unstable or diverged.
ACCEPTED = {
    "good": {"good"},
    "overfit": {"overfit"},
    "underfit": {"underfit"},
    "too_high": {"unstable", "diverged"},
}

GOOD = ["training.early_stopping=true", "training.patience=20", "training.epochs=300"]
BIG = ["model.hidden_layers=[256,256]", "optimizer=adam", "optimizer.lr=0.003", "training.l2=0.0",
       "model.dropout=0.0"]
LITTLE_LEARNING = ["optimizer=sgd", "optimizer.lr=0.0001", "training.epochs=8"]


@dataclass(frozen=True)
class Case:
    name: str
    cause: str  # a key of ACCEPTED
    overrides: tuple[str, ...]


def _cases() -> list[Case]:
    c: list[tuple[str, str, list[str]]] = [
        # ------------------------------------------------------------- moons (binary)
        ("moons-good-1x32", "good", ["dataset=moons", "dataset.n_samples=1000", "model.hidden_layers=[32]",
                                     "optimizer.lr=0.003", *GOOD]),
        ("moons-good-tanh-2x16", "good", ["dataset=moons", "model.hidden_layers=[16,16]", "model.activation=tanh",
                                          "optimizer.lr=0.01", *GOOD]),
        ("moons-good-early-stop", "good", ["dataset=moons", "dataset.n_samples=2000", "optimizer.lr=0.01",
                                           "training.epochs=80", "training.early_stopping=true"]),
        ("moons-overfit", "overfit", ["dataset=moons", "dataset.n_samples=100", "dataset.noise=0.35", *BIG,
                                      "training.epochs=500"]),
        ("moons-underfit-lr", "underfit", ["dataset=moons", *LITTLE_LEARNING]),
        ("moons-sgd-lr30", "too_high", ["dataset=moons", "optimizer=sgd", "optimizer.lr=30", "training.epochs=50"]),
        ("moons-adam-lr1", "too_high", ["dataset=moons", "model.hidden_layers=[64,64]", "optimizer.lr=1.0",
                                        "training.epochs=50"]),
        # ----------------------------------------------------------- circles (binary)
        ("circles-good", "good", ["dataset=circles", "dataset.n_samples=800", "optimizer.lr=0.003", *GOOD]),
        ("circles-overfit", "overfit", ["dataset=circles", "dataset.n_samples=100", "dataset.noise=0.25",
                                        "dataset.factor=0.7", *BIG, "training.epochs=500"]),
        ("circles-underfit-linear", "underfit", ["dataset=circles", "model=linear", "optimizer.lr=0.01",
                                                 "training.epochs=100"]),
        ("circles-underfit-lr", "underfit", ["dataset=circles", *LITTLE_LEARNING]),
        ("circles-momentum-lr20", "too_high", ["dataset=circles", "optimizer=momentum", "optimizer.lr=20",
                                               "training.epochs=50"]),
        # --------------------------------------------------------------- xor (binary)
        ("xor-good", "good", ["dataset=xor", "dataset.n_samples=400", "model.hidden_layers=[16]",
                              "optimizer.lr=0.01", *GOOD]),
        ("xor-overfit", "overfit", ["dataset=xor", "dataset.n_samples=80", "dataset.noise=0.5", *BIG,
                                    "training.epochs=600"]),
        ("xor-underfit-linear", "underfit", ["dataset=xor", "dataset.n_samples=400", "model=linear",
                                             "optimizer.lr=0.01", "training.epochs=100"]),
        ("xor-adam-lr2", "too_high", ["dataset=xor", "dataset.n_samples=400", "model.hidden_layers=[64,64]",
                                      "optimizer.lr=2.0", "training.epochs=60"]),
        # ---------------------------------------------------------- spiral (multiclass)
        ("spiral-good", "good", ["dataset=spiral", "model.hidden_layers=[64,64]", "optimizer.lr=0.003", *GOOD]),
        ("spiral-overfit", "overfit", ["dataset=spiral", "dataset.n_samples=150", "dataset.noise=0.4", *BIG,
                                       "training.epochs=500"]),
        ("spiral-underfit-linear", "underfit", ["dataset=spiral", "model=linear", "optimizer.lr=0.01",
                                                "training.epochs=100"]),
        ("spiral-underfit-lr", "underfit", ["dataset=spiral", *LITTLE_LEARNING]),
        ("spiral-sgd-lr20", "too_high", ["dataset=spiral", "model.hidden_layers=[64]", "optimizer=sgd",
                                         "optimizer.lr=20", "training.epochs=60"]),
        # ---------------------------------------------------------- digits (multiclass)
        ("digits-good", "good", ["dataset=digits", "model.hidden_layers=[64]", "optimizer.lr=0.001", *GOOD]),
        ("digits-good-sgd", "good", ["dataset=digits", "model.hidden_layers=[128]", "optimizer=momentum",
                                     "optimizer.lr=0.01", *GOOD]),
        ("digits-overfit", "overfit", ["dataset=digits", "training.val_size=0.4", "training.test_size=0.4",
                                       "model.hidden_layers=[512,512]", "optimizer=adam", "optimizer.lr=0.003",
                                       "training.epochs=300"]),
        ("digits-underfit-lr", "underfit", ["dataset=digits", *LITTLE_LEARNING]),
        ("digits-adam-lr0.3", "too_high", ["dataset=digits", "model.hidden_layers=[128]", "optimizer.lr=0.3",
                                           "training.epochs=30"]),
        ("digits-sgd-lr20", "too_high", ["dataset=digits", "optimizer=sgd", "optimizer.lr=20",
                                         "training.epochs=30"]),
        # ---------------------------------------------------- breast cancer (binary)
        ("cancer-good", "good", ["dataset=breast_cancer", "model.hidden_layers=[16]", "optimizer.lr=0.001", *GOOD]),
        ("cancer-good-long", "good", ["dataset=breast_cancer", "model.hidden_layers=[8]", "optimizer.lr=0.0003",
                                      "training.epochs=150"]),
        ("cancer-overfit", "overfit", ["dataset=breast_cancer", "training.val_size=0.45", "training.test_size=0.45",
                                       *BIG, "training.epochs=500"]),
        ("cancer-underfit-lr", "underfit", ["dataset=breast_cancer", *LITTLE_LEARNING]),
        ("cancer-adam-lr1", "too_high", ["dataset=breast_cancer", "model.hidden_layers=[64,64]",
                                         "optimizer.lr=1.0", "training.epochs=60"]),
        # -------------------------------------------------------- diabetes (regression)
        ("diabetes-good", "good", ["dataset=diabetes", "model.hidden_layers=[16]", "optimizer.lr=0.003", *GOOD]),
        ("diabetes-overfit", "overfit", ["dataset=diabetes", "training.val_size=0.4", "training.test_size=0.4",
                                         *BIG, "training.epochs=800"]),
        ("diabetes-underfit-lr", "underfit", ["dataset=diabetes", *LITTLE_LEARNING]),
        ("diabetes-sgd-lr1", "too_high", ["dataset=diabetes", "model.hidden_layers=[64]", "optimizer=sgd",
                                          "optimizer.lr=1.0", "training.epochs=40"]),
        # ----------------------------------------------------- regression (regression)
        ("regression-good", "good", ["dataset=regression", "dataset.n_samples=800", "model.hidden_layers=[32]",
                                     "model.activation=tanh", "optimizer.lr=0.003", *GOOD]),
        ("regression-overfit", "overfit", ["dataset=regression", "dataset.n_samples=60", "dataset.noise=0.5",
                                           *BIG, "training.epochs=1000"]),
        ("regression-underfit-linear", "underfit", ["dataset=regression", "model=linear", "optimizer.lr=0.01",
                                                    "training.epochs=100"]),
        ("regression-underfit-lr", "underfit", ["dataset=regression", *LITTLE_LEARNING]),
        ("regression-sgd-lr2", "too_high", ["dataset=regression", "model.hidden_layers=[64]", "optimizer=sgd",
                                            "optimizer.lr=2.0", "training.epochs=40"]),
        ("regression-adam-lr1", "too_high", ["dataset=regression", "model.hidden_layers=[64,64]",
                                             "optimizer.lr=1.0", "training.epochs=60"]),
        # ----------- a second set, built the same way with other nets, optimizers and seeds
        ("moons-good-momentum", "good", ["dataset=moons", "dataset.seed=3", "training.seed=3", "optimizer=momentum",
                                         "optimizer.lr=0.05", *GOOD]),
        ("circles-good-elu", "good", ["dataset=circles", "dataset.seed=1", "training.seed=1",
                                      "model.hidden_layers=[32,32]", "model.activation=elu", "optimizer.lr=0.003", *GOOD]),
        ("spiral-good-5arms", "good", ["dataset=spiral", "dataset.n_classes=5", "dataset.n_samples=1000",
                                       "model.hidden_layers=[128,128]", "optimizer.lr=0.003", *GOOD]),
        ("digits-good-tanh", "good", ["dataset=digits", "training.seed=2", "model.hidden_layers=[64]",
                                      "model.activation=tanh", "training.batch_size=64", *GOOD]),
        ("cancer-good-momentum", "good", ["dataset=breast_cancer", "training.seed=4", "model.hidden_layers=[32]",
                                          "optimizer=momentum", "optimizer.lr=0.01", *GOOD]),
        ("regression-good-3d", "good", ["dataset=regression", "dataset.n_features=3", "dataset.n_samples=1000",
                                        "model.hidden_layers=[64]", "model.activation=tanh", *GOOD]),
        ("moons-overfit-momentum", "overfit", ["dataset=moons", "dataset.n_samples=80", "dataset.noise=0.4",
                                               "dataset.seed=5", "model.hidden_layers=[256,256]",
                                               "optimizer=momentum", "optimizer.lr=0.05", "training.epochs=800"]),
        ("spiral-overfit-5arms", "overfit", ["dataset=spiral", "dataset.n_classes=5", "dataset.n_samples=200",
                                             "dataset.noise=0.5", "model.hidden_layers=[512,512]", "optimizer=adam",
                                             "optimizer.lr=0.002", "training.epochs=400"]),
        ("cancer-overfit-tanh", "overfit", ["dataset=breast_cancer", "training.seed=6", "training.val_size=0.45",
                                            "training.test_size=0.45", *BIG, "model.activation=tanh",
                                            "training.epochs=500"]),
        ("regression-overfit-3d", "overfit", ["dataset=regression", "dataset.n_features=3", "dataset.n_samples=80",
                                              "dataset.noise=0.5", *BIG, "training.epochs=800"]),
        ("digits-underfit-2units", "underfit", ["dataset=digits", "model.hidden_layers=[2]", "optimizer.lr=0.003",
                                                "training.epochs=100"]),
        ("spiral-underfit-2units", "underfit", ["dataset=spiral", "dataset.seed=7", "model.hidden_layers=[2]",
                                                "optimizer.lr=0.01", "training.epochs=100"]),
        ("moons-underfit-sigmoid-lr", "underfit", ["dataset=moons", "dataset.seed=8", "model.activation=sigmoid",
                                                   "optimizer=sgd", "optimizer.lr=0.001", "training.epochs=5",
                                                   "training.batch_size=128"]),
        ("diabetes-underfit-lr-bs128", "underfit", ["dataset=diabetes", "training.seed=9", "optimizer=sgd",
                                              "optimizer.lr=0.001", "training.epochs=3", "training.batch_size=128"]),
        # (plain SGD at lr=1 on digits and lr=5 on circles trained well -- 97.8 % and 98.7 % validation
        # accuracy --, so these constructions use momentum and Adam instead.)
        ("digits-momentum-lr3", "too_high", ["dataset=digits", "model.hidden_layers=[64]", "optimizer=momentum",
                                             "optimizer.lr=3.0", "training.epochs=40"]),
        ("moons-momentum-lr2", "too_high", ["dataset=moons", "dataset.seed=10", "optimizer=momentum",
                                            "optimizer.lr=2.0", "training.epochs=60"]),
        ("spiral-adam-lr0.2", "too_high", ["dataset=spiral", "model.hidden_layers=[64,64]", "optimizer.lr=0.2",
                                           "training.epochs=60"]),
        ("circles-adam-lr0.5", "too_high", ["dataset=circles", "dataset.seed=11", "model.hidden_layers=[64]",
                                            "optimizer.lr=0.5", "training.epochs=60"]),
    ]
    return [Case(name, cause, tuple(overrides)) for name, cause, overrides in c]


CASES = _cases()


def run_case(case: Case) -> dict:
    """Train the case untracked; the result of :func:`sweeps.training.run.train`."""
    from sweeps.config.compose import compose
    from sweeps.training.run import train

    return train(compose([*case.overrides, "tracking=off"]), overrides=list(case.overrides))


def main() -> int:
    rows, misses = [], 0
    for case in CASES:
        started = time.perf_counter()
        result = run_case(case)
        ok = result["fit"] in ACCEPTED[case.cause]
        misses += not ok
        rows.append((case.name, case.cause, result["fit"], result.get("fit_hint", ""), "" if ok else "MISS",
                     f"{time.perf_counter() - started:.1f}s", result["fit_reason"]))
        print(" | ".join(str(v) for v in rows[-1]), flush=True)
        if "-v" in sys.argv:
            print("    " + " ".join(f"{k[4:]}={v:.3g}" for k, v in result.items() if k.startswith("fit/")))
    print(f"{len(CASES) - misses}/{len(CASES)} agree")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
