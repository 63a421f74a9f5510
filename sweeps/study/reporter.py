"""The per-epoch callback of a trial's training run: report, prune, link.

:class:`EpochReporter` reports the sweep's first metric to Optuna after every epoch
(single-objective sweeps) and stops the run through the training run's generic stop
signal (:class:`~sweeps.training.run.StopRun`: status KILLED and the tags of a pruned
trial) when the pruner says so, when the metric is not finite, or when ``sweep.budget``
is spent. It acts on a pending Ctrl-C / SIGTERM (:data:`~sweeps.study.trial_errors.STOP`)
at the end of the epoch, and calls ``link`` once after the first epoch. :class:`Outcome`
is what a finished run means for its trial, and how its run ends.

With the median pruner (or none) the decisions are taken here and the values are written to
the storage from a background thread (:mod:`sweeps.study.epoch_reports`): :meth:`EpochReporter.flush`
waits for them and raises what writing them raised; a stop flushes first. Successive halving
and hyperband write and decide through the storage, at their rungs only.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import optuna

from sweeps.study.epoch_reports import LocalDecisions, ReportWriter, local_pruner
from sweeps.study.storage import report_values, stored_trial
from sweeps.study.trial_errors import STOP, TrialLost
from sweeps.core import vocabulary as V
from sweeps.training.run import RunEnd, StopRun

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a finished run means for its trial: values (COMPLETE), or why it is PRUNED and at which
    epoch; ``metrics`` are written on the run with its end (a cross-validated trial's folds)."""

    values: list[float] | None = None
    prune_reason: str | None = None
    pruned_at: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def run_end(self) -> RunEnd:
        if self.values is None:
            return pruned_end(self.pruned_at, self.prune_reason or "pruned")
        return RunEnd("FINISHED", {V.TAG_STATE: "COMPLETE"}, {V.OBJECTIVE: self.values[0], **self.metrics})


def pruned_end(epoch: int, reason: str) -> RunEnd:
    """How a pruned trial's run ends: KILLED, tagged ``pruned``, ``pruned_at_epoch``, ``prune_reason``."""
    return RunEnd("KILLED", {V.TAG_STATE: "PRUNED", V.TAG_PRUNED: "true", V.TAG_PRUNED_AT: str(int(epoch)),
                             V.TAG_PRUNE_REASON: reason})


class EpochReporter:
    """The per-epoch callback of a trial (see the module docstring); :attr:`epochs` is the last epoch seen."""

    def __init__(self, trial, epoch_key: str | None, report: bool, pruner_name: str,
                 link: Callable[[], object] | None = None, budget_ends: float | None = None,
                 report_epochs: frozenset[int] | None = None) -> None:
        self.trial = trial
        self.report_epochs = report_epochs  # where the pruner decides (sweeps.study.pruning); None: every epoch
        self.budget_ends = budget_ends  # time.time() at which sweep.budget is spent: prune there
        self.epoch_key = epoch_key
        self.report = report
        self.pruner_name = pruner_name
        self.link = link
        self.epochs = 0
        pruner = local_pruner(trial) if report else None
        self.local = LocalDecisions(trial, pruner) if pruner is not None else None
        self.writer = ReportWriter(self._report_many, f"trial {trial.number} reports") if pruner is not None else None

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> None:
        STOP.check()
        self.epochs = epoch
        if epoch == 1 and self.link is not None:
            self.link()
        if self.epoch_key is None or self.epoch_key not in logs:
            return
        value = float(logs[self.epoch_key])
        name = V.metric_name(self.epoch_key)
        if not math.isfinite(value):
            self._stop(epoch, f"{name} became non-finite ({value}) in epoch {epoch}")
        spent = self.budget_ends is not None and time.time() >= self.budget_ends  # sweep.budget: stop now
        if self.report and (spent or self.report_epochs is None or epoch in self.report_epochs):
            if self._report_and_decide(value, epoch, decide=not spent):
                self._stop(epoch, f"{self.pruner_name} pruner stopped it at epoch {epoch} ({name}={value:.4g})")
        if spent:
            self._stop(epoch, f"sweep.budget ran out: stopped at epoch {epoch} ({name}={value:.4g})")

    def _report_and_decide(self, value: float, epoch: int, decide: bool) -> bool:
        """Report ``value`` at ``epoch``; whether the pruner stops the trial here (asked if ``decide``)."""
        if self.local is None:
            self._report(value, epoch)
            return decide and self.trial.should_prune()
        if self.local.report(value, epoch):
            self.writer.put(value, epoch)
        return decide and self.local.should_prune()

    def flush(self) -> None:
        """Wait until every reported value is in the storage; raise what writing one raised."""
        if self.writer is not None:
            self.writer.flush()

    def flush_quietly(self) -> None:
        """:meth:`flush` for a trial ending on another error (that error stays the trial's): a writing error is logged."""
        try:
            self.flush()
        except Exception as error:  # noqa: BLE001
            log.warning("trial %d: its intermediate values could not all be stored: %s", self.trial.number, error)

    def close(self) -> None:
        """Write what is still queued (errors: see :meth:`flush`) and stop the writer's thread."""
        if self.writer is not None:
            self.writer.close()

    def _stop(self, epoch: int, reason: str) -> None:
        self.flush()  # the trial ends on the values in the storage
        raise StopRun(reason, pruned_end(epoch, reason), epoch)

    def _report(self, value: float, epoch: int) -> None:
        self._report_many([(value, epoch)])

    def _report_many(self, values) -> None:
        try:
            report_values(self.trial, values)
        except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
            # A storage error here is the database having ended this process's session
            # (stalled inside a transaction, see sweeps.study.optuna_study.open_storage): lost too if the
            # trial was failed meanwhile; any other storage error stays what it is.
            frozen = stored_trial(self.trial)
            if frozen is not None and frozen.state.is_finished():
                raise TrialLost(f"trial {self.trial.number} was failed by another worker while it ran "
                                "(no heartbeat within sweep.grace_period); this run is abandoned") from None
            raise
