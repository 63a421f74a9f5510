"""Saved views of the MLflow UI: what a user sees first when comparing runs.

Left to itself, MLflow 3.17's experiment page builds its chart layout from the metric
names -- one section per prefix (the name up to its last ``/``), sections in alphabetical
order -- so ``accuracy/*``, ``best/*`` and the eight ``fit/*`` diagnosis numbers come
before ``loss/*``; and it folds child runs under their parent, so a sweep's chart view
shows no trial's curves until the user expands the parent run.

A *saved view* fixes both. It is an experiment tag ``mlflow.sharedViewState.<id>``
holding the page state (search filter, sort order, chart sections and cards) in the
format of the UI's own "Views" menu, so the UI lists it there by name and opens it from a
link with ``?viewStateShareKey=<id>``. :func:`ensure_run_view` writes one per experiment
(``learning-curves``: every run) or per sweep (``trials-<parent run id>``: the parent's
child runs, best first). Its first section shows, for every run in one chart each:

* ``loss/train`` (solid) vs ``loss/val`` (dashed) -- the over/underfit comparison;
* the task's score, training vs validation (``accuracy/*``, or ``r2/*`` for regression);
* the metric the runs are sorted by (a sweep's ``sweep/objective``), as a bar per run;

then one section per quantity (train, val, test, best), a summary section, and the
``fit/*`` diagnosis numbers collapsed at the end. Metrics the layout does not name are
added by the UI after these sections.

A view is written once and never overwritten: a user who changes it in the UI and saves
("Override saved view") keeps their version. Writing it never fails a run (see
:func:`ensure_run_view_quietly`).

A sweep's trials also get distinct colours (:func:`run_colour`, the run tag
``mlflow.runColor``), so that each trial's pair of curves can be told from the others.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import zlib
from typing import Any, Mapping, Sequence

from sweeps.core import vocabulary as V
log = logging.getLogger(__name__)

#: The view of every run of an experiment (``ann-train``'s runs).
LEARNING_CURVES_VIEW = "learning-curves"

#: The score shown next to the loss, per task (the same as the learning-curve PNG's).
SCORES = {"binary": ("accuracy",), "multiclass": ("accuracy",), "regression": ("r2", "mae", "rmse")}
#: The first section's title (the UI cuts section titles at about 45 characters).
CURVES_SECTION = "training (solid) vs validation (dashed)"
#: Runs drawn in the charts: the first ten in the view's order (MLflow's "first 10 runs").
RUNS_SHOWN = "FIRST_10_RUNS"

#: Twenty of the MLflow UI's own run colours, ordered so that neighbours differ: trial k
#: gets colour k % 20. Left to itself the UI picks a colour from a hash of the run id, and
#: two of six trials often get the same one, which makes their curves impossible to tell apart.
RUN_COLOURS = (
    "#137dae", "#de7921", "#308613", "#c83243", "#8a63bf", "#a6630c", "#b45091", "#445461", "#04867d", "#facb66",
    "#0e538b", "#f792a6", "#3ba65e", "#93320b", "#434a93", "#8acaff", "#1f272d", "#e65b77", "#8ddda8", "#5f7281",
)

_written: set[tuple[str, str, str]] = set()  # views known to exist: (tracking URI, experiment, view)
_failed: set[tuple[str, str, str]] = set()  # views that could not be written: (URI, experiment, parent run)
_written_lock = threading.Lock()


# ------------------------------------------------------------------------ layout


def _line(uuid: str, section: str, keys: Sequence[str], title: str | None = None) -> dict[str, Any]:
    """A line chart (step on the x axis) of one metric, or of several drawn solid, dashed, ..."""
    card = {
        "uuid": uuid, "type": "LINE", "runsCountToCompare": 10, "metricSectionId": section,
        "deleted": False, "isGenerated": False, "metricKey": keys[0], "selectedMetricKeys": list(keys),
        "lineSmoothness": 0, "xAxisScaleType": "linear", "scaleType": "linear", "range": {},
        "xAxisKey": "step", "selectedXAxisMetricKey": "", "yAxisKey": "metric", "yAxisExpressions": [],
        "ignoreOutliers": False, "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True,
    }
    if title:
        card["displayName"] = title
    return card


def _bar(uuid: str, section: str, key: str) -> dict[str, Any]:
    """A bar per run: the metric's last value (for metrics logged once, at the end)."""
    return {"uuid": uuid, "type": "BAR", "runsCountToCompare": 10, "metricSectionId": section,
            "deleted": False, "isGenerated": False, "metricKey": key}


def _section(uuid: str, name: str, *, expanded: bool = True, **extra) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "display": expanded, "isReordered": True, "deleted": False,
            "isGenerated": False, **extra}


