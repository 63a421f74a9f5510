"""MLflow's system metrics (CPU, memory, disk, network) for one run."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class SystemMetrics:
    """MLflow's system-metrics monitor for one run: ``system/cpu_utilization_percentage``,
    ``system/system_memory_usage_megabytes``, disk and network, every ``interval`` seconds.

    It samples in a thread of its own (MLflow's :class:`SystemMetricsMonitor`, which needs
    psutil) and :meth:`stop` takes one last sample, so a run shorter than the interval has
    its point too. Nothing here may fail a run: a monitor that cannot start or log only
    warns in the log.
    """

    def __init__(self, uri: str, run_id: str, interval: float) -> None:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor  # lazy: needs psutil

        self.monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, tracking_uri=uri)
        self.monitor.start()

    def stop(self) -> None:
        monitor = self.monitor
        try:
            monitor.finish()
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as error:  # the run's own data matters more
            log.warning("system metrics of run %s: %s", monitor._run_id, error)


def start_system_metrics(uri: str, run_id: str, interval: float) -> SystemMetrics | None:
    """Start sampling the machine for ``run_id``; None (with a warning) when it cannot be done."""
    try:
        return SystemMetrics(uri, run_id, interval)
    except Exception as error:  # psutil missing, ...
        log.warning("no system metrics for run %s: %s", run_id, error)
        return None
