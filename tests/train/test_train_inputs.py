"""Every tracked run logs its training, validation and test data as MLflow dataset inputs
(the runs table's Dataset column), on real SQLite stores."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from sweeps.training.run import train
from train_helpers import make_cfg, write_csv


def _inputs(client, run_id):
    return {i.tags[0].value: i.dataset for i in client.get_run(run_id).inputs.dataset_inputs
            if i.tags and i.tags[0].key == "mlflow.data.context"}


def test_a_run_logs_its_three_splits_with_name_digest_source_and_schema(client, sqlite_uri):
    first = train(make_cfg(sqlite_uri, "tracking.log_model=false"))
    inputs = _inputs(client, first["run_id"])
    assert set(inputs) == {"training", "validation", "test"}
    for dataset in inputs.values():
        assert dataset.name == "moons"
        assert len(dataset.digest) == 8
        assert dataset.source_type == "code"
        tags = json.loads(dataset.source)["tags"]
        assert tags["dataset"] == "moons" and tags["dataset.n_samples"] == "200"
        assert tags["training.seed"] == "0" and tags["training.val_size"] == "0.15"
        columns = json.loads(dataset.schema)["mlflow_colspec"]
        assert [c["name"] for c in columns] == ["x1", "x2", "target"]
        assert [c["type"] for c in columns] == ["double", "double", "long"]
    rows = {context: json.loads(d.profile)["num_rows"] for context, d in inputs.items()}
    params = client.get_run(first["run_id"]).data.params
    assert rows == {"training": int(params["dataset.n_train"]), "validation": int(params["dataset.n_val"]),
                    "test": int(params["dataset.n_test"])}
    assert len({d.digest for d in inputs.values()}) == 3  # the splits differ

    # The same data gives the same digests; another split gives others.
    again = train(make_cfg(sqlite_uri, "tracking.log_model=false"))
    assert {c: d.digest for c, d in _inputs(client, again["run_id"]).items()} == {c: d.digest for c, d in inputs.items()}
    other = train(make_cfg(sqlite_uri, "tracking.log_model=false", "training.seed=1"))
    assert _inputs(client, other["run_id"])["training"].digest != inputs["training"].digest

    # Runs can be searched by data set and context, as in the UI.
    found = client.search_runs([first["experiment_id"]],
                               filter_string="dataset.name = 'moons' AND dataset.context = 'training'")
    assert {r.info.run_id for r in found} == {first["run_id"], again["run_id"], other["run_id"]}


def test_a_csv_run_names_its_file_as_the_source(tmp_path, sqlite_uri):
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(60))
    path = write_csv(tmp_path / "tiny.csv", "a,b,label\n" + rows + "\n")
    result = train(make_cfg(sqlite_uri, "dataset=csv", f"dataset.path={path}", "dataset.target=label",
                            "tracking.log_model=false", "training.batch_size=8", fast=False))
    inputs = _inputs(MlflowClient(sqlite_uri), result["run_id"])
    assert set(inputs) == {"training", "validation", "test"}
    for dataset in inputs.values():
        assert dataset.name == "tiny"
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": str(path.resolve())}
        assert [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]] == ["a", "b", "label"]


def test_an_unnamed_run_gets_a_descriptive_name_and_its_model_carries_it(client, sqlite_uri):
    from sweeps.tracking.model_logging import logged_model_name

    result = train(make_cfg(sqlite_uri))
    run = client.get_run(result["run_id"])
    assert run.info.run_name == "moons relu 1x8 lr=1e-3 bs=32"
    model_id = result["model_uri"].split("models:/", 1)[1]
    assert client.get_logged_model(model_id).name == "moons relu 1x8 lr=1e-3 bs=32"
    named = train(make_cfg(sqlite_uri, "tracking.run_name=baseline", "optimizer.lr=0.0015", "tracking.log_model=false"))
    assert client.get_run(named["run_id"]).info.run_name == "baseline"
    # MLflow refuses / : . % " ' in model names: they become _.
    assert logged_model_name("moons relu 1x8 lr=1.5e-3 bs=32") == "moons relu 1x8 lr=1_5e-3 bs=32"
    assert logged_model_name(None) == "model"


def test_system_metrics_are_on_by_default_and_can_be_turned_off(client, sqlite_uri):
    on = train(make_cfg(sqlite_uri, "tracking.log_model=false"))
    metrics = client.get_run(on["run_id"]).data.metrics
    for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        points = client.get_metric_history(on["run_id"], key)
        assert points, key  # a run shorter than the sampling interval still gets its last sample
        assert all(p.value >= 0 for p in points)
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    off = train(make_cfg(sqlite_uri, "tracking.log_model=false", "tracking.system_metrics=false"))
    assert not [k for k in client.get_run(off["run_id"]).data.metrics if k.startswith("system/")]
