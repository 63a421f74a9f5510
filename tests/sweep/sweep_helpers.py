"""Helpers shared by the sweep tests (imported as ``sweep_helpers``)."""

from __future__ import annotations

from sweeps.config.compose import compose_sweep as compose

#: A small, fast sweep: moons with 200 points, networks of a few units, 5 epochs.
FAST = [
    "sweep=quick",
    "dataset=moons",
    "dataset.n_samples=200",
    "training.epochs=5",
    "sweep.params.units.low=2",
    "sweep.params.units.high=8",
    "sweep.params.batch_size.choices=[16,32]",
    "sweep.pruner.n_warmup_steps=1",
    "sweep.pruner.n_startup_trials=2",
    "sweep.plotlyjs=cdn",
    "tracking.flush_interval=0.5",
]


def sweep_cfg(storage: str | None, tracking_uri: str | None, *overrides: str, fast: bool = True):
    """The sweep config as ``ann-sweep`` composes it, with its storage and tracking store in a temp folder."""
    where = []
    if storage:
        where.append(f"sweep.storage={storage}")
    where += [f"tracking.uri={tracking_uri}"] if tracking_uri else ["tracking=off"]
    return compose([*(FAST if fast else []), *where, *overrides])


def cli_overrides(storage: str, tracking_uri: str | None, *overrides: str) -> list[str]:
    where = [f"sweep.storage={storage}"]
    where += [f"tracking.uri={tracking_uri}"] if tracking_uri else ["tracking=off"]
    return [*FAST, *where, *overrides]
