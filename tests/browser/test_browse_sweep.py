"""Browsing a sweep in the MLflow dashboard, checked in headless Chromium.

A six-trial ``ann-sweep`` is logged to a real ``mlflow server`` (PostgreSQL backend), then
each test does what a user does in the UI and asserts on what the page shows -- never on
the tracking API, which only tells the tests what to expect:

1. the experiment opens in the model-training runs view, the sweep's parent run is listed
   and its trials appear as its children when it is expanded;
2. the sweep's saved view (listed in the "Views" menu) opens on the chart of every
   trial's training (solid) vs validation (dashed) loss, nobody having built a chart;
3. the runs filter by ``tags.fit = "overfit"`` and sort by the sweep metric;
4. a trial's page shows its description, its model and its learning-curve image;
5. the parent's page shows the curve overlay, the fit map and the Optuna plots (drawn offline);
6. the sweep's "by fit" view charts trials of different fit labels side by side, with the
   fit label as a column of the runs table.

Every state asserted on is saved as a screenshot (see ``conftest.screenshots``).
"""

from __future__ import annotations

from collections import Counter

import pytest
from selenium.webdriver.common.keys import Keys

from sweeps.tracking import ui_views
from sweeps.tracking.links import run_url, view_url

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

CARD = "[data-testid='experiment-view-compare-runs-card']"
SECTION = "[data-testid='experiment-view-compare-runs-section-header']"


def curves(driver, card) -> list[tuple[str, str]]:
    """``(colour, dash pattern)`` of the curves plotly drew in a chart card (its hover shadows left out)."""
    return [tuple(line) for line in driver.execute_script(
        "return Array.from(arguments[0].querySelectorAll('path.js-line'))"
        ".filter(p => p.style.strokeOpacity === '1' && p.getAttribute('d'))"
        ".map(p => [p.style.stroke, p.style.strokeDasharray]);", card)]


def _rgb(hex_colour: str) -> str:
    """``#137dae`` -> ``rgb(19, 125, 174)``, as the browser reports a style's colour."""
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def runs_page(sweep) -> str:
    """The experiment's runs table in the model-training view (the ``?workflowType`` link)."""
    return f"{sweep.uri}/#/experiments/{sweep.experiment_id}/runs?workflowType=machine_learning"


def test_the_experiment_opens_on_its_runs_with_the_trials_under_the_parent(page, sweep):
    page.open(runs_page(sweep))
    page.wait(lambda d: page.run_rows(), "the runs table")
    text = page.body_text()
    # The model-training runs page, not MLflow 3's GenAI overview.
    assert "Runs" in text.splitlines()
    for genai_only in ("Evaluation runs", "Sessions", "Detect Issues"):
        assert genai_only not in text, f"{genai_only!r}: the GenAI view opened"
    # One row: the parent, its trials folded under it.
    assert page.run_rows() == [(sweep.parent_id, sweep.parent_name)]
    assert page.matching_runs() == 1 + len(sweep.trials)
    page.shot("experiment-parent-run")

    page.find(f".ag-row[row-id='{sweep.parent_id}'] button[data-component-id*='runnamecellrenderer']",
              "the parent's expand button").click()
    rows = page.wait(lambda d: len(page.run_rows()) == 1 + len(sweep.trials) and page.run_rows(),
                     "the trials under the parent")
    assert rows[0] == (sweep.parent_id, sweep.parent_name)
    assert {run_id for run_id, _ in rows[1:]} == {t.run_id for t in sweep.trials}
    assert {name for _, name in rows[1:]} == {t.name for t in sweep.trials}
    page.shot("experiment-trials-expanded")


