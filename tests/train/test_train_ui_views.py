"""The saved MLflow UI views (``sweeps.tracking.ui_views``): what they hold and when they are written.

What the UI makes of them is checked in a real browser by ``tests/browser``.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sweeps.core import vocabulary as V
from sweeps.tracking import client as tracking
from sweeps.tracking import links
from sweeps.tracking import ui_views
from sweeps.training.run import train
from train_helpers import make_cfg


def _views(client: MlflowClient, experiment_id: str) -> dict[str, tuple[str, dict]]:
    tags = client.get_experiment(experiment_id).tags
    return {key[len(V.VIEW_TAG_PREFIX):]: ui_views.decode_view(value)
            for key, value in tags.items() if key.startswith(V.VIEW_TAG_PREFIX)}


@pytest.fixture(autouse=True)
def _fresh_cache():
    ui_views._written.clear()
    ui_views._failed.clear()
    yield
    ui_views._written.clear()
    ui_views._failed.clear()


def test_trials_get_distinct_colours():
    colours = [ui_views.run_colour(n) for n in range(20)]
    assert len(set(colours)) == 20 and all(c.startswith("#") and len(c) == 7 for c in colours)
    assert ui_views.run_colour("3") == ui_views.run_colour(23) == colours[3]
    assert ui_views.run_colour(None) is None and ui_views.run_colour("x") is None


def test_layout_starts_with_training_vs_validation_curves():
    charts, sections = ui_views.chart_layout("binary", sort_metric="sweep/objective")
    assert sections[0]["name"] == ui_views.CURVES_SECTION
    first = [c for c in charts if c["metricSectionId"] == sections[0]["uuid"]]
    assert first[0]["type"] == "LINE" and first[0]["selectedMetricKeys"] == ["loss/train", "loss/val"]
    assert first[1]["selectedMetricKeys"] == ["accuracy/train", "accuracy/val"]
    assert first[2] == {**first[2], "type": "BAR", "metricKey": "sweep/objective"}
    # Every metric a run logs has its chart; metrics logged once are bars; the diagnosis is collapsed.
    keys = {c["metricKey"] for c in charts}
    assert {"loss/test", "accuracy/test", "best/loss/val", "best_epoch", "n_parameters", "fit/gap"} <= keys
    assert all(c["type"] == "BAR" for c in charts if c["metricKey"].endswith("/test") or c["metricKey"].startswith("fit/"))
    assert [s["display"] for s in sections][-1] is False
    assert len({c["uuid"] for c in charts}) == len(charts)
    assert all(c["metricSectionId"] in {s["uuid"] for s in sections} for c in charts)


def test_regression_layout_uses_r2_next_to_the_loss():
    charts, _ = ui_views.chart_layout("regression")
    assert charts[1]["selectedMetricKeys"] == ["r2/train", "r2/val"]
    assert {"mae/val", "rmse/val", "r2/test"} <= {c["metricKey"] for c in charts}


def test_encoded_view_is_the_ui_envelope_with_a_compressed_state():
    state = ui_views.view_state("binary", search_filter="tags.x = 'y'")
    value = ui_views.encode_view("My view", state, created_ms=123)
    import json

    envelope = json.loads(value)
    assert envelope["name"] == "My view" and envelope["createdAt"] == 123
    assert envelope["state"].startswith("deflate;")
    assert ui_views.decode_view(value) == ("My view", state)
    assert len(value) < 20_000  # MLflow's limit for an experiment tag value


def test_view_url_sets_no_search_parameter():
    url = links.view_url("http://127.0.0.1:5000/", "7", "trials-abc")
    assert url == ("http://127.0.0.1:5000/#/experiments/7/runs?viewStateShareKey=trials-abc"
                   "&workflowType=machine_learning&compareRunsMode=CHART")
    assert links.experiment_url("sqlite:///mlflow.db", "7", "learning-curves").startswith("http://127.0.0.1:5000/")


def test_a_run_writes_its_experiment_view_once(sqlite_uri):
    first = train(make_cfg(sqlite_uri))
    client = MlflowClient(sqlite_uri)
    views = _views(client, first["experiment_id"])
    assert list(views) == [ui_views.LEARNING_CURVES_VIEW]
    name, state = views[ui_views.LEARNING_CURVES_VIEW]
    assert name == "Learning curves: training vs validation"
    assert state["searchFilter"] == "" and state["orderByKey"] == "attributes.start_time"
    # A user's own version of the view is kept, by this process and by a new one.
    key = V.VIEW_TAG_PREFIX + ui_views.LEARNING_CURVES_VIEW
    client.set_experiment_tag(first["experiment_id"], key, ui_views.encode_view("mine", {"searchFilter": "x"}))
    train(make_cfg(sqlite_uri))
    ui_views._written.clear()
    train(make_cfg(sqlite_uri))
    assert _views(client, first["experiment_id"])[ui_views.LEARNING_CURVES_VIEW][0] == "mine"


@pytest.mark.parametrize("direction, ascending", [("minimize", True), ("maximize", False)])
def test_child_runs_get_their_parents_trials_view(sqlite_uri, direction, ascending):
    client = MlflowClient(sqlite_uri)
    experiment_id = tracking.get_or_create_experiment(client, "sweepish")
    parent = client.create_run(experiment_id, run_name="sweep s", tags={"sweep.direction": direction})
    parent_id = parent.info.run_id
    for number in range(2):
        train(make_cfg(sqlite_uri, "tracking.experiment_name=sweepish", "tracking.log_model=false"),
              parent_run_id=parent_id, tags={"sweep.trial_number": str(number)})
    views = _views(client, experiment_id)
    assert list(views) == [ui_views.trials_view_id(parent_id)]
    name, state = views[ui_views.trials_view_id(parent_id)]
    assert name == "Trials of sweep s: training vs validation"
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{parent_id}'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`sweep/objective`", ascending)
    # The filter the view stores finds exactly the children (a trial's colour is the objective's
    # tag since train() knows nothing of sweeps: tests/browser checks the colours).
    children = client.search_runs([experiment_id], state["searchFilter"])
    assert sorted(r.data.tags["sweep.trial_number"] for r in children) == ["0", "1"]


def test_a_parent_that_is_not_a_sweep_lists_its_children_newest_first(sqlite_uri):
    client = MlflowClient(sqlite_uri)
    experiment_id = tracking.get_or_create_experiment(client, "nested")
    parent_id = client.create_run(experiment_id, run_name="group").info.run_id
    train(make_cfg(sqlite_uri, "tracking.experiment_name=nested", "tracking.log_model=false"), parent_run_id=parent_id)
    _, state = _views(client, experiment_id)[ui_views.trials_view_id(parent_id)]
    assert (state["orderByKey"], state["orderByAsc"]) == ("attributes.start_time", False)
    assert state["compareRunCharts"][2]["metricKey"] != "sweep/objective"


def test_a_view_that_cannot_be_written_is_only_a_warning(sqlite_uri, caplog):
    client = MlflowClient(sqlite_uri)
    experiment_id = tracking.get_or_create_experiment(client, "ann")
    # A parent run that does not exist: the view cannot be built, the run goes on.
    assert ui_views.ensure_run_view_quietly(client, experiment_id, "binary", "0" * 32) is None
    assert caplog.text.count("could not save the MLflow UI view") == 1
    # Tried once per process: the next trial of the same sweep does not warn again.
    assert ui_views.ensure_run_view_quietly(client, experiment_id, "binary", "0" * 32) is None
    assert caplog.text.count("could not save the MLflow UI view") == 1
