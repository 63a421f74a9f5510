"""MLflow's console settings for the command lines, set before MLflow is first imported.

MLflow reads ``MLFLOW_LOGGING_LEVEL`` and ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` when it is
imported, so this module imports nothing of it. A value the user set wins.
"""

from __future__ import annotations

import os


def quiet_mlflow() -> None:
    """MLflow's INFO lines ("Creating initial MLflow database tables...") stay off the terminal
    unless asked for with ``MLFLOW_LOGGING_LEVEL=INFO`` (its warnings show), and so do its
    per-file download bars (it copies a logged model's files while it checks them)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