def chart_layout(task: str, sort_metric: str | None = None) -> tuple[list[dict], list[dict]]:
    """The chart cards and sections of a view, for a task's metric names (``sweeps.training.run``)."""
    scores = SCORES.get(task, SCORES["multiclass"])
    charts: list[dict] = []
    sections = [_section("s-curves", CURVES_SECTION, columns=2, cardHeight=420)]
    charts.append(_line("c-curves-loss", "s-curves", [V.LOSS_TRAIN, V.LOSS_VAL]))
    charts.append(_line(f"c-curves-{scores[0]}", "s-curves", [f"{scores[0]}/train", f"{scores[0]}/val"]))
    if sort_metric:
        charts.append(_bar("c-curves-sorted-by", "s-curves", sort_metric))
    for quantity in ("loss", *scores):
        section = f"s-{quantity}"
        sections.append(_section(section, quantity, columns=4))
        charts += [
            _line(f"c-{quantity}-train", section, [f"{quantity}/train"]),
            _line(f"c-{quantity}-val", section, [f"{quantity}/val"]),
            _bar(f"c-{quantity}-test", section, f"{quantity}/test"),
            _bar(f"c-{quantity}-best", section, V.best_metric(f"{quantity}/val")),
        ]
    sections.append(_section("s-summary", "epochs, size, time"))
    charts += [_bar(f"c-summary-{key}", "s-summary", key)
               for key in (V.BEST_EPOCH, V.EPOCHS_RUN, V.STOPPED_EARLY, V.N_PARAMETERS, V.FIT_SECONDS)]
    charts.append(_line("c-summary-epoch-seconds", "s-summary", [V.EPOCH_SECONDS]))
    sections.append(_section("s-fit", "fit diagnosis (the numbers behind the fit tag)", expanded=False, columns=4))
    charts += [_bar(f"c-fit-{name}", "s-fit", V.FIT_PREFIX + name) for name in V.FIT_NUMBERS]
    return charts, sections


def view_state(
    task: str,
    *,
    search_filter: str = "",
    order_by: str = "attributes.start_time",
    ascending: bool = False,
    sort_metric: str | None = None,
    columns: Sequence[str] = (),
) -> dict[str, Any]:
    """The experiment page's state (search facets + UI state) that a view restores.

    ``columns`` are the runs table's columns, as the UI names them (``tags.`fit```).
    """
    charts, sections = chart_layout(task, sort_metric)
    state = {
        # search facets
        "searchFilter": search_filter,
        "orderByKey": order_by,
        "orderByAsc": ascending,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        # UI state
        "compareRunCharts": charts,
        "compareRunSections": sections,
        "isAccordionReordered": True,  # keep these sections first; the UI appends new ones
        "runsHiddenMode": RUNS_SHOWN,
        "hideEmptyCharts": True,
        "useGroupedValuesInCharts": True,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }
    if columns:
        state["selectedColumns"] = list(columns)
    return state


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``column("tags", "fit")`` -> ``tags.`fit```."""
    return f"{kind}.`{key}`"


#: The runs table's columns in a sweep's views: the fit label and hint, then the objective.
TRIAL_COLUMNS = (column("tags", V.TAG_FIT), column("tags", V.TAG_FIT_HINT), column("metrics", V.OBJECTIVE))


def encode_view(name: str, state: Mapping[str, Any], created_ms: int | None = None) -> str:
    """The tag value: the UI's saved-view envelope, its state deflate-compressed as the UI writes it."""
    packed = "deflate;" + base64.b64encode(zlib.compress(json.dumps(state).encode("utf-8"), 9)).decode("ascii")
    created = int(time.time() * 1000) if created_ms is None else int(created_ms)
    return json.dumps({"name": name, "createdAt": created, "state": packed})


def decode_view(value: str) -> tuple[str, dict[str, Any]]:
    """``(name, state)`` of a tag value written by :func:`encode_view` (or by the UI)."""
    envelope = json.loads(value)
    state = envelope["state"]
    if state.startswith("deflate;"):
        state = zlib.decompress(base64.b64decode(state[len("deflate;"):])).decode("utf-8")
    return envelope["name"], json.loads(state)


def run_colour(trial_number) -> str | None:
    """The colour of trial ``trial_number`` (an int or its text); None when it is not a number."""
    try:
        number = int(str(trial_number))
    except (TypeError, ValueError):
        return None
    return RUN_COLOURS[number % len(RUN_COLOURS)] if number >= 0 else None


# ------------------------------------------------------------------------- links


def trials_view_id(parent_run_id: str) -> str:
    """The view of a sweep's trials (the child runs of ``parent_run_id``)."""
    return f"trials-{parent_run_id}"





# ------------------------------------------------------------------------- write