def test_the_sweep_view_opens_on_training_vs_validation_loss_of_every_trial(page, sweep):
    view_id = ui_views.trials_view_id(sweep.parent_id)
    page.open(runs_page(sweep))
    page.find("[data-testid='saved-views-trigger']", "the Views menu").click()
    item = page.find(f"[data-testid='saved-views-item-{view_id}']", "the sweep's saved view")
    assert item.text.strip() == f"Trials of {sweep.parent_name}: training vs validation"
    page.shot("views-menu")
    page.driver.switch_to.active_element.send_keys(Keys.ESCAPE)

    # The link `ann-sweep` prints for comparing the trials (and the Views menu's entry).
    page.open(view_url(sweep.uri, sweep.experiment_id, view_id))
    first_section = page.find(SECTION, "the first chart section")
    assert first_section.text.startswith(ui_views.CURVES_SECTION)

    best_first = sweep.by_objective()
    page.wait(lambda d: [run_id for run_id, _ in page.run_rows()] == [t.run_id for t in best_first],
              "the trials, best first, without the parent")

    cards = page.wait(lambda d: d.find_elements("css selector", CARD), "the chart cards")
    loss, score = cards[0], cards[1]
    assert loss.find_element("css selector", "h4").text == "loss/train vs loss/val"
    assert score.find_element("css selector", "h4").text == "accuracy/train vs accuracy/val"
    # One solid (training) and one dashed (validation) curve per trial, in the trial's own colour.
    def solid_and_dashed(driver):
        lines = curves(driver, loss)
        solid = Counter(colour for colour, dash in lines if not dash)
        dashed = Counter(colour for colour, dash in lines if dash)
        return (solid, dashed) if sum(solid.values()) == sum(dashed.values()) == len(best_first) else None

    solid, dashed = page.wait(solid_and_dashed, "a solid and a dashed loss curve per trial")
    assert solid == dashed
    assert set(solid) == {_rgb(ui_views.run_colour(t.number)) for t in best_first}  # distinct colours
    legend = loss.get_attribute("textContent")
    for trial in best_first:
        assert f"{trial.name} (loss/train)" in legend and f"{trial.name} (loss/val)" in legend, trial.name
    page.shot("chart-view-train-vs-validation-loss")


def test_the_runs_filter_by_fit_tag_and_sort_by_the_sweep_metric(page, sweep):
    overfit = sweep.by_objective("overfit")
    page.open(runs_page(sweep))
    search = page.find("input[data-testid='search-box']", "the search box")
    search.click()
    search.send_keys('tags.fit = "overfit"', Keys.ENTER)
    page.wait(lambda d: "searchFilter=tags.fit" in d.current_url, "the filter to apply")

    page.find("button[data-testid='sort-select-dropdown']", "the Sort menu").click()
    page.driver.switch_to.active_element.send_keys("sweep/objective")
    page.find("[data-testid='sort-select-sweep/objective']", "sweep/objective in the Sort menu").click()
    if not page.driver.find_elements("css selector", "[data-testid='sort-select-asc']"):
        page.find("button[data-testid='sort-select-dropdown']", "the Sort menu").click()
    page.find("[data-testid='sort-select-asc']", "the ascending button").click()
    page.driver.switch_to.active_element.send_keys(Keys.ESCAPE)

    rows = page.wait(lambda d: page.run_rows() if [r for r, _ in page.run_rows()] == [t.run_id for t in overfit] else None,
                     "the overfit trials, lowest sweep/objective first")
    assert [name for _, name in rows] == [t.name for t in overfit]
    assert page.matching_runs() == len(overfit)
    assert "Sort: sweep/objective" in page.body_text()
    page.shot("runs-overfit-by-sweep-objective")


def _open_artifact(page, folder: str, name: str) -> None:
    page.click_text("Artifacts")
    page.find_xpath(f"//div[normalize-space(text())='{folder}']", f"the {folder} folder")
    from selenium.webdriver.common.by import By

    shown = [e for e in page.driver.find_elements(By.XPATH, f"//div[normalize-space(text())='{name}']") if e.is_displayed()]
    if not shown:
        page.click_text(folder, tag="div")
    page.click_text(name, tag="div")


def test_a_trial_page_shows_its_model_and_learning_curve(page, sweep):
    trial = sweep.by_objective()[0]
    page.open(run_url(sweep.uri, sweep.experiment_id, trial.run_id))
    page.wait_text(trial.name)
    page.wait_text(f"fit: {trial.fit}")  # the run's description
    page.wait_text("best epoch")
    page.shot("trial-overview-description")
    page.wait_text("Logged models (1)")
    from sweeps.tracking.model_logging import logged_model_name

    # The logged model carries its run's name.
    model = page.find_xpath(f"//a[normalize-space(text())='{logged_model_name(trial.name)}']", "the logged model's link")
    assert "/models/m-" in model.get_attribute("href")
    page.wait_text("Ready")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", model)
    page.shot("trial-overview-logged-model")

    _open_artifact(page, "plots", "learning_curve.png")
    width = page.wait(lambda d: page.image_loaded("blob:"), "the learning-curve image")
    assert width >= 800
    page.shot("trial-learning-curve")


