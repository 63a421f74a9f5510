"""Compose the Hydra configs as the command lines do, for code and tests.

``compose(["dataset=digits", "optimizer.lr=3e-3"])`` is ``ann-train``'s config;
``compose_sweep(["sweep=quick"])`` is ``ann-sweep``'s (the groups of ``ann-train`` plus ``sweep``).
Neither may be called while a ``@hydra.main`` application is running (use its ``cfg``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from sweeps.config import CONFIG_DIR

#: The root configs in ``conf/``: ``ann-train``'s and ``ann-sweep``'s (and ``ann-sweep-status``'s).
TRAIN_CONFIG = "config"
SWEEP_CONFIG = "ann_sweep"


def compose(overrides: Iterable[str] = (), config_name: str = TRAIN_CONFIG,
            config_dir: str | os.PathLike | None = None) -> DictConfig:
    """The config ``config_name`` with ``overrides`` in the command-line syntax."""
    directory = Path(config_dir) if config_dir is not None else CONFIG_DIR
    job = "ann-sweep" if config_name == SWEEP_CONFIG else "ann-train"
    with initialize_config_dir(version_base="1.3", config_dir=str(directory.resolve()), job_name=job):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def compose_sweep(overrides: Iterable[str] = ()) -> DictConfig:
    """``ann-sweep``'s config with ``overrides`` (``["sweep=quick", "sweep.n_trials=6"]``)."""
    return compose(overrides, SWEEP_CONFIG)
