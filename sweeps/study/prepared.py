"""A sweep whose configuration was checked once: what every trial of this process starts from.

:func:`sweeps.study.runner.prepare` builds it; the runner, the workers and the parent run's
set-up read it. It lives in a module of its own so that they all import it from below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweeps.config import sweep_settings
from sweeps.config.run_spec import RunSpec
from sweeps.config.space import SearchSpace
from sweeps.training.data import PreparedData


@dataclass
class PreparedSweep:
    """A sweep whose configuration was checked, ready to run."""

    config: dict[str, Any]          # the whole resolved config, ``sweep`` included
    base: dict[str, Any]            # the training config every trial starts from
    settings: sweep_settings.SweepSettings
    space: SearchSpace
    spec: RunSpec                   # the base config's run spec
    data: PreparedData              # loaded and split once
    task: str
    epochs: int
    n_train: int
    overrides: list[str] = field(default_factory=list)
    enqueued: list[dict[str, Any]] = field(default_factory=list)  # sweep.enqueue: run first
    chosen: list[str] = field(default_factory=list)  # settings chosen from the data (sweep.epochs=auto), printed

    @property
    def tracking(self):
        return self.spec.tracking