def test_the_parent_page_shows_the_curve_overlay_and_the_optuna_plots(page, sweep):
    page.open(run_url(sweep.uri, sweep.experiment_id, sweep.parent_id))
    page.wait_text(sweep.parent_name)
    page.wait_text("Child runs")
    for trial in sweep.trials:
        page.wait_text(trial.name)

    _open_artifact(page, "plots", "top_trials_curves.png")
    width = page.wait(lambda d: page.image_loaded("blob:"), "the curve overlay")
    assert width >= 800
    page.shot("parent-curve-overlay")

    page.click_text("fit_map.png", tag="div")
    width = page.wait(lambda d: page.image_loaded("blob:"), "the fit map")
    assert width >= 600
    page.shot("parent-fit-map")

    page.click_text("optuna.html", tag="div")
    frame = page.find("iframe.mlflow-html-iframe", "the Optuna plots' frame")
    page.driver.switch_to.frame(frame)
    try:
        drawn = page.wait(
            lambda d: d.execute_script(
                "const plots = Array.from(document.querySelectorAll('div.plot'));"
                "return plots.length >= 4 && plots.every(p => p.querySelector('.main-svg')) && plots.length;"
            ),
            "the Optuna plots drawn by plotly.js (embedded, no network)",
        )
        headings = [h.text for h in page.driver.find_elements("css selector", "h2")]
    finally:
        page.driver.switch_to.default_content()
    assert drawn >= 4
    assert headings[:3] == ["Optimization history", "Parameter importances", "Parallel coordinates"]
    page.shot("parent-optuna-plots")


def test_the_by_fit_view_charts_trials_of_different_labels_with_the_fit_column(page, sweep):
    showcased = [t for t in sweep.trials if t.showcase]
    assert len({t.fit for t in showcased}) >= 2, [(t.name, t.fit) for t in sweep.trials]
    link = view_url(sweep.uri, sweep.experiment_id, ui_views.fit_view_id(sweep.parent_id))
    page.open(link)
    page.wait(lambda d: {run_id for run_id, _ in page.run_rows()} == {t.run_id for t in showcased},
              "the showcased trials: the best of each label, then the best few")
    # The first chart draws the training and validation loss of trials of every label shown.
    cards = page.wait(lambda d: d.find_elements("css selector", CARD), "the chart cards")
    loss = cards[0]
    assert loss.find_element("css selector", "h4").text == "loss/train vs loss/val"
    page.wait(lambda d: len(curves(d, loss)) == 2 * len(showcased), "a training and a validation curve per trial")
    legend = loss.get_attribute("textContent")
    charted = {t.fit for t in showcased if f"{t.name} (loss/val)" in legend}
    assert charted == {t.fit for t in showcased}, (charted, legend)
    page.shot("by-fit-view-charts")

    # The same view as a table: the fit label and the objective are columns, a label per row.
    page.open(link.replace("compareRunsMode=CHART", "compareRunsMode=TABLE"))
    headers = page.wait(lambda d: [h.text.strip() for h in d.find_elements("css selector", "[role='columnheader']")
                                   if h.text.strip()], "the table's column headers")
    assert "fit" in headers and "sweep/objective" in headers, headers
    cells = page.wait(lambda d: [c.text.strip() for c in d.find_elements("css selector", "[role='gridcell']")
                                 if c.text.strip() in {t.fit for t in showcased}], "the fit cells")
    assert sorted(cells) == sorted(t.fit for t in showcased), cells
    page.shot("by-fit-view-table")


def test_an_ann_train_run_shows_its_dataset_and_system_metrics(page, server, tmp_path):
    """An ``ann-train`` run (system metrics on by default) in the UI: the runs table's Dataset
    column names the data set, and the run's System metrics tab charts CPU and memory."""
    import os
    import subprocess
    import sys

    from mlflow import MlflowClient

    experiment = "browse-train"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        # Long enough (a few seconds) for several samples at a 1 s interval: the tab then draws curves.
        [sys.executable, "-m", "sweeps", "train", "dataset=moons", "dataset.n_samples=2000", "training.batch_size=4",
         "training.epochs=150",
         "tracking.system_metrics_interval=1", f"tracking.uri={server}", f"tracking.experiment_name={experiment}",
         f"hydra.run.dir={tmp_path}/outputs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(server)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    run = client.search_runs([experiment_id])[0]
    assert any(key.startswith("system/") for key in run.data.metrics), sorted(run.data.metrics)
    cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert len(cpu) >= 2, cpu  # a curve, not a single point (a bar, titled without its system/ prefix)

    page.open(f"{server}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode=TABLE")
    page.wait(lambda d: page.run_rows(), "the run in the table")
    # The Dataset cell: the data set's name, its digest and the split's context.
    cells = page.wait(lambda d: [c.text for c in d.find_elements("css selector", "[role='gridcell']")
                                 if "Training" in c.text], "the Dataset column")
    assert any(text.startswith("moons (") for text in cells), cells
    page.shot("train-run-dataset-column")

    page.open(run_url(server, experiment_id, run.info.run_id))
    page.wait_text(run.info.run_name)
    page.click_text("System metrics")
    page.wait_text("system/cpu_utilization_percentage")
    page.wait(lambda d: d.find_elements("css selector", "path.js-line"), "a system-metrics curve")
    page.shot("train-run-system-metrics")
