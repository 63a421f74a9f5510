"""A run's per-epoch metrics, batched and sent from a background thread.

:class:`MetricLogger` sends the queued metrics with one ``log_batch`` call every
``flush_interval`` seconds, so a running run shows its curves in the UI within seconds
while training never waits for the network; other logging calls queued with ``submit``
(params, config files) go out from the same thread, in order.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Mapping

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from sweeps.core.redaction import redact
from sweeps.tracking.client import MAX_METRICS_PER_BATCH, MAX_PARAM_LENGTH, MAX_PARAMS_PER_BATCH

log = logging.getLogger(__name__)


class MetricLogger:
    """Sends a run's metrics, and any other logging work handed to it, from a background thread.

    ``log`` only appends metrics to a queue; a daemon thread sends the queue every
    ``flush_interval`` seconds, consecutive metrics in one ``log_batch`` call (chunks of
    1000). ``submit`` queues any other call (params, artifacts) and wakes the thread at
    once. Everything runs in the order it was queued. ``close`` stops the thread and does
    what is left; a failure is raised from the next ``log``/``submit`` or from ``close``.
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_interval: float = 2.0) -> None:
        self.client, self.run_id, self.flush_interval = client, run_id, float(flush_interval)
        self._queue: list = []  # Metric objects and zero-argument callables
        self._queue_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.batches_sent = 0
        self.metrics_sent = 0
        self.calls_done = 0
        self.send_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=f"mlflow-logger-{run_id[:8]}", daemon=True)
        self._thread.start()

    def log(self, metrics: Mapping[str, float], step: int, timestamp: int | None = None,
            model_id: str | None = None) -> None:
        """Queue ``metrics`` at ``step``; with ``model_id`` they are the logged model's too (its page shows them)."""
        self._raise_pending_error()
        now = int(time.time() * 1000) if timestamp is None else timestamp
        items = [Metric(key, float(value), now, int(step), model_id=model_id) for key, value in metrics.items()]
        with self._queue_lock:
            self._queue.extend(items)

    def submit(self, function, *args, **kwargs) -> None:
        """Run ``function(*args, **kwargs)`` in the background, after what is queued."""
        self._raise_pending_error()
        with self._queue_lock:
            self._queue.append(lambda: function(*args, **kwargs))
        self._wake.set()

    def flush(self) -> None:
        """Do everything queued so far, now, from the calling thread."""
        self._send()
        self._raise_pending_error()

    def close(self, tags: Mapping[str, str] | None = None) -> None:
        """Stop the background thread and do the rest, ``tags`` in the last ``log_batch`` (raises a failure)."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._send(tags)
        self._raise_pending_error()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._send()
            if self._error is not None:
                return

    def _send(self, tags: Mapping[str, str] | None = None) -> None:
        with self._send_lock:
            if self._error is not None:
                return
            with self._queue_lock:
                queue, self._queue = self._queue, []
            started = time.perf_counter()
            try:
                metrics: list[Metric] = []
                labels = [RunTag(key, redact(value)[:MAX_PARAM_LENGTH]) for key, value in (tags or {}).items()]
                for item in [*queue, None]:
                    if isinstance(item, Metric):
                        metrics.append(item)
                        continue
                    last = item is None and labels
                    for start in range(0, max(len(metrics), 1 if last else 0), MAX_METRICS_PER_BATCH):
                        batch = metrics[start : start + MAX_METRICS_PER_BATCH]
                        if last and start + MAX_METRICS_PER_BATCH >= len(metrics):
                            self._log_with_tags(batch, labels)
                        else:
                            self.client.log_batch(self.run_id, metrics=batch)
                        self.batches_sent += 1
                    self.metrics_sent += len(metrics)
                    metrics = []
                    if item is not None:
                        item()
                        self.calls_done += 1
            except Exception as error:  # kept for the training thread to raise
                self._error = error
                log.warning("logging to run %s failed: %s", self.run_id, error)
            finally:
                self.send_seconds += time.perf_counter() - started

    def _log_with_tags(self, metrics: list, tags: list) -> None:
        for start in range(0, len(tags), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics if start == 0 else [],
                                  tags=tags[start : start + MAX_PARAMS_PER_BATCH])

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise self._error