def ensure_view(client, experiment_id: str, view_id: str, make) -> None:
    """Write the view unless the experiment has it already.

    ``make()`` returns ``(name, state)``; it is called only when the view is missing. The
    experiment is looked up once per process and view (later calls return at once).
    """
    key = (str(client.tracking_uri), str(experiment_id), view_id)
    with _written_lock:
        if key in _written:
            return
    tag = V.VIEW_TAG_PREFIX + view_id
    if tag not in client.get_experiment(experiment_id).tags:
        name, state = make()
        client.set_experiment_tag(experiment_id, tag, encode_view(name, state))
    with _written_lock:
        _written.add(key)


def ensure_run_view(client, experiment_id: str, task: str, parent_run_id: str | None = None) -> str:
    """The id of the view for a run: its sweep's trials view, or the experiment's learning curves.

    A child run's view lists the parent's children (``tags.mlflow.parentRunId``), sorted by
    ``sweep/objective`` in the parent's ``sweep.direction`` when the parent says it is a
    sweep, else newest first.
    """
    if parent_run_id is None:
        ensure_view(client, experiment_id, LEARNING_CURVES_VIEW,
                    lambda: ("Learning curves: training vs validation", view_state(task)))
        return LEARNING_CURVES_VIEW

    def make() -> tuple[str, dict[str, Any]]:
        parent = client.get_run(parent_run_id)
        name = f"Trials of {parent.info.run_name or parent_run_id}: training vs validation"
        search = f"tags.`{V.TAG_PARENT_RUN}` = '{parent_run_id}'"
        return name, _sweep_view_state(task, search, parent.data.tags.get(V.TAG_DIRECTION, ""))

    view_id = trials_view_id(parent_run_id)
    ensure_view(client, experiment_id, view_id, make)
    return view_id


def _sweep_view_state(task: str, search: str, direction: str) -> dict[str, Any]:
    """A view of some of a sweep's trials, best first (newest first without a direction), with
    the fit and objective columns."""
    if not direction:
        return view_state(task, search_filter=search, columns=TRIAL_COLUMNS)
    ascending = direction.split(",")[0].strip() != "maximize"
    return view_state(task, search_filter=search, order_by=f"metrics.`{V.OBJECTIVE}`",
                      ascending=ascending, sort_metric=V.OBJECTIVE, columns=TRIAL_COLUMNS)


def fit_view_id(parent_run_id: str, label: str | None = None) -> str:
    """The view of a sweep's trials by fit: one of each label, or (``label``) every trial of one."""
    return f"fit-{parent_run_id}" if label is None else f"fit-{label}-{parent_run_id}"


def ensure_fit_views(client, experiment_id: str, parent_run_id: str, task: str,
                     counts: Mapping[str, int]) -> dict[str, str]:
    """Write the sweep's views by fit; returns ``{"all labels" or label: view id}``.

    * *Trials of <sweep> by fit: one of each label*: the trials the parent run tagged
      :data:`sweeps.core.vocabulary.TAG_SHOWCASE` (the best of each label, then the best overall);
    * *Trials of <sweep>: <label>*: every trial of a label, for each label in ``counts``.
    """
    parent = client.get_run(parent_run_id)
    sweep = parent.info.run_name or parent_run_id
    direction = parent.data.tags.get(V.TAG_DIRECTION, "")
    children = f"tags.`{V.TAG_PARENT_RUN}` = '{parent_run_id}'"
    views = {}
    wanted = [(None, f"Trials of {sweep} by fit: one of each label",
               f"{children} and tags.`{V.TAG_SHOWCASE}` = 'true'")]
    wanted += [(label, f"Trials of {sweep}: {label}", f"{children} and tags.`{V.TAG_FIT}` = '{label}'")
               for label in counts if label in V.FIT_LABELS]
    for label, name, search in wanted:
        view_id = fit_view_id(parent_run_id, label)
        ensure_view(client, experiment_id, view_id,
                    lambda name=name, search=search: (name, _sweep_view_state(task, search, direction)))
        views[label or "all labels"] = view_id
    return views


def ensure_run_view_quietly(client, experiment_id: str, task: str, parent_run_id: str | None = None) -> str | None:
    """:func:`ensure_run_view`, but a failure is only logged, once per process and view
    (a view must never fail a run, nor fill a sweep's log with the same warning)."""
    key = (str(client.tracking_uri), str(experiment_id), parent_run_id or "")
    with _written_lock:
        if key in _failed:
            return None
    try:
        return ensure_run_view(client, experiment_id, task, parent_run_id)
    except Exception as error:  # an old server, a read-only store, no permission to tag the experiment...
        with _written_lock:
            _failed.add(key)
        log.warning("could not save the MLflow UI view of experiment %s: %s", experiment_id, error)
        return None
