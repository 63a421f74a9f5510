"""Fixtures of the browser tests: a small sweep on a real ``mlflow server`` and headless Chromium.

* ``sweep``: runs ``ann-sweep`` (the real CLI, in a subprocess) against the session's
  ``mlflow server`` (``tests/conftest.py``: PostgreSQL backend, proxied artifacts) and
  returns what the tests expect to see, read back through the API: the experiment, the
  parent run, the trials with their fit tags and objective values.
* ``page``: one headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
  Selenium) for the module, wrapped in :class:`browser_helpers.Page`.
* ``screenshots``: the folder the screenshots go to: ``$ANN_BROWSER_SCREENSHOTS`` if set
  (CI can keep them), else a temporary folder (its path is printed).

Without Chromium, chromedriver or Selenium the tests are skipped, with the reason, on a
developer's machine; with ``CI=true`` in the environment they fail instead, and so does a
missing PostgreSQL: CI must run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sweeps.core import vocabulary as V
from browser_helpers import Page, find_chromium

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")

#: The sweep the tests browse: six random trials on a small, noisy two-moons set, long
#: enough (60 epochs, up to 256 units) that most of them overfit and one does not.
STUDY = "browse-moons"
SWEEP_OVERRIDES = [
    "sweep=moons",
    f"sweep.study_name={STUDY}",
    "sweep.n_trials=6",
    "sweep.sampler.name=random",
    "sweep.pruner.name=none",
    "dataset.n_samples=150",
    "dataset.noise=0.3",
    "training.epochs=60",
    "sweep.params.units={low:2,high:256,log:true}",
    "sweep.params.lr={low:1e-3,high:0.1,log:true}",
    "tracking.flush_interval=0.5",
]


def _unavailable(reason: str):
    """Skip on a developer's machine, fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths, or skip (fail in CI) with what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    browser, driver = find_chromium()
    if browser is None:
        _unavailable("chromium is not installed (apt-get install chromium chromium-driver)")
    if driver is None:
        _unavailable("chromedriver is not installed (apt-get install chromium-driver)")
    return browser, driver


@pytest.fixture(scope="session")
def server(chromium, request) -> str:
    """The session's ``mlflow server`` URI; in CI a missing PostgreSQL fails instead of skipping."""
    if IN_CI:
        try:
            import psycopg2

            psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5).close()
        except Exception as error:
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {error} (CI=true: the browser tests must run)",
                        pytrace=False)
    return request.getfixturevalue("mlflow_server")


@dataclass
class Trial:
    run_id: str
    name: str
    number: int
    fit: str
    objective: float | None
    showcase: bool = False  # shown in the sweep's "by fit" view


@dataclass
class Sweep:
    """What the sweep logged (read through the API): the tests compare the page with it."""

    uri: str
    experiment_id: str
    parent_id: str
    parent_name: str
    task: str
    trials: list[Trial] = field(default_factory=list)
    stdout: str = ""

    def by_objective(self, fit: str | None = None) -> list[Trial]:
        """Completed trials, best (lowest ``sweep/objective``) first; only ``fit`` ones if given."""
        done = [t for t in self.trials if t.objective is not None and (fit is None or t.fit == fit)]
        return sorted(done, key=lambda t: (t.objective, t.number))


@pytest.fixture(scope="module")
def sweep(server, tmp_path_factory) -> Sweep:
    """Run ``ann-sweep`` against the server and read back what it logged."""
    from mlflow import MlflowClient

    workdir = tmp_path_factory.mktemp("browse-sweep")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    script = Path(sys.executable).with_name("ann-sweep")  # the console script, as a user runs it
    program = [str(script)] if script.exists() else [sys.executable, "-m", "sweeps.cli.sweep"]
    command = [*program, *SWEEP_OVERRIDES,
               f"sweep.storage=sqlite:///{workdir}/optuna.db", f"tracking.uri={server}",
               f"hydra.run.dir={workdir}/outputs"]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"ann-sweep failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(STUDY)
    assert experiment is not None, done.stdout
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    trials = [
        Trial(r.info.run_id, r.info.run_name, int(r.data.tags["sweep.trial_number"]), r.data.tags.get("fit", ""),
              r.data.metrics.get("sweep/objective"), r.data.tags.get(V.TAG_SHOWCASE) == "true")
        for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    task = next(r.data.tags["task"] for r in runs if "task" in r.data.tags)
    result = Sweep(server, experiment.experiment_id, parent.info.run_id, parent.info.run_name, task, trials, done.stdout)
    # The tests need the two kinds of trial the comparison is about.
    assert len(result.by_objective()) == 6, [(t.name, t.fit, t.objective) for t in trials]
    assert result.by_objective("overfit"), f"no overfit trial to filter for: {[(t.name, t.fit) for t in trials]}"
    assert len(result.by_objective("overfit")) < 6, f"every trial overfits: {[(t.name, t.fit) for t in trials]}"
    return result


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    chosen = os.environ.get("ANN_BROWSER_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("browse-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def page(chromium, screenshots):
    """One headless Chromium for the module (a fresh profile: a first-time user)."""
    browser, driver = chromium
    session = Page.start(browser, driver, screenshots)
    try:
        yield session
    finally:
        session.quit()
