"""The sweep-wide fit view: label counts, the representatives, the fit map, the overlay, the views.

The unit tests use hand-made leaderboards; the slow test runs a real ``ann-sweep`` (SQLite)
whose space is wide enough for several labels -- learning rates from far too small to far
too large, networks from 2 to 256 units on 120 noisy points -- and reads what it logged.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.study import fit_view
from sweeps.tracking import ui_views
from sweeps.cli.leaderboard import leaderboard_table

WIDE = [
    "sweep=quick", "sweep.study_name=fit-view", "dataset=moons", "dataset.n_samples=120", "dataset.noise=0.35",
    "training.epochs=60", "sweep.n_trials=16", "sweep.sampler.name=random", "sweep.pruner.name=none", "sweep.seed=0",
    "sweep.params.units={low:2,high:256,log:true}", "sweep.params.lr={low:1.0e-4,high:3.0,log:true}",
    "sweep.params.batch_size={choices:[16,32]}", "sweep.plotlyjs=cdn",
]


def board_of(*rows) -> pd.DataFrame:
    """A leaderboard, best first: ``(fit, run_id)`` per trial."""
    return pd.DataFrame({
        "rank": range(1, len(rows) + 1), "trial": range(len(rows)), "state": ["COMPLETE"] * len(rows),
        "loss/val": [0.1 * (i + 1) for i in range(len(rows))], "epochs": [10] * len(rows),
        "fit": [fit for fit, _ in rows], "fit_hint": [None] * len(rows), "run_id": [run for _, run in rows],
        "reason": [None] * len(rows),
    })


def test_label_counts_follow_the_label_order_and_leave_out_unlabelled_trials():
    board = board_of(("overfit", "a"), ("good", "b"), (None, "c"), ("pruned", "d"), ("good", "e"))
    assert fit_view.label_counts(board) == {"good": 2, "overfit": 1, "pruned": 1}
    assert fit_view.counts_line(fit_view.label_counts(board)) == "2 good, 1 overfit"
    assert fit_view.label_counts(None) == {}


def test_representatives_are_the_best_of_each_label_then_the_best_few():
    board = board_of(("good", "r0"), ("good", "r1"), ("good", "r2"), ("good", "r3"), ("good", "r4"),
                     ("overfit", "r5"), ("unstable", "r6"), ("overfit", "r7"), ("pruned", "r8"), ("diverged", None))
    rows = fit_view.representatives(board, k=8)
    # best good (0), best overfit (5), best unstable (6); then the best few overall (1, 2, 3);
    # a pruned trial and a trial without a run are never chosen.
    assert rows == [0, 1, 2, 3, 5, 6]
    # k caps the filling, never the best of a label.
    assert fit_view.representatives(board, k=2) == [0, 5, 6]


def test_the_leaderboard_fits_100_columns_with_the_label_and_a_hint_marker():
    board = board_of(("good", "0123456789abcdef"), ("overfit", "fedcba9876543210"))
    board["n_layers"] = [2, 1]
    board["units_l1"] = [128, 64]
    board["units_l2"] = [32, None]
    board["activation"] = ["relu", "tanh"]
    board["lr"] = [0.00123, 0.3]
    board["batch_size"] = [32, 64]
    board["fit_hint"] = ["train longer", None]
    text = leaderboard_table(board, ["loss/val"], width=100)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0].split() == ["rank", "trial", "state", "loss/val", "units", "activation", "lr", "batch_size",
                                "epochs", "fit", "run_id"]
    assert "128-32" in lines[2] and "good*" in lines[2] and "overfit" in lines[3]
    assert lines[-1] == "* still improving when it stopped: train longer"
    narrow = leaderboard_table(board, ["loss/val"], width=85).splitlines()  # run_id, then epochs, give way
    assert "run_id" not in narrow[0] and "epochs" not in narrow[0] and max(map(len, narrow)) <= 85


def test_the_default_spaces_leaderboard_fits_100_columns_with_short_headers():
    """Nine searched settings (the default space's) and the validation accuracy: after run_id and
    epochs, settings searched by config path get their last part as header, then settings the
    same in every row shown leave the table for a last line, then the headers are abbreviated,
    then rank leaves."""
    board = board_of(("good", "0123456789abcdef"), ("pruned", "fedcba9876543210"), ("good", "00ff00ff00ff00ff"))
    board["state"] = ["COMPLETE", "PRUNED", "COMPLETE"]
    board["n_layers"], board["units_l1"] = [1, 2, 1], [263, 612, 1024]
    board["units_l2"] = [None, 381, None]
    board["activation"] = ["relu", "relu", "gelu"]
    board["lr"] = [0.00237, 0.00079, 0.0123]
    board["batch_size"] = [64, 32, 256]
    board["optimizer"] = ["adamw", "adamw", "adamw"]
    board["dropout"] = [0.0904, 0.01582, 0.3296]
    board["training.schedule.name"] = ["cosine", "one_cycle", "constant"]
    board["optimizer.weight_decay"] = [1e-6, 7.1e-6, 5.2e-4]
    board["accuracy/val"] = [0.9712, None, 0.9655]  # a pruned trial records none
    wide = leaderboard_table(board, ["loss/val"], width=200).splitlines()
    assert "training.schedule.name" in wide[0].split() and "run_id" in wide[0].split()
    lines = leaderboard_table(board, ["loss/val"], width=100).splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    assert lines[0].split() == ["trial", "state", "loss/val", "acc", "units", "act", "lr", "batch",
                                "drop", "sched", "wd", "fit"]  # rank gave way last: the rows are in rank order
    assert lines[2].split()[2:4] == ["0.1", "0.9712"] and lines[3].split()[2:4] == ["0.2", "612-381"]
    assert "612-381" in lines[3] and "one_cycle" in lines[3] and "7.1e-6" in lines[3]
    assert lines[-1] == "the same in every row shown: optimizer adamw"
    middle = leaderboard_table(board, ["loss/val"], width=130).splitlines()  # short paths are enough
    assert max(map(len, middle)) <= 130 and "schedule" in middle[0].split() and "batch_size" in middle[0].split()


@pytest.mark.slow
def test_a_wide_sweep_shows_its_labels_in_the_terminal_the_parent_and_the_views(tmp_path):
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-m", "sweeps.cli.sweep", *WIDE, f"sweep.storage=sqlite:///{tmp_path}/optuna.db",
                           f"tracking.uri={tracking_uri}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("fit-view")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parent = next(r for r in runs if r.data.tags.get("sweep.role") == "parent")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    labels = {r.info.run_id: r.data.tags.get("fit", "pruned") for r in trials}
    counts = {label: list(labels.values()).count(label) for label in set(labels.values())}
    assert len(set(counts) - {"pruned"}) >= 3, counts

    # The terminal: a summary line counting labels; every line but one with a URI (a link, the
    # storage) or a command fits 100 columns.
    out = done.stdout
    assert f"fit: {fit_view.counts_line({k: counts[k] for k in V.LABEL_ORDER if k in counts})}" in out
    assert "reason" not in out.split("rank", 1)[1].splitlines()[0]
    for line in out.splitlines():
        if "://" not in line and "ann-sweep-status" not in line:
            assert len(line) <= 100, line
    assert "one of each fit label side by side:" in out

    # The parent: counts as metrics and in its description, the fit map and the overlay.
    for label, n in counts.items():
        assert parent.data.metrics[f"fit/count_{label}"] == n
    assert fit_view.counts_line(fit_view.label_counts(pd.DataFrame({"fit": list(labels.values())}))) in \
        parent.data.tags["mlflow.note.content"]
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/fit_map.png", "plots/top_trials_curves.png"} <= plots
    for name in ("fit_map.png", "top_trials_curves.png"):
        with open(client.download_artifacts(parent.info.run_id, f"plots/{name}", str(tmp_path)), "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"

    # The showcase: one trial of every label present is tagged for the "by fit" view.
    showcased = {r.info.run_id for r in trials if r.data.tags.get(V.TAG_SHOWCASE) == "true"}
    assert {labels[run_id] for run_id in showcased} == set(counts) - {"pruned"}
    assert len(showcased) <= len(set(counts)) + fit_view.TOP_FEW

    # The views: one of each label, and one per label, with the fit column in the runs table.
    tags = client.get_experiment(experiment.experiment_id).tags
    parent_id = parent.info.run_id
    for label in [None, *(set(counts) - {"pruned"})]:
        name, state = ui_views.decode_view(tags[V.VIEW_TAG_PREFIX + ui_views.fit_view_id(parent_id, label)])
        assert "tags.`fit`" in state["selectedColumns"]
        assert f"tags.`mlflow.parentRunId` = '{parent_id}'" in state["searchFilter"]
        if label is None:
            assert name.endswith("by fit: one of each label") and V.TAG_SHOWCASE in state["searchFilter"]
            found = client.search_runs([experiment.experiment_id], filter_string=state["searchFilter"])
            assert {r.info.run_id for r in found} == showcased
        else:
            found = client.search_runs([experiment.experiment_id], filter_string=state["searchFilter"])
            assert {r.info.run_id for r in found} == {run_id for run_id, fit in labels.items() if fit == label}
