"""What ``MLP.fit`` returns: the per-epoch metrics and how training ended."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """What ``fit`` returns: per-epoch metrics and how training ended.

    Attributes:
        history: metric name -> one value per epoch run (``train_loss``, ``val_loss``, ...).
        epochs: the number of epochs run.
        best_epoch: 1-based epoch with the lowest monitored loss (``val_loss`` when there is
            validation data, else ``train_loss``).
        stopped_early: True if early stopping or a callback ended training before ``epochs``.
        stop_reason: ``"early_stopping"``, ``"callback"`` or ``None``.
        epoch_seconds: wall time of each epoch (kept out of ``history``, which is
            bit-for-bit reproducible for a seed).
        fit_seconds: wall time of the whole ``fit``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0

    @property
    def monitor(self) -> str:
        return "val_loss" if "val_loss" in self.history else "train_loss"

    def record(self, epoch: int, logs: dict[str, float], seconds: float) -> float:
        """Append one epoch's metrics; returns its monitored loss."""
        for name, value in logs.items():
            self.history.setdefault(name, []).append(value)
        self.epochs = epoch
        self.epoch_seconds.append(seconds)
        monitored = logs[self.monitor]
        if monitored < self.best_loss:
            self.best_epoch = epoch
        return monitored

    @property
    def best_loss(self) -> float:
        """The lowest monitored loss so far (``inf`` before the first epoch)."""
        if not self.best_epoch:
            return float("inf")
        return self.history[self.monitor][self.best_epoch - 1]
