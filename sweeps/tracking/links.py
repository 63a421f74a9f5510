"""Links to the MLflow UI: a run, an experiment (in a saved view), and how to open a local store.

``experiment_url`` / ``run_url`` open the model-training view (``?workflowType=machine_learning``),
the former in a saved view (:mod:`sweeps.tracking.ui_views`) if given one. Strings only: no MLflow
import, so the command lines print these links without loading MLflow.
"""

from __future__ import annotations

from urllib.parse import quote, urlparse

from sweeps.core.redaction import redact, without_userinfo

#: Tracking URIs of a server (the UI is the server itself).
HTTP_SCHEMES = ("http", "https")
#: The URL parameter that opens a saved view.
VIEW_URL_PARAM = "viewStateShareKey"


def ui_base(uri: str) -> str:
    """The UI address for ``uri``: the server itself, or where ``mlflow ui`` listens."""
    if urlparse(uri).scheme in HTTP_SCHEMES:
        return without_userinfo(uri.rstrip("/"))
    return "http://127.0.0.1:5000"


def experiment_url(uri: str, experiment_id: str, view_id: str | None = None) -> str:
    """The experiment's runs with their metric charts, in the model-training view.

    With ``view_id``: opened in that saved view (:mod:`sweeps.tracking.ui_views`), whose first
    charts are training vs validation loss.
    """
    if view_id:
        return view_url(uri, experiment_id, view_id)
    return f"{ui_base(uri)}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode=CHART"


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_base(uri)}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def view_url(uri: str, experiment_id: str, view_id: str) -> str:
    """A link that opens the view in the chart mode of the model-training runs page.

    No search parameters may follow: the UI ignores a view when the link sets its own.
    """
    return (f"{ui_base(uri)}/#/experiments/{experiment_id}/runs?{VIEW_URL_PARAM}={quote(view_id, safe='')}"
            "&workflowType=machine_learning&compareRunsMode=CHART")


def ui_command(uri: str) -> str | None:
    """How to look at a local store (``mlflow ui --backend-store-uri ...``); None for a server."""
    if urlparse(uri).scheme in HTTP_SCHEMES:
        return None
    return f"mlflow ui --backend-store-uri {redact(uri)}"
