"""``ann-replay RUN_ID`` / ``ann-train --replay RUN_ID``: a logged run trained again reproduces
bit for bit, and a deliberate change is reported with its first difference (real SQLite stores)."""

from __future__ import annotations

import os
import subprocess

import pytest
from mlflow import MlflowClient

from programs import program
from sweeps.core import vocabulary as V
from sweeps.cli.replay import changed_versions, compare_histories
from train_helpers import FAST


def _run(argv, cwd, prog="ann-replay"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    return subprocess.run([*program(prog), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _only_run(uri):
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


@pytest.mark.slow
def test_a_logged_run_replays_bit_for_bit_and_a_change_is_reported(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = _run([*FAST, "training.epochs=6", f"tracking.uri={uri}"], tmp_path, "ann-train")
    assert done.returncode == 0, done.stderr
    original = _only_run(uri)
    client = MlflowClient(uri)

    same = _run([original.info.run_id, f"tracking.uri={uri}"], tmp_path)
    assert same.returncode == 0, same.stderr
    lines = same.stdout.splitlines()
    assert lines[0].startswith(f"replay of run {original.info.run_id} ({original.info.run_name}): run ")
    assert lines[1] == ("identical: every per-epoch metric matches bit for bit (5 metrics x 6 epochs: "
                        "loss/train, accuracy/train, loss/val, accuracy/val, lr)")
    replays = client.search_runs([original.info.experiment_id], f"tags.`{V.TAG_REPLAY_OF}` = '{original.info.run_id}'")
    (copy,) = replays
    assert copy.info.run_name == f"replay of {original.info.run_name}" and copy.info.status == "FINISHED"
    assert copy.data.tags[V.TAG_IDENTICAL] == "true" and V.TAG_FIRST_DIFFERENCE not in copy.data.tags
    for key in ("loss/train", "accuracy/val"):
        assert ([m.value for m in client.get_metric_history(copy.info.run_id, key)]
                == [m.value for m in client.get_metric_history(original.info.run_id, key)])

    # ann-train --replay, with a deliberate change: exit 3, the first difference and what changed.
    changed = _run(["--replay", original.info.run_id, f"tracking.uri={uri}", "training.batch_size=16"],
                   tmp_path, "ann-train")
    assert changed.returncode == 3, changed.stderr
    lines = changed.stdout.splitlines()
    assert lines[1] == "with the overrides: training.batch_size=16"
    assert lines[2].startswith("different: loss/train at epoch 1: ")
    assert "in the original" in lines[2] and "in the replay" in lines[2]
    assert lines[3].startswith("changed since the original: ")
    (second,) = [r for r in client.search_runs([original.info.experiment_id], f"tags.`{V.TAG_REPLAY_OF}` = '{original.info.run_id}'")
                 if r.info.run_id != copy.info.run_id]
    assert second.data.tags[V.TAG_IDENTICAL] == "false"
    assert second.data.tags[V.TAG_FIRST_DIFFERENCE].startswith("loss/train at epoch 1: ")
    assert second.data.params["training.batch_size"] == "16"


def test_mistakes_are_one_line_exit_2(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()
    result = _run(["0123456789abcdef", f"tracking.uri={uri}"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"ann-replay: error: RUN_ID='0123456789abcdef' is not allowed: expected the id "
                                     f"of a run in tracking.uri='{uri}'")
    result = _run([], tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == (
        "ann-replay: error: RUN_ID is missing: expected `ann-replay RUN_ID [key=value ...]`")


def test_comparison_is_bit_for_bit():
    same = compare_histories({"loss/train": [0.5, 0.25]}, {"loss/train": [0.5, 0.25], "time/epoch_seconds": [1, 2]})
    assert same.identical and same.metrics == ["loss/train"] and same.epochs == 2
    nudged = compare_histories({"loss/train": [0.5, 0.25], "loss/val": [1.0, 0.5]},
                               {"loss/train": [0.5, 0.25], "loss/val": [1.0, 0.5000000000000001]})
    assert nudged.first_difference == "loss/val at epoch 2: 0.5 in the original, 0.5000000000000001 in the replay"
    assert not compare_histories({"a/train": [0.0]}, {"a/train": [-0.0]}).identical
    assert compare_histories({"a/train": [float("nan")]}, {"a/train": [float("nan")]}).identical
    # The earliest epoch wins, whatever the metric.
    first = compare_histories({"loss/train": [1.0, 2.0], "loss/val": [1.0, 2.0]}, {"loss/train": [1.0, 3.0], "loss/val": [9.0, 2.0]})
    assert first.first_difference.startswith("loss/val at epoch 1")
    longer = compare_histories({"loss/train": [1.0]}, {"loss/train": [1.0, 2.0]})
    assert longer.first_difference == "loss/train: 1 epochs in the original, 2 in the replay"
    assert compare_histories({"loss/train": [1.0]}, {"loss/train": [1.0, 2.0]}, stopped_early=True).identical


def test_changed_versions_names_what_moved():
    old = {"versions.numpy": "2.3.1", "versions.mlflow": "3.17.2", "git.commit": "a" * 40}
    new = {"versions.numpy": "2.3.2", "versions.mlflow": "3.17.2", "git.commit": "b" * 40}
    assert changed_versions(old, new) == ["numpy 2.3.1 -> 2.3.2", f"git.commit {'a' * 12} -> {'b' * 12}"]
    assert changed_versions(old, old) == []
