"""Helpers shared by the tracked-training tests (imported as ``train_helpers``)."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from sweeps.config.compose import compose

#: Small, fast defaults for test runs (a few epochs on a small moons set).
FAST = ["dataset=moons", "dataset.n_samples=200", "training.epochs=4", "model.hidden_layers=[8]"]


def make_cfg(uri: str | None, *overrides: str, fast: bool = True):
    """Compose the config as ``ann-train`` would, tracking to ``uri`` (None: off)."""
    tracking = [f"tracking.uri={uri}", "tracking.flush_interval=0.5"] if uri else ["tracking=off"]
    return compose([*(FAST if fast else []), *tracking, *overrides])



def run_of(client: MlflowClient, run_id: str):
    return client.get_run(run_id)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def all_runs(client: MlflowClient) -> list:
    experiments = client.search_experiments()
    if not experiments:
        return []
    return client.search_runs([e.experiment_id for e in experiments])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
